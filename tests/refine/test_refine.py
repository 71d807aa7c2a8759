"""The refinement chain: exact morphology, holes, components and feathering on tiny arrays, and its fixed order."""

from __future__ import annotations

import numpy as np
import pytest

from maskcli.errors import OptionError
from maskcli.refine import (
    Refinement,
    feather,
    fill_holes,
    grabcut_refine,
    guided_filter,
    keep_largest,
    morphology,
    remove_small,
)

from conftest import DATA, needs_data

BLANK = np.zeros((9, 9), np.float32)


def square(size=9, lo=2, hi=7) -> np.ndarray:
    mask = np.zeros((size, size), np.float32)
    mask[lo:hi, lo:hi] = 1
    return mask


def test_fields_are_exactly_the_cli_flags():
    import dataclasses

    assert [f.name for f in dataclasses.fields(Refinement)] == [
        "open", "close", "erode", "dilate", "fill_holes", "max_hole", "min_size", "keep_largest", "refine",
        "matting_solver", "matting_band", "matting_max_side", "invert", "feather", "hard", "soft"]


def test_morphology_exact():
    mask = square()
    eroded = morphology(mask, "erode", 1)
    assert eroded[3:6, 3:6].all() and eroded.sum() == 9
    dilated = morphology(mask, "dilate", 1)  # a 3×3 disc is a cross: the corners stay out
    assert dilated.sum() == 25 + 4 * 5 and dilated[1, 1] == 0 and dilated[1, 2] == 1
    speck = square()
    speck[0, 0] = 1
    assert (morphology(speck, "open", 1) == morphology(square(), "open", 1)).all()
    gap = square()
    gap[4, 3:6] = 0  # a one-pixel slit inside
    assert morphology(gap, "close", 1).sum() == 25
    assert morphology(mask, "erode", 0) is mask


def test_grey_morphology_keeps_soft_masks_soft():
    soft = square() * 0.6
    assert set(np.unique(morphology(soft, "dilate", 1)).tolist()) == {0.0, np.float32(0.6).item()}


def test_fill_holes_all_and_up_to_a_size():
    mask = np.ones((8, 8), np.float32)
    mask[1:4, 1:4] = 0  # a 9 px hole
    mask[5, 5] = 0  # a 1 px hole
    mask[7, 3] = 0  # touches the border: not a hole
    assert fill_holes(mask).sum() == 63
    assert fill_holes(mask, max_hole=1).sum() == 64 - 9 - 1
    assert fill_holes(mask, max_hole=9).sum() == 63
    diagonal = np.zeros((5, 5), np.float32)
    diagonal[1:4, 1:4] = 1
    diagonal[2, 2] = 0
    assert fill_holes(diagonal).sum() == 9


def test_min_size_and_keep_largest_use_8_connectivity():
    mask = np.zeros((6, 8), np.float32)
    mask[0, 0] = mask[1, 1] = 1  # 2 px, diagonal neighbours: one region
    mask[3:6, 3:6] = 1  # 9 px
    mask[0, 7] = 1  # 1 px
    assert remove_small(mask, 2).sum() == 11
    assert remove_small(mask, 3).sum() == 9
    assert keep_largest(mask, 1).sum() == 9
    assert keep_largest(mask, 2).sum() == 11
    assert keep_largest(mask, 5).sum() == 12


def test_feather_is_an_exact_linear_ramp():
    mask = np.zeros((1, 10), np.float32)
    mask[0, 5:] = 1
    assert feather(mask, 2).tolist() == [[0, 0, 0, 0, 0.25, 0.75, 1, 1, 1, 1]]
    assert feather(mask, 0) is mask
    soft = feather(square(20, 5, 15), 4)
    assert soft.dtype == np.float32 and 0 < soft[5, 10] < 1 and soft[10, 10] == 1 and soft[0, 0] == 0
    assert feather(np.ones((3, 3), np.float32), 3).tolist() == np.ones((3, 3)).tolist()


def test_order_is_fixed_whatever_the_flags_say():
    # Open first, then fill: the speck goes before it could matter; invert comes after the components.
    mask = square()
    mask[4, 4] = 0
    mask[0, 8] = 1
    out = Refinement(invert=True, fill_holes=True, open=1).apply(mask, BLANK)
    expected = 1 - fill_holes(morphology(mask, "open", 1))
    assert (out == expected).all()
    # Keep largest runs after min size, and feather after invert.
    out = Refinement(feather=2, invert=True).apply(square(), BLANK)
    assert (out == feather(1 - square(), 2)).all()


def test_hard_and_soft_outputs():
    soft = np.array([[0.2, 0.5, 0.8]], np.float32)
    assert Refinement(hard=0.6).apply(soft, soft).tolist() == [[0, 0, 1]]
    assert Refinement(soft=False).apply(soft, soft).tolist() == [[0, 1, 1]]
    assert Refinement(soft=True).apply(soft, soft).tolist() == soft.tolist()
    assert Refinement().apply(soft, soft).tolist() == soft.tolist()  # soft masks stay soft by default
    # Components are found at the hard level but soft values survive.
    blob = np.zeros((6, 6), np.float32)
    blob[1:4, 1:4] = 0.7
    blob[5, 5] = 0.9
    out = Refinement(min_size=2).apply(blob, blob)
    assert out[5, 5] == 0 and out[2, 2] == np.float32(0.7)


@pytest.mark.parametrize("flags, option", [
    ({"open": -1}, "--open"), ({"close": 1.5}, "--close"), ({"max_hole": 0}, "--max-hole"),
    ({"keep_largest": 0}, "--keep-largest"), ({"refine": "magic"}, "--refine"), ({"feather": -2}, "--feather"),
    ({"hard": 0}, "--hard"), ({"hard": 1.5}, "--hard"), ({"hard": 0.5, "soft": True}, "--hard"),
    ({"feather": 2, "soft": False}, "--feather"),
])
def test_bad_values_name_the_flag(flags, option):
    from maskcli.cli.flags import Wording

    with pytest.raises(OptionError) as caught:
        Refinement(**flags)
    # The library names the setting; the command line shows the flag that sets it.
    assert Wording().option(caught.value.option) == option and not caught.value.option.startswith("-")


def test_max_hole_turns_hole_filling_on():
    assert Refinement(max_hole=5).fill_holes is True


def test_guided_filter_keeps_edges_where_the_image_has_them():
    import cv2

    yy, xx = np.mgrid[:64, :64]
    truth = ((yy - 32) ** 2 + (xx - 32) ** 2 < 18**2)
    image = np.dstack([truth * 0.8 + 0.1, truth * 0.3 + 0.2, 0.5 - truth * 0.3]).astype(np.float32)
    blurry = cv2.GaussianBlur(truth.astype(np.float32), (0, 0), 4)
    for guide in (image, image.mean(axis=2)):
        sharp = guided_filter(blurry, guide, radius=4, eps=1e-4)
        assert sharp.dtype == np.float32 and sharp.min() >= 0 and sharp.max() <= 1
        assert ((sharp >= 0.5) == truth).mean() >= ((blurry >= 0.5) == truth).mean()
    # Where the image is flat, the filter is a plain (edge-free) smoothing: the mask keeps its level.
    assert np.allclose(guided_filter(np.full((8, 8), 0.3, np.float32), np.zeros((8, 8), np.float32)), 0.3)


def test_grabcut_refine_cleans_a_rough_seed():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:60, :80]
    truth = ((yy - 30) ** 2 / 15**2 + (xx - 40) ** 2 / 25**2) < 1
    image = np.where(truth[..., None], (0.8, 0.4, 0.1), (0.1, 0.5, 0.2)).astype(np.float32)
    image += rng.normal(0, 0.03, image.shape).astype(np.float32)
    seed = np.zeros((60, 80), np.float32)
    seed[18:44, 18:64] = 1  # a box around it
    out = grabcut_refine(seed, image.clip(0, 1))
    iou = (out.astype(bool) & truth).sum() / (out.astype(bool) | truth).sum()
    assert iou > 0.9
    assert Refinement(refine="grabcut").apply(seed, image.clip(0, 1)).sum() == out.sum()
    assert grabcut_refine(np.zeros((60, 80), np.float32), image).sum() == 0


@needs_data
def test_guided_refinement_raises_boundary_quality_of_coarse_soft_masks():
    # A stand-in for a CNN's probability map: the ground truth at 1/8 resolution, upsampled (soft, blurry edges).
    import cv2

    from maskcli.io.decode import read_image

    folder = DATA / "weizmann_horses"
    before, after = [], []
    for path in sorted((folder / "images").iterdir())[:12]:
        image = read_image(path).pixels
        truth = cv2.imread(str(folder / "masks" / (path.stem + ".png")), cv2.IMREAD_GRAYSCALE) > 127
        h, w = truth.shape
        coarse = cv2.resize(truth.astype(np.float32), (w // 8, h // 8), interpolation=cv2.INTER_AREA)
        soft = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)
        refined = Refinement(refine="guided").apply(soft, image)
        iou = lambda m, truth=truth: (m & truth).sum() / (m | truth).sum()  # noqa: E731
        before.append(iou(soft >= 0.5))
        after.append(iou(refined >= 0.5))
    assert np.mean(after) > np.mean(before)


def test_hard_then_feather_is_one_order_for_every_verb():
    # Binarise first, then feather: the feather is kept (a soft edge on a clean mask), never thrown away.
    from maskcli.jobs.apply import ApplyJob
    from maskcli.masksources import AlphaMasks
    from maskcli.refine import refinement

    soft = np.clip(np.linspace(-0.5, 1.5, 12, dtype=np.float32), 0, 1)[None].repeat(4, 0)
    chain = refinement({"feather": 2, "hard": 0.6})
    assert [name for name, _ in chain.steps()] == ["binarise", "feather"]
    out = chain.apply(soft, soft)
    assert (out == feather((soft >= 0.6).astype(np.float32), 2)).all() and not set(np.unique(out)) <= {0.0, 1.0}
    job = ApplyJob(mode=None, masks=AlphaMasks(), refiner=refinement({"hard": 0.6, "feather": 2, "invert": True}))
    assert [name for name, _ in job.refiner.steps()] == ["binarise", "invert", "feather"]


def test_the_chain_refuses_unknown_settings():
    from maskcli.refine import refinement

    assert refinement(None) is None
    with pytest.raises(OptionError, match="no setting 'blur'"):
        refinement({"blur": 1})
