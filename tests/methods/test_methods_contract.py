"""The contract every registered mask method keeps (the CNN has its own tests).

Every method, on grey, RGB, 16-bit-range, one-pixel, constant and thin-strip images: a float32 H×W mask in [0, 1];
hard methods give exactly {0, 1}; bad option values are an ``OptionError`` naming the option, and exit status 2
with one error line on the command line. Methods are picklable (they run in worker processes).
"""

from __future__ import annotations

import pickle

import cv2
import numpy as np
import pytest

from maskcli.errors import OptionError
from maskcli.methods import methods
from maskcli.registry import options_of

from conftest import run_cli

#: Options a method needs to run at all (everything else at its defaults).
REQUIRED = {"color_range": {"key": "green"}}

#: For each method, option values that cannot work.
BAD = {
    "fixed": {"level": -1},
    "multiotsu": {"classes": 9},
    "percentile": {"q": 101},
    "local": {"block_size": 4},
    "niblack": {"window": 2},
    "sauvola": {"r": 0},
    "background": {"threshold": "canny"},
    "color_range": {"key": "purple"},
    "canny": {"high": 2},
    "sobel": {"level": 3},
    "scharr": {"close": -1},
    "laplacian": {"output": "lines"},
    "grabcut": {"inset": 0.7},
    "grabcut-box": {"context": 9},
    "cnn-box": {"margin": 5},
}

#: The CNN has its own tests, and so has ``sam`` (its weights are tiny graphs made in tests/cnn/test_sam.py).
NAMES = [name for name in methods.names() if name not in ("cnn", "sam")]
#: Methods that take prompts; without one, the whole image is their box.
PROMPTED = [name for name in NAMES if hasattr(methods.get(name), "compute_prompts")]


def make(name: str):
    return methods.create(name, REQUIRED.get(name, {}))


def _images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:48, :64]
    disc = ((yy - 24) ** 2 + (xx - 30) ** 2 < 12**2).astype(np.float32)
    grey = (0.2 + 0.6 * disc + rng.normal(0, 0.03, disc.shape)).clip(0, 1).astype(np.float32)
    rgb = np.dstack([grey, grey * 0.5, 1 - grey]).astype(np.float32)
    rgb[disc == 0] = (0.1, 0.7, 0.2)  # a green backdrop for the chroma key
    narrow = (0.30 + 0.002 * disc + rng.normal(0, 2e-4, disc.shape)).astype(np.float32)  # 16-bit detail
    return {
        "grey": grey,
        "rgb": rgb,
        "16bit": narrow,
        "one_pixel": np.full((1, 1), 0.5, np.float32),
        "one_pixel_rgb": np.full((1, 1, 3), 0.5, np.float32),
        "black": np.zeros((16, 16), np.float32),
        "white": np.ones((16, 16, 3), np.float32),
        "row": np.tile(np.linspace(0, 1, 50, dtype=np.float32), (1, 1)),
        "column": np.linspace(0, 1, 50, dtype=np.float32)[:, None].copy(),
        "strip": grey[20:22].copy(),
    }


IMAGES = _images()


@pytest.mark.parametrize("kind", list(IMAGES))
@pytest.mark.parametrize("name", NAMES)
def test_every_method_gives_a_valid_mask(name, kind):
    image = IMAGES[kind]
    result = make(name).compute(image)
    mask = result.mask
    assert mask.dtype == np.float32 and mask.shape == image.shape[:2]
    assert np.isfinite(mask).all() and mask.min() >= 0 and mask.max() <= 1
    if methods.get(name).hard:
        assert set(np.unique(mask).tolist()) <= {0.0, 1.0}
    assert isinstance(result.facts, dict)


@pytest.mark.parametrize("name", [n for n in NAMES if n not in ("grabcut", "color_range", *PROMPTED)])
def test_thresholds_and_edges_find_the_disc(name):
    # A bright disc on a dark background: every automatic method should find (most of) it.
    image = IMAGES["grey"]
    # Local thresholds need a margin over the background's noise (a window wider than the disc for Sauvola).
    tuned = {"local": {"offset": 0.05}, "niblack": {"window": 61, "k": 0.5}, "sauvola": {"window": 41},
             "percentile": {"q": 85}}
    mask = methods.create(name, tuned.get(name, {})).compute(image).mask > 0.5
    truth = IMAGES["grey"] > 0.5
    inter = np.count_nonzero(mask & truth)
    assert inter / np.count_nonzero(mask | truth) > 0.5, name


def test_grabcut_and_color_range_find_the_disc():
    truth = cv2.erode((IMAGES["grey"] > 0.5).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    for method in (methods.create("grabcut", {"inset": 0.05}), methods.create("color_range", {"key": "green",
                                                                                               "invert": True})):
        mask = method.compute(IMAGES["rgb"]).mask > 0.5
        assert (mask & truth).sum() / truth.sum() > 0.9 and mask.mean() < 0.3, method.name


@pytest.mark.parametrize("name", NAMES)
def test_methods_are_picklable_and_documented(name):
    method = make(name)
    clone = pickle.loads(pickle.dumps(method))
    assert clone == method
    cls = methods.get(name)
    assert cls.summary and "\n" not in cls.summary
    assert cls.example.startswith("maskcli segment")
    assert cls.__doc__
    for info in options_of(cls):
        assert info.help, (name, info.name)


@pytest.mark.parametrize("name", NAMES)
def test_bad_option_values_name_the_option(name):
    fields = {info.name for info in options_of(methods.get(name))}
    bad = dict(BAD.get(name, {}))
    if "polarity" in fields:
        bad["polarity"] = "sideways"
    if "sigma" in fields:
        bad["sigma"] = -1
    if "channel" in fields:
        bad["channel"] = "purple"
    assert bad, f"no bad value known for {name}: add one to BAD"
    for option, value in bad.items():
        with pytest.raises(OptionError) as caught:
            methods.create(name, {**REQUIRED.get(name, {}), option: value})
        assert caught.value.option == option, (name, option, str(caught.value))
    if name == "background":
        with pytest.raises(OptionError, match="otsu") as caught:
            methods.create(name, {"threshold": "nonesuch"})
        assert caught.value.option == "threshold"
    with pytest.raises(OptionError) as caught:
        methods.create(name, {"bad": 1})
    assert caught.value.option == "bad"


@pytest.fixture(scope="module")
def tiny_png(tmp_path_factory):
    path = tmp_path_factory.mktemp("contract") / "tiny.png"
    cv2.imwrite(str(path), (IMAGES["grey"] * 255).astype(np.uint8))
    return path


@pytest.mark.parametrize("name", NAMES)
def test_cli_bad_option_exits_2_with_one_error_line(name, tiny_png, tmp_path):
    done = run_cli("segment", str(tiny_png), "-o", str(tmp_path / "out"), "-m", name, "-p", "bad=1")
    assert done.returncode == 2, done.stderr.decode()
    errors = [line for line in done.stderr.decode().splitlines() if line.startswith("maskcli: error:")]
    assert len(errors) == 1 and "bad" in errors[0], done.stderr.decode()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_every_preset_builds_and_runs():
    from maskcli.jobs.segment import segment_image
    from maskcli.presets import PRESETS, get_preset
    from maskcli.refine import Refinement

    for name, preset in PRESETS.items():
        assert preset.summary and preset.method in methods, name
        method = methods.create(preset.method, dict(preset.options))
        mask = segment_image(IMAGES["rgb"], method, Refinement(**preset.refinement)).mask
        assert mask.dtype == np.float32 and mask.shape == IMAGES["rgb"].shape[:2], name
    with pytest.raises(OptionError) as caught:
        get_preset("nucleus")
    assert caught.value.option == "preset" and "nuclei" in str(caught.value)


def test_greenscreen_preset_keeps_the_subject():
    from maskcli.jobs.segment import segment_image
    from maskcli.presets import get_preset
    from maskcli.refine import Refinement

    preset = get_preset("greenscreen")
    mask = segment_image(IMAGES["rgb"], methods.create(preset.method, dict(preset.options)),
                         Refinement(**preset.refinement)).mask
    truth = IMAGES["grey"] > 0.5
    assert ((mask > 0.5) == truth).mean() > 0.97


@pytest.mark.parametrize("name", PROMPTED)
def test_prompted_methods_find_the_disc_in_its_box(name):
    from maskcli.prompts import Prompt

    truth = IMAGES["grey"] > 0.5
    (segmentation,) = methods.create(name).compute_prompts(IMAGES["rgb"], [Prompt(box=(14, 8, 48, 40))])
    mask = segmentation.mask > 0.5
    assert np.count_nonzero(mask & truth) / np.count_nonzero(mask | truth) > 0.7, name
    assert 0 <= segmentation.facts["score"] <= 1
