"""Large images are composited band by band where the mode allows; the result is the whole-image result, exactly."""

from __future__ import annotations

import numpy as np
import pytest

import maskcli.jobs.apply as apply_job
from maskcli.composite import modes
from maskcli.io.decode import image_from_array
from maskcli.io.sinks import OutputPlan
from maskcli.masksources import AlphaMasks
from maskcli.io.encode import quantise

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
