"""Global and local thresholds: values against scikit-image, polarity, 16-bit precision, facts, the channel."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import filters

from maskcli.color import channel
from maskcli.errors import OptionError
from maskcli.methods import methods
from maskcli.methods.compare import choose_polarity, compare
from maskcli.methods.histogram import histogram, separability


def _bimodal(seed: int = 0, shape=(30, 40)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = rng.normal(0.3, 0.05, shape)
    image[4:14, 5:16] = rng.normal(0.7, 0.08, (10, 11))
    return image.clip(0, 1).astype(np.float32)


IMAGES = [_bimodal(0), _bimodal(1, (17, 23)), (np.arange(64, dtype=np.float32).reshape(8, 8) / 63) ** 2]


@pytest.mark.parametrize("image", IMAGES)
@pytest.mark.parametrize("name, reference", [
    ("otsu", filters.threshold_otsu),
    ("yen", filters.threshold_yen),
    ("isodata", filters.threshold_isodata),
    ("triangle", filters.threshold_triangle),
    ("mean", filters.threshold_mean),
])
def test_threshold_values_match_scikit_image(name, reference, image):
    # Same 256-bin histogram over the image's own range as scikit-image uses for float images.
    expected = float(reference(image))
    got = methods.create(name).compute(image).facts["threshold"]
    assert got == pytest.approx(expected, abs=1e-5)


def test_li_on_the_float_copy_of_an_8_bit_image_matches_its_levels_and_scikit_image():
    """The float path (what a smoothed or refined image takes) once drifted to another class boundary: a small
    cell image's Li level was 0.438 on its float copy and 0.266 on its 8-bit levels."""
    import cv2

    from conftest import SAMPLES

    cell = cv2.imread(str(SAMPLES / "cell.png"), cv2.IMREAD_GRAYSCALE)
    small = cv2.resize(cell, (107, 128), interpolation=cv2.INTER_AREA)
    floats = small.astype(np.float32) / 255
    on_levels = methods.create("li").compute(small).facts["threshold"]
    on_floats = methods.create("li").compute(floats).facts["threshold"]
    assert on_floats == pytest.approx(on_levels, abs=2e-3)
    assert on_floats == pytest.approx(filters.threshold_li(floats), abs=2e-3)


@pytest.mark.parametrize("image", IMAGES[:2])
def test_li_and_multiotsu_and_percentile_match_scikit_image(image):
    width = float(image.max() - image.min()) / 256
    assert methods.create("li").compute(image).facts["threshold"] == pytest.approx(
        filters.threshold_li(image), abs=width)
    levels = methods.create("multiotsu").compute(image).facts["levels"]
    assert levels == pytest.approx(filters.threshold_multiotsu(image).tolist(), abs=1e-5)
    assert methods.create("percentile", {"q": 30}).compute(image).facts["threshold"] == pytest.approx(
        float(np.percentile(image, 30)), abs=1e-6)


def test_minimum_matches_scikit_image_on_a_bimodal_image():
    image = _bimodal(2)
    assert methods.create("minimum").compute(image).facts["threshold"] == pytest.approx(
        filters.threshold_minimum(image), abs=1e-5)


def test_minimum_falls_back_to_otsu_with_a_warning():
    image = np.array([[0.0, 0.0, 1.0, 1.0]], np.float32)  # two spikes, no valley between maxima to smooth into
    result = methods.create("minimum").compute(image)
    assert result.facts["threshold"] == pytest.approx(methods.create("otsu").compute(image).facts["threshold"])
    assert any("Otsu" in w for w in result.facts["warnings"])


def test_fixed_levels_absolute_8bit_and_relative():
    image = np.array([[0.2, 0.4, 0.6, 0.8]], np.float32)
    assert methods.create("fixed", {"level": "0.5"}).compute(image).mask.tolist() == [[0, 0, 1, 1]]
    assert methods.create("fixed", {"level": "128"}).compute(image).facts["threshold"] == pytest.approx(128 / 255)
    relative = methods.create("fixed", {"level": "0.5", "relative": "true"}).compute(image)
    assert relative.facts["threshold"] == pytest.approx(0.5)
    assert methods.create("fixed", {"level": 0.5, "polarity": "dark"}).compute(image).mask.tolist() == [[1, 1, 0, 0]]


def test_comparison_is_strict_above_and_dark_is_its_complement():
    image = np.array([[0.25, 0.5, 0.75]], np.float32)
    bright = compare(image, 0.5, "bright")
    dark = compare(image, 0.5, "dark")
    assert bright.tolist() == [[0, 0, 1]] and (bright + dark == 1).all()
    threshold_image = np.array([[0.3, 0.4, 0.8]], np.float32)
    assert compare(image, threshold_image, "bright").tolist() == [[0, 1, 0]]


def test_auto_polarity_picks_the_object_inside_its_background():
    dark_object = 1 - _bimodal(0)
    result = methods.create("otsu", {"polarity": "auto"}).compute(dark_object)
    assert result.facts["polarity"] == "dark"
    assert result.mask[5:13, 6:15].mean() > 0.9 and result.mask.mean() < 0.3
    assert methods.create("otsu", {"polarity": "auto"}).compute(_bimodal(0)).facts["polarity"] == "bright"
    # An object that is the larger part but does not touch the border is still the object.
    big = np.zeros((20, 20), np.float32)
    big[2:18, 2:18] = 1
    assert choose_polarity(big, 0.5, "auto") == "bright"


def test_16bit_precision_is_kept():
    # Two populations 0.0005 apart on a narrow 16-bit range: 8 bits would merge them into one level.
    rng = np.random.default_rng(0)
    image = np.full((40, 40), 30000 / 65535, np.float32)
    image[10:30, 10:30] = 30040 / 65535
    image += (rng.integers(-3, 4, image.shape) / 65535).astype(np.float32)
    result = methods.create("otsu").compute(image)
    assert result.mask.sum() == 400 and result.mask[10:30, 10:30].all()
    assert 30000 / 65535 < result.facts["threshold"] < 30040 / 65535
    assert result.facts["confidence"] > 0.9
    # Finer bins resolve levels inside one 256-bin bin.
    assert len(histogram(image, 4096).counts) == 4096


def test_confidence_is_the_between_class_variance_ratio():
    two_spikes = np.array([[0.1, 0.1, 0.9, 0.9]], np.float32)
    assert methods.create("otsu").compute(two_spikes).facts["confidence"] == pytest.approx(1.0)
    hist = histogram(_bimodal(0))
    otsu = methods.create("otsu").compute(_bimodal(0)).facts
    assert otsu["confidence"] == pytest.approx(separability(hist, otsu["threshold"]), abs=1e-4)
    for level in (0.2, 0.9):  # any other level separates less well than Otsu's
        assert separability(hist, level) < otsu["confidence"]
    for name in ("fixed", "li", "yen", "triangle", "isodata", "mean", "minimum", "percentile", "multiotsu"):
        facts = methods.create(name).compute(_bimodal(0)).facts
        assert 0 <= facts["confidence"] <= 1 and facts["polarity"] == "bright" and 0 <= facts["threshold"] <= 1


def test_constant_image_gives_a_warning_not_a_crash():
    for value in (0.0, 1.0):
        result = methods.create("otsu").compute(np.full((5, 5), value, np.float32))
        assert result.mask.sum() == 0 and result.facts["confidence"] == 0
        assert "constant" in result.facts["warnings"][0]


def test_channel_and_sigma():
    rgb = np.zeros((10, 10, 3), np.float32)
    rgb[..., 1] = 0.5
    rgb[2:5, 2:5, 0] = 1.0  # a red square on green
    assert methods.create("otsu", {"channel": "r"}).compute(rgb).mask.sum() == 9
    assert methods.create("otsu", {"channel": "a"}).compute(rgb).mask.sum() == 9  # red is a* > 0
    assert channel(rgb, "h").max() <= 1 and channel(rgb, "b*").dtype == np.float32
    noise = np.random.default_rng(0).random((30, 40)).astype(np.float32)
    smoothed = methods.create("otsu", {"sigma": 2}).compute(noise).mask
    plain = methods.create("otsu").compute(noise).mask
    assert np.abs(np.diff(smoothed, axis=1)).sum() < np.abs(np.diff(plain, axis=1)).sum()
    with pytest.raises(OptionError, match="channel"):
        methods.create("otsu", {"channel": "x"})


def test_multiotsu_keep_selects_classes():
    image = np.repeat(np.array([0.1, 0.5, 0.9], np.float32), 4)[None]
    assert methods.create("multiotsu", {"keep": "1"}).compute(image).mask.tolist() == [[0] * 4 + [1] * 4 + [0] * 4]
    assert methods.create("multiotsu", {"keep": "0,2"}).compute(image).mask.sum() == 8
    assert methods.create("multiotsu", {"polarity": "dark"}).compute(image).mask.sum() == 4


def test_local_thresholds_follow_uneven_light():
    ramp = np.tile(np.linspace(0.1, 0.7, 60, dtype=np.float32), (40, 1))
    image = ramp.copy()
    image[15:25, 5:12] += 0.2
    image[15:25, 45:52] += 0.2
    truth = np.zeros_like(image, bool)
    truth[15:25, 5:12] = truth[15:25, 45:52] = True
    assert not (methods.create("otsu").compute(image).mask.astype(bool) == truth).all()
    for name, options in [("local", {"block_size": 21, "offset": 0.05}),
                          ("background", {"radius": 15, "estimate": "median"}),
                          ("local", {"block_size": 21, "offset": 0.05, "kind": "mean"})]:
        mask = methods.create(name, options).compute(image).mask.astype(bool)
        assert (mask == truth).mean() > 0.97, (name, options)


def test_sauvola_and_niblack_match_scikit_image_for_dark_text():
    rng = np.random.default_rng(3)
    page = (0.85 + rng.normal(0, 0.03, (30, 30))).astype(np.float32)
    page[10:14, 4:26] = 0.2
    for name, reference in [("sauvola", filters.threshold_sauvola), ("niblack", filters.threshold_niblack)]:
        ours = methods.create(name, {"window": 15, "polarity": "dark"}).compute(page).mask
        kwargs = {"r": 0.5} if name == "sauvola" else {}
        expected = page <= reference(page.astype(np.float64), window_size=15, k=0.2, **kwargs)
        assert (ours.astype(bool) == expected).mean() > 0.99, name
