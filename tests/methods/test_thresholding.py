"""The level functions against scikit-image's own thresholds on real images, and the table the methods read."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from maskcli.methods import methods
from maskcli.methods.histogram import histogram
from maskcli.methods.thresholding import (
    HISTOGRAM_LEVELS,
    NoLevel,
    isodata_level,
    li_level,
    mean_level,
    minimum_level,
    multiotsu_levels,
    otsu_level,
    percentile_level,
    triangle_level,
    yen_level,
)

from conftest import SAMPLES

filters = pytest.importorskip("skimage.filters")

PICTURES = ("camera.png", "coins.png", "cell.png", "astronaut.png", "retina.jpg")


def _plane(name: str) -> np.ndarray:
    samples = cv2.imread(str(SAMPLES / name), cv2.IMREAD_GRAYSCALE)
    assert samples is not None, name
    return samples.astype(np.float32) / 255


@pytest.mark.parametrize("name", PICTURES)
def test_histogram_levels_are_scikit_images_on_the_same_image(name: str) -> None:
    plane = _plane(name)
    hist = histogram(plane)  # 256 bins over the image's own range, as scikit-image bins a float image
    width = (hist.hi - hist.lo) / 256
    assert otsu_level(hist) == pytest.approx(float(filters.threshold_otsu(plane)), abs=1e-6)
    assert yen_level(hist) == pytest.approx(float(filters.threshold_yen(plane)), abs=1e-6)
    assert isodata_level(hist) == pytest.approx(float(filters.threshold_isodata(plane)), abs=1e-6)
    try:
        expected = float(filters.threshold_minimum(plane))
    except RuntimeError:
        with pytest.raises(NoLevel):
            minimum_level(hist)
    else:
        assert minimum_level(hist) == pytest.approx(expected, abs=1e-6)
    # Li iterates on bin centres here (on every pixel in scikit-image): within a bin or two, and 4.2 bins on the
    # retina, whose pixels crowd into the darkest bins.
    assert li_level(hist) == pytest.approx(float(filters.threshold_li(plane)), abs=5 * width)
    assert triangle_level(hist) == pytest.approx(float(filters.threshold_triangle(plane)), abs=1e-6)
    levels = multiotsu_levels(hist, 3)
    assert np.allclose(levels, filters.threshold_multiotsu(plane, classes=3), atol=1e-6)
    assert mean_level(plane) == pytest.approx(float(filters.threshold_mean(plane)), abs=1e-6)
    assert percentile_level(plane, 90) == pytest.approx(float(np.percentile(plane, 90)), abs=1e-7)


@pytest.mark.parametrize("name", sorted(HISTOGRAM_LEVELS))
def test_each_histogram_method_reports_its_tables_level(name: str) -> None:
    samples = cv2.imread(str(SAMPLES / "camera.png"), cv2.IMREAD_GRAYSCALE)
    facts = methods.create(name).compute(samples).facts
    try:
        expected = HISTOGRAM_LEVELS[name](histogram(samples))
    except NoLevel:
        expected = otsu_level(histogram(samples))
        assert any("used Otsu's level instead" in warning for warning in facts["warnings"])
    assert facts["threshold"] == round(expected, 6)


def test_a_method_that_finds_no_level_says_so_in_its_own_facts_only() -> None:
    flat = np.linspace(0, 1, 400, dtype=np.float32).reshape(20, 20)  # never bimodal
    method = methods.create("minimum")
    first = method.compute(flat).facts
    assert first["warnings"] == ["minimum: Unable to find two maxima in histogram; used Otsu's level instead"]
    assert first["threshold"] == round(otsu_level(histogram(flat)), 6)
    two_peaks = np.repeat(np.linspace(0, 1, 20, dtype=np.float32), 20).reshape(20, 20)
    two_peaks[:10] = 0.2
    two_peaks[10:] = np.where(np.arange(20) % 2, 0.8, 0.75)
    assert "warnings" not in method.compute(two_peaks).facts  # facts are values of one call, not shared state
