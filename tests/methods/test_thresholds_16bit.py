"""Histogram thresholds on 16-bit and float data agree with scikit-image on the same array, to within one bin, and
the mask is the histogram's split: no level is cut in two, so the top background level never joins the foreground."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import filters

from maskcli.io.decode import image_from_array, read_image
from maskcli.methods import methods

from conftest import DATA, needs_data

SKIMAGE = {"otsu": filters.threshold_otsu, "li": filters.threshold_li, "yen": filters.threshold_yen,
           "isodata": filters.threshold_isodata, "triangle": filters.threshold_triangle,
           "mean": filters.threshold_mean}


def _check(name: str, samples: np.ndarray, given: np.ndarray) -> None:
    """``given`` is what maskcli is handed (integer samples or floats); ``samples`` the same data as levels."""
    top = float(np.iinfo(samples.dtype).max) if samples.dtype.kind == "u" else 1.0
    result = methods.create(name).compute(given)
    ours = result.facts["threshold"] * top
    theirs = float(SKIMAGE[name](samples))
    bin_width = float(samples.max() - samples.min()) / 256
    # One bin of ours, plus one level where scikit-image counts integer levels one by one.
    slack = bin_width + (1.0 if samples.dtype.kind == "u" else 0.0)
    assert ours == pytest.approx(theirs, abs=slack), f"{name}: {ours} vs scikit-image {theirs}"
    mask = result.mask > 0.5
    if mask.any() and (~mask).any():
        # A split by level: every background level lies below every foreground level.
        assert samples[~mask].max() < samples[mask].min(), name
    # The foreground differs from scikit-image's only by the pixels of the levels between the two thresholds.
    low, high = sorted((ours, theirs))
    between = np.count_nonzero((samples > low - bin_width) & (samples <= high + bin_width)) / samples.size
    assert abs(mask.mean() - (samples > theirs).mean()) <= between + 1e-9, name


@pytest.mark.parametrize("name", list(SKIMAGE))
def test_dim_16bit_image_spanning_levels_1000_to_1205(name):
    rng = np.random.default_rng(0)
    background = rng.integers(1000, 1041, 8000)  # 80 % dim background, its top level 1040
    foreground = rng.integers(1150, 1206, 2000)  # 20 % objects
    samples = rng.permutation(np.concatenate([background, foreground])).reshape(100, 100).astype(np.uint16)
    _check(name, samples, samples)
    if name == "otsu":
        assert methods.create("otsu").compute(samples).mask.mean() == pytest.approx(0.200)


@pytest.mark.parametrize("bins", [256, 4096, 65536])
def test_otsu_keeps_the_top_background_level_in_the_background_at_any_bin_count(bins):
    # Levels 1000..1205 with the top background level just below the foreground: a bin centre between them would
    # put part of a level on the wrong side.
    samples = np.repeat(np.array([1000, 1100, 1101, 1204, 1205], np.uint16), [300, 300, 200, 100, 100])[None]
    result = methods.create("otsu", {"bins": bins}).compute(samples)
    assert result.mask.mean() == pytest.approx((samples > filters.threshold_otsu(samples)).mean())


@pytest.mark.parametrize("name", list(SKIMAGE))
def test_float_data_agrees_with_scikit_image(name):
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.normal(0.3, 0.05, 6000), rng.normal(0.7, 0.08, 4000)])
    floats = np.clip(values, 0, 1).astype(np.float32).reshape(100, 100)
    _check(name, floats, floats)


@needs_data
@pytest.mark.parametrize("name", list(SKIMAGE))
def test_real_16bit_nuclei_agree_with_scikit_image(name):
    paths = sorted((DATA / "fluo_nuclei" / "images").glob("hela_*"))
    if not paths:
        pytest.skip("no 16-bit hela_* images in ../shared/data/fluo_nuclei/images")
    for path in paths[:2]:
        image = read_image(path)
        assert image.samples is not None and image.samples.dtype == np.uint16 and image.bit_depth == 16
        _check(name, image.samples, image.samples)
        # The same data as floats (as a library user may hand it over) gives the same answer within one bin.
        floats = image_from_array(image.samples).pixels
        assert methods.create(name).compute(floats).facts["threshold"] == pytest.approx(
            methods.create(name).compute(image.samples).facts["threshold"],
            abs=float(image.samples.max() - image.samples.min()) / 256 / 65535)
