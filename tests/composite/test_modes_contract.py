"""Every registered compositing mode keeps the contract: float32 in [0, 1] of the documented shape, on grey and
RGB images, one-pixel images, empty and full masks; picklable; unknown options named."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from maskcli.composite import Mode, modes
from maskcli.errors import InputError, OptionError
from maskcli.registry import options_of

#: Options a mode cannot work without (the rest run on their defaults).
REQUIRED = {"enhance": {"contrast": "1.5", "outside_saturation": "0.5"}}


def make(name: str, tmp_path_factory: pytest.TempPathFactory, extra: dict[str, str] | None = None) -> Mode:
    options = {**REQUIRED.get(name, {}), **(extra or {})}
    if name == "image":
        import cv2

        path = tmp_path_factory.mktemp("bg") / "bg.png"
        cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 255, (7, 9, 3), dtype=np.uint8))
        options.setdefault("background", str(path))
    return modes.create(name, options)


def images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"grey": rng.random((6, 5), dtype=np.float32), "rgb": rng.random((6, 5, 3), dtype=np.float32),
            "grey-1px": np.array([[0.3]], np.float32), "rgb-1px": np.array([[[0.1, 0.5, 0.9]]], np.float32)}


def masks(shape: tuple[int, int]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    soft = rng.random(shape, dtype=np.float32)
    soft.flat[0] = 1.0  # never all-zero
    return {"zeros": np.zeros(shape, np.float32), "ones": np.ones(shape, np.float32), "soft": soft,
            "hard": (soft > 0.5).astype(np.float32)}


NAMES = modes.names()
#: Every mode on its defaults, and the option settings that take other paths through the code.
VARIANTS = [(name, {}) for name in NAMES] + [
    ("crop", {"cutout": "yes", "square": "yes", "margin": "10%"}),
    ("crop", {"cutout": "yes", "background": "red"}),
    ("crop", {"square": "yes", "margin": "2", "background": "transparent"}),
    ("cutout", {"background": "#ff000080"}),
    ("cutout", {"background": "white"}),
    ("color", {"background": "0,0,255"}),
    ("image", {"scale": "fit", "fill": "white"}),
    ("blur", {"strength": "40", "decontaminate": "yes"}),
    ("enhance", {"clahe": "2", "sharpen": "1", "outside_blur": "3", "outside_brightness": "0.5"}),
]


def test_the_expected_modes_are_registered():
    assert {"cutout", "color", "image", "blur", "desaturate", "dim", "enhance", "highlight", "crop"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_mode_describes_itself(name):
    cls = modes.get(name)
    assert issubclass(cls, Mode) and cls.name == name
    assert cls.summary and "\n" not in cls.summary
    assert cls.example.startswith("maskcli apply ")
    for info in options_of(cls):
        assert info.help, f"{name}.{info.name} has no help"


@pytest.mark.parametrize("image_kind", list(images()))
@pytest.mark.parametrize("name, options", VARIANTS, ids=[f"{n}-{'-'.join(o) or 'defaults'}" for n, o in VARIANTS])
def test_mode_output_contract(name, options, image_kind, tmp_path_factory):
    mode = make(name, tmp_path_factory, options)
    pixels = images()[image_kind]
    for mask_kind, mask in masks(pixels.shape[:2]).items():
        before = pixels.copy(), mask.copy()
        if name == "crop" and mask_kind == "zeros":
            with pytest.raises(InputError, match="mask is empty: nothing to crop"):
                mode(pixels, mask)
            continue
        out = mode(pixels, mask)
        where = f"{name} on {image_kind} with {mask_kind} mask"
        assert np.array_equal(pixels, before[0]) and np.array_equal(mask, before[1]), f"{where} changed its input"
        assert isinstance(out, np.ndarray) and out.dtype == np.float32, where
        assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0, where
        if mode.output_alpha:
            assert out.ndim == 3 and out.shape[2] == 4, where
        else:
            assert out.ndim == 2 or (out.ndim == 3 and out.shape[2] == 3), where
            if pixels.ndim == 3:
                assert out.ndim == 3, f"{where}: colour in, grey out"
        if name != "crop":
            assert out.shape[:2] == pixels.shape[:2], where
        elif "square" in options:
            assert out.shape[0] == out.shape[1] >= 1, where  # may pad past the image
        else:
            assert 1 <= out.shape[0] <= pixels.shape[0] and 1 <= out.shape[1] <= pixels.shape[1], where


@pytest.mark.parametrize("name", NAMES)
def test_mode_pickles_and_gives_the_same_result(name, tmp_path_factory):
    mode = make(name, tmp_path_factory)
    pixels = images()["rgb"]
    mask = masks(pixels.shape[:2])["soft"]
    first = mode(pixels, mask)
    copy = pickle.loads(pickle.dumps(mode))
    assert copy.name == name and copy.output_alpha == mode.output_alpha
    assert np.array_equal(copy(pixels, mask), first)


@pytest.mark.parametrize("name", NAMES)
def test_unknown_option_is_named(name):
    with pytest.raises(OptionError) as error:
        modes.create(name, {"no_such_option": "1"})
    assert error.value.option == "no_such_option"
    assert "no_such_option" in str(error.value) and name in str(error.value)


def test_unknown_mode_lists_the_valid_ones():
    with pytest.raises(OptionError, match="cutout"):
        modes.create("cutuot")
