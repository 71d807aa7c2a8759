"""Large images are composited band by band where the mode allows; the result is the whole-image result, exactly."""

from __future__ import annotations

import numpy as np
import pytest

import maskcli.jobs.apply as apply_job
from maskcli.composite import modes
from maskcli.imageops import to_unit_float
from maskcli.io.decode import Image, image_from_array
from maskcli.io.encode import quantise, sample_type
from maskcli.io.sinks import OutputPlan
from maskcli.masksources import AlphaMasks

CASES = [("dim", {}), ("desaturate", {"amount": "0.7"}), ("cutout", {}), ("color", {"background": "#00ff00"}),
         ("highlight", {"outline": "3"}), ("cutout", {"background": "#ff000080"}), ("blur", {}),
         ("enhance", {"contrast": "1.5"})]


def _inputs(colour: bool, soft: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    samples = rng.integers(0, 256, (37, 23, 3) if colour else (37, 23), dtype=np.uint8)
    yy, xx = np.mgrid[:37, :23]
    disc = ((yy - 18) ** 2 + (xx - 11) ** 2 < 100).astype(np.uint8) * 255
    if soft:
        import cv2

        disc = cv2.GaussianBlur(disc, (0, 0), 2)
    return samples, disc


@pytest.mark.parametrize("soft", [False, True], ids=["hard-mask", "soft-mask"])
@pytest.mark.parametrize("colour", [True, False], ids=["rgb", "grey"])
@pytest.mark.parametrize("name, options", CASES, ids=[f"{n}-{'-'.join(o) or 'defaults'}" for n, o in CASES])
def test_banded_composite_equals_the_whole_image_result(name, options, colour, soft, monkeypatch):
    samples, mask = _inputs(colour, soft)
    mode = modes.create(name, options)
    job = apply_job.ApplyJob(mode=mode, masks=AlphaMasks(), plan=OutputPlan("png"))
    whole = quantise(mode(image_from_array(samples).pixels, mask.astype(np.float32) / 255), np.uint8)
    monkeypatch.setattr(apply_job, "BAND_PIXELS", 5 * 23)  # bands of 8 rows (the least a band has)
    banded = job.composite(image_from_array(samples), mask)
    banded = quantise(banded, np.uint8)
    assert banded.shape == whole.shape and np.array_equal(banded, whole)
    halo = mode.halo(mask)
    if name in ("dim", "desaturate") or (name in ("cutout", "color") and not soft):
        assert halo == 0  # these did go band by band


@pytest.mark.parametrize("polarity", ["bright", "dark", "auto"])
@pytest.mark.parametrize("name, options", [("local", {}), ("local", {"kind": "mean", "offset": "0.02"}),
                                           ("local", {"kind": "median", "block_size": "7"}),
                                           ("niblack", {"window": "9"}), ("sauvola", {"window": "11"})])
def test_banded_local_thresholds_equal_the_whole_plane(name, options, polarity, monkeypatch):
    import maskcli.imageops as imageops
    import maskcli.methods.local_threshold as local
    from maskcli.methods import methods

    rng = np.random.default_rng(3)
    image = (rng.random((61, 40)) * 0.3 + np.linspace(0, 0.6, 40)[None]).astype(np.float32)
    image[20:35, 10:25] += 0.3
    method = methods.create(name, {**options, "polarity": polarity})
    whole = method.compute(image)
    monkeypatch.setattr(local, "BAND_PIXELS", 40)  # planes over 160 pixels go in bands
    monkeypatch.setattr(imageops, "BAND_PIXELS", 7 * 40)  # of 7 rows
    banded = method.compute(image)
    assert np.array_equal(banded.mask, whole.mask)
    assert banded.facts["polarity"] == whole.facts["polarity"]
    assert banded.facts["threshold"] == pytest.approx(whole.facts["threshold"], abs=1e-5)


# Modes that need context, a window or whole-image figures go band by band too: 8-bit, 16-bit and float inputs.
KINDS = {"uint8": (np.uint8, "png"), "uint16": (np.uint16, "png"), "float32": (np.float32, "tiff")}


def _scene(kind: str, colour: bool, soft: bool, shape: tuple[int, int] = (97, 41)) -> tuple[Image, np.ndarray]:
    """A noisy image with a disc-shaped subject (as ``kind`` samples) and its mask (uint8 levels, as stored)."""
    import cv2

    height, width = shape
    rng = np.random.default_rng(5)
    values = rng.random((height, width, 3) if colour else (height, width)).astype(np.float32) * 0.5
    yy, xx = np.mgrid[:height, :width]
    disc = ((yy - height * 0.45) ** 2 + (xx - width * 0.55) ** 2 < (width * 0.3) ** 2)
    values[disc] += 0.4
    mask = disc.astype(np.uint8) * 255
    if soft:
        mask = cv2.GaussianBlur(mask, (0, 0), 2)
    dtype = KINDS[kind][0]
    if dtype is np.float32:
        return Image(pixels=values, bit_depth=32), mask
    return image_from_array((values * np.iinfo(dtype).max + 0.5).astype(dtype)), mask


def _whole_and_banded(name, options, kind, colour, soft, monkeypatch, shape=(97, 41)):
    image, mask = _scene(kind, colour, soft, shape)
    mode = modes.create(name, options)
    plan = OutputPlan(KINDS[kind][1])
    job = apply_job.ApplyJob(mode=mode, masks=AlphaMasks(), plan=plan)
    target = sample_type(plan.format_for(".png"), image.bit_depth)
    whole = quantise(mode(image.pixels, to_unit_float(mask)), target)  # the mask as the job reads it
    monkeypatch.setattr(apply_job, "BAND_PIXELS", 8 * shape[1])  # bands of 8 rows (or twice the context)
    banded = job.composite(image, mask)
    assert mode.halo(mask) is not None  # it did go band by band
    assert banded.dtype == target and banded.shape == whole.shape
    return whole, banded


EXACT = [("crop", {}), ("crop", {"margin": "5"}), ("crop", {"margin": "20%", "square": "yes"}),
         ("crop", {"square": "yes", "cutout": "yes", "decontaminate": "no"}),
         ("crop", {"square": "yes", "background": "#ff000080"}),
         ("crop", {"margin": "30", "background": "0,128,255"}),
         ("enhance", {"contrast": "1.5"}), ("enhance", {"contrast": "0.7", "outside_brightness": "0.5"}),
         ("enhance", {"sharpen": "1", "outside_contrast": "1.3", "saturation": "1.4"}),
         ("enhance", {"blur": "2", "contrast": "1.2"}), ("enhance", {"outside_blur": "1.5"}),
         ("enhance", {"clahe": "2"}), ("enhance", {"clahe": "2", "contrast": "1.3", "outside_clahe": "1.5"}),
         ("enhance", {"sharpen": "1", "clahe": "3", "outside_contrast": "0.8", "outside_brightness": "0.6"}),
         ("blur", {"strength": "3"}), ("blur", {"strength": "1"}),
         ("image", {"decontaminate": "no"}), ("image", {"scale": "fit", "fill": "#336699", "decontaminate": "no"}),
         ("image", {"scale": "stretch", "decontaminate": "no"})]


@pytest.fixture(autouse=False)
def background(tmp_path):
    import cv2

    path = tmp_path / "bg.png"
    rng = np.random.default_rng(2)
    cv2.imwrite(str(path), rng.integers(0, 256, (13, 29, 3), dtype=np.uint8))  # enlarged: rows interpolated
    return str(path)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("colour, soft", [(True, False), (False, True)], ids=["rgb-hard", "grey-soft"])
@pytest.mark.parametrize("name, options", EXACT, ids=[f"{n}-{'-'.join(o) or 'defaults'}" for n, o in EXACT])
def test_banded_context_modes_equal_the_whole_image_exactly(name, options, kind, colour, soft, background,
                                                           monkeypatch):
    if name == "image":
        options = {**options, "background": background}
    whole, banded = _whole_and_banded(name, options, kind, colour, soft, monkeypatch)
    assert np.array_equal(banded, whole)


def test_a_large_background_is_shrunk_whole_and_sliced_into_the_same_bands(tmp_path, monkeypatch):
    import cv2

    path = tmp_path / "big.png"
    cv2.imwrite(str(path), np.random.default_rng(4).integers(0, 256, (300, 200, 3), dtype=np.uint8))
    whole, banded = _whole_and_banded("image", {"background": str(path)}, "uint8", True, False, monkeypatch)
    assert np.array_equal(banded, whole)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("name, options", [("blur", {}), ("blur", {"strength": "9"}),
                                           ("enhance", {"blur": "8", "outside_contrast": "1.5"})])
def test_strong_blurs_go_in_bands_within_a_stated_tolerance(name, options, kind, monkeypatch):
    # Past sigma 6 the blur is computed on a reduced grid, which starts at each band's first row: the result is
    # within 0.005 of the whole image's (blend.blur_reach), not identical.
    whole, banded = _whole_and_banded(name, options, kind, True, True, monkeypatch, shape=(420, 37))
    scale = 1.0 if kind == "float32" else np.iinfo(KINDS[kind][0]).max
    difference = np.abs(banded.astype(np.float64) - whole.astype(np.float64)) / scale
    assert difference.max() <= 0.005 + 1 / scale
    assert difference.mean() < 0.001


def test_fitted_background_rows_are_those_of_the_whole():
    from maskcli.composite.isolate import fit_background

    background = np.random.default_rng(1).random((7, 11, 3)).astype(np.float32)
    for how in ("cover", "fit", "stretch"):
        for size in ((40, 30), (25, 90), (7, 11), (5, 9)):
            whole = fit_background(background, size, how, fill=(0.2, 0.4, 0.6))
            assert whole.shape[:2] == size
            parts = [fit_background(background, size, how, fill=(0.2, 0.4, 0.6), rows=slice(top, min(top + 3,
                                                                                                    size[0])))
                     for top in range(0, size[0], 3)]
            assert np.array_equal(np.concatenate(parts), whole)
            if size == (40, 30):  # enlarged: within float rounding of OpenCV's own bilinear scaling
                import cv2

                if how == "stretch":
                    reference = cv2.resize(background, (30, 40), interpolation=cv2.INTER_LINEAR)
                    np.testing.assert_allclose(whole, reference, atol=1e-6)


def test_crop_box_of_integer_levels_is_that_of_their_fractions():
    from maskcli.composite.crop import crop_box

    _, mask = _scene("uint8", False, True)
    for cutoff in (0.0, 0.05, 0.5):
        assert crop_box(mask, cutoff=cutoff) == crop_box(mask.astype(np.float32) / 255, cutoff=cutoff)
    sixteen = mask.astype(np.uint16) * 257
    assert crop_box(sixteen, margin="10%", square=True) == crop_box(mask.astype(np.float32) / 255, margin="10%",
                                                                     square=True)
