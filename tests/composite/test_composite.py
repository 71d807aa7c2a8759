"""The compositing maths and modes on tiny arrays, with exact values where the maths gives them."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from maskcli.composite import modes
from maskcli.composite.blend import as_rgb, blend, estimate_foreground, gaussian_blur, masked_blur, with_alpha
from maskcli.composite.colors import parse_color
from maskcli.composite.crop import crop_box
from maskcli.composite.enhance import Adjustment, adjust
from maskcli.composite.isolate import fit_background
from maskcli.composite.overlay import outline_of, overlay
from maskcli.errors import InputError, OptionError

M = np.array([[1.0, 0.0, 0.5]], np.float32)


def rgb(*values: tuple[float, float, float]) -> np.ndarray:
    return np.array([values], np.float32)


# -- blend ------------------------------------------------------------------------------------------------------

def test_blend_keeps_image_at_one_gives_background_at_zero_and_the_mean_at_half():
    x = rgb((0.1, 0.3, 0.7), (0.1, 0.3, 0.7), (0.1, 0.3, 0.7))
    b = rgb((0.9, 0.5, 0.2), (0.9, 0.5, 0.2), (0.9, 0.5, 0.2))
    out = blend(x, b, M)
    assert out.dtype == np.float32
    assert np.array_equal(out[0, 0], x[0, 0])  # bit for bit
    assert np.array_equal(out[0, 1], b[0, 1])
    np.testing.assert_allclose(out[0, 2], (x[0, 2] + b[0, 2]) / 2, atol=1e-7)


def test_blend_broadcasts_grey_and_colours():
    grey = np.array([[0.2, 0.2, 0.2]], np.float32)
    assert blend(grey, 1.0, M).tolist() == [[np.float32(0.2), 1.0, np.float32(0.6)]]
    coloured = blend(grey, (0.0, 1.0, 0.0), M)
    assert coloured.shape == (1, 3, 3)
    assert coloured[0, 1].tolist() == [0.0, 1.0, 0.0]
    assert np.array_equal(coloured[0, 0], np.full(3, 0.2, np.float32))
    # RGB over a grey background image
    out = blend(as_rgb(grey), np.ones((1, 3), np.float32), M)
    assert out.shape == (1, 3, 3) and out[0, 1].tolist() == [1.0, 1.0, 1.0]


def test_with_alpha_carries_mask_exactly():
    mask = np.array([[0.0, 0.25, 1 / 3, 1.0]], np.float32)
    pixels = np.random.default_rng(0).random((1, 4, 3), dtype=np.float32)
    rgba = with_alpha(pixels, mask)
    assert rgba.shape == (1, 4, 4) and rgba.dtype == np.float32
    assert np.array_equal(rgba[..., 3], mask)
    assert np.array_equal(rgba[..., :3], pixels)
    grey = with_alpha(pixels[..., 0], mask)
    assert np.array_equal(grey[..., 0], grey[..., 2]) and np.array_equal(grey[..., 3], mask)


def _soft_edge_scene(size: int = 64):
    """A red subject with a soft edge ramp, photographed over a green background (contrasting)."""
    alpha = np.zeros((size, size), np.float32)
    alpha[:, : size // 2] = 1.0
    ramp = np.linspace(1.0, 0.0, 10, dtype=np.float32)[1:-1]
    alpha[:, size // 2: size // 2 + ramp.size] = ramp
    subject = np.array((0.9, 0.1, 0.1), np.float32)
    old_bg = np.array((0.1, 0.8, 0.1), np.float32)
    image = alpha[..., None] * subject + (1 - alpha[..., None]) * old_bg
    return image.astype(np.float32), alpha, subject


def test_decontamination_removes_the_halo_and_beats_the_naive_blend():
    image, alpha, subject = _soft_edge_scene()
    new_bg = np.array((0.0, 0.0, 1.0), np.float32)
    truth = blend(np.broadcast_to(subject, image.shape).copy(), new_bg, alpha)
    band = (alpha > 0) & (alpha < 1)
    naive = blend(image, new_bg, alpha)
    clean = blend(estimate_foreground(image, alpha), new_bg, alpha)
    naive_error = np.abs(naive - truth)[band].max()
    clean_error = np.abs(clean - truth)[band].max()
    assert naive_error > 0.15  # the old green shows through
    assert clean_error < 0.03
    assert clean_error < naive_error / 5
    # where alpha is 1, the image is kept bit for bit
    assert np.array_equal(estimate_foreground(image, alpha)[alpha == 1], image[alpha == 1])


def _reference_foreground(image, alpha, radius=45, fine_radius=3):
    """Blur-fusion foreground estimation written out plainly at full resolution, to check the fast one against."""
    import cv2

    def box(a, r):
        return cv2.blur(a, (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REFLECT)

    def step(fg, bg, r):
        a = alpha[..., None]
        weight = box(alpha, r)[..., None]
        mean_fg = box(fg * a, r) / (weight + 1e-5)
        mean_bg = box(bg * (1 - a), r) / ((1 - weight) + 1e-5)
        return np.clip(mean_fg + a * (image - a * mean_fg - (1 - a) * mean_bg), 0, 1), mean_bg

    fg, bg = step(image, image, radius)
    return step(fg, bg, fine_radius)[0]


def test_fast_decontamination_matches_the_plain_formula():
    import cv2

    rng = np.random.default_rng(3)
    hard = np.zeros((120, 160), np.float32)
    cv2.ellipse(hard, (80, 60), (50, 35), 20, 0, 360, 1.0, -1)
    alpha = cv2.GaussianBlur(hard, (0, 0), 3)
    subject = np.float32((0.8, 0.3, 0.2)) + 0.1 * rng.random((120, 160, 3), dtype=np.float32)
    backdrop = np.float32((0.1, 0.5, 0.9)) * np.linspace(0.6, 1.0, 160, dtype=np.float32)[None, :, None]
    image = (alpha[..., None] * subject + (1 - alpha[..., None]) * backdrop).astype(np.float32)
    band = (alpha > 0) & (alpha < 1)
    fast = blend(estimate_foreground(image, alpha), 1.0, alpha)
    plain = blend(_reference_foreground(image, alpha), 1.0, alpha)
    assert np.abs(fast - plain)[band].max() < 0.01  # within a few 8-bit levels of the plain formula


def test_decontamination_of_a_hard_mask_is_the_image_and_grey_works():
    image = np.random.default_rng(1).random((8, 8, 3), dtype=np.float32)
    hard = (np.arange(64).reshape(8, 8) % 3 == 0).astype(np.float32)
    assert estimate_foreground(image, hard) is image
    grey_image, alpha, _ = _soft_edge_scene(64)
    out = estimate_foreground(grey_image[..., 0], alpha)
    assert out.shape == (64, 64) and out.dtype == np.float32
    band = (alpha > 0) & (alpha < 1)
    assert np.abs(out[band] - 0.9).max() < 0.05  # the subject's own grey, 0.9
    assert np.abs(grey_image[..., 0][band] - 0.9).max() > 0.6  # as observed: mixed with the old background


def test_masked_blur_keeps_subject_colour_out_of_the_background():
    hard = np.zeros((64, 64), np.float32)
    hard[:, :32] = 1
    image = np.where(hard[..., None] == 1, np.float32((0.9, 0.1, 0.1)), np.float32((0.1, 0.8, 0.1)))
    background = masked_blur(image, 1 - hard, 6.0)
    # next to the subject the blurred background is still green, not a red-green mix
    outside = hard == 0
    assert np.abs(background[outside][:, 0] - 0.1).max() < 1e-4
    plain = gaussian_blur(image, 6.0)
    assert plain[outside][:, 0].max() > 0.4


# -- colours ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("white", (1.0, 1.0, 1.0, 1.0)),
    ("Black", (0.0, 0.0, 0.0, 1.0)),
    ("#0f0", (0.0, 1.0, 0.0, 1.0)),
    ("#00ff00", (0.0, 1.0, 0.0, 1.0)),
    ("#00FF0080", (0.0, 1.0, 0.0, 128 / 255)),
    ("0,255,0", (0.0, 1.0, 0.0, 1.0)),
    (" 0, 255, 0 ", (0.0, 1.0, 0.0, 1.0)),
    ("0,255,0,0", (0.0, 1.0, 0.0, 0.0)),
    ("0.2,0.5,1.0", (0.2, 0.5, 1.0, 1.0)),
    ("0.5", (0.5, 0.5, 0.5, 1.0)),
    ("255", (1.0, 1.0, 1.0, 1.0)),
    ("rgb(0,255,0)", (0.0, 1.0, 0.0, 1.0)),
    ("rgb(0, 255, 0)", (0.0, 1.0, 0.0, 1.0)),
    ("transparent", (0.0, 0.0, 0.0, 0.0)),
])
def test_parse_color(text, expected):
    assert parse_color(text) == pytest.approx(expected)


@pytest.mark.parametrize("text, words", [
    ("blurple", "not a colour"),
    ("#12345", "not a colour"),
    ("1,2", "1 (grey), 3 (RGB) or 4 (RGBA) values"),
    ("0,300,0", "integers in 0–255"),
    ("0.5,1.5,0", "fractions in [0, 1]"),
    ("-1,0,0", "integers in 0–255"),
    ("", "not a colour"),
])
def test_parse_color_rejects_junk_with_a_clear_message(text, words):
    with pytest.raises(OptionError, match="background") as error:
        parse_color(text)
    assert words in str(error.value)
    assert error.value.option == "background"


# -- isolate modes ------------------------------------------------------------------------------------------------

def test_cutout_is_rgba_with_the_mask_as_alpha():
    pixels = rgb((0.1, 0.2, 0.3), (0.4, 0.5, 0.6), (0.7, 0.8, 0.9))
    mode = modes.create("cutout", {"decontaminate": "no"})
    assert mode.output_alpha and mode.name == "cutout"
    out = mode(pixels, M)
    assert out.shape == (1, 3, 4) and out.dtype == np.float32
    assert np.array_equal(out[..., 3], M) and np.array_equal(out[..., :3], pixels)


def test_cutout_flattened_on_a_colour_is_opaque():
    mode = modes.create("cutout", {"background": "white", "decontaminate": "false"})
    assert not mode.output_alpha
    out = mode(rgb((0.0, 0.0, 0.0), (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)), M)
    assert out[0, :, 0].tolist() == [0.0, 1.0, 0.5]


def test_color_mode_exact_values_and_grey_stays_grey():
    x = rgb((0.2, 0.4, 0.6), (0.2, 0.4, 0.6), (0.2, 0.4, 0.6))
    out = modes.create("color", {"background": "#00ff00", "decontaminate": "0"})(x, M)
    assert np.array_equal(out[0, 0], x[0, 0])
    assert out[0, 1].tolist() == [0.0, 1.0, 0.0]
    np.testing.assert_allclose(out[0, 2], [0.1, 0.7, 0.3], atol=1e-6)
    grey = modes.create("color", {"background": "white"})(np.array([[0.2, 0.2, 0.2]], np.float32), M)
    assert grey.shape == (1, 3)
    assert grey.tolist()[0][:2] == [np.float32(0.2), 1.0]
    coloured = modes.create("color", {"background": "red"})(np.array([[0.2, 0.2, 0.2]], np.float32), M)
    assert coloured.shape == (1, 3, 3)


def test_color_with_a_translucent_background_is_rgba():
    mode = modes.create("color", {"background": "#ff000080", "decontaminate": "no"})
    assert mode.output_alpha
    out = mode(rgb((0.0, 0.0, 1.0), (0.0, 0.0, 1.0), (0.0, 0.0, 1.0)), M)
    np.testing.assert_allclose(out[0, 0], [0.0, 0.0, 1.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(out[0, 1], [1.0, 0.0, 0.0, 128 / 255], atol=1e-6)


def test_color_mode_decontaminates_by_default():
    image, alpha, subject = _soft_edge_scene()
    out = modes.create("color", {"background": "blue"})(image, alpha)
    truth = blend(np.broadcast_to(subject, image.shape).copy(), (0.0, 0.0, 1.0), alpha)
    band = (alpha > 0) & (alpha < 1)
    assert np.abs(out - truth)[band].max() < 0.03


def test_fit_background_cover_and_fit():
    bg = np.zeros((4, 8, 3), np.float32)
    bg[:, :2] = 1.0  # a white stripe on the left quarter
    covered = fit_background(bg, (4, 4), "cover")
    assert covered.shape == (4, 4, 3) and covered.max() == 0.0  # the centre, stripe cropped off
    fitted = fit_background(bg, (4, 4), "fit", fill=(0.0, 1.0, 0.0))
    assert fitted.shape == (4, 4, 3)
    assert fitted[0, 0].tolist() == [0.0, 1.0, 0.0]  # bar above
    assert fitted[1, 0].tolist() == [1.0, 1.0, 1.0]  # the stripe, scaled
    assert fit_background(bg, (2, 2), "stretch").shape == (2, 2, 3)


def test_image_mode_reads_its_background_once_and_pickles_without_it(tmp_path):
    import cv2

    path = tmp_path / "bg.png"
    cv2.imwrite(str(path), np.full((6, 6, 3), (255, 0, 0), np.uint8))  # BGR: blue
    mode = modes.create("image", {"background": str(path)})
    x = rgb((0.2, 0.4, 0.6), (0.2, 0.4, 0.6), (0.2, 0.4, 0.6))
    out = mode(x, M)
    assert np.array_equal(out[0, 0], x[0, 0]) and out[0, 1].tolist() == [0.0, 0.0, 1.0]
    assert mode._cache_image is not None
    copy = pickle.loads(pickle.dumps(mode))
    assert copy._cache_image is None and copy._cache_fitted is None
    assert np.array_equal(copy(x, M), out)
    with pytest.raises(OptionError, match="background"):
        modes.create("image", {})
    with pytest.raises(OptionError, match="no such image"):
        modes.create("image", {"background": str(tmp_path / "missing.png")})


def test_blur_keeps_the_subject_sharp_and_blurs_the_background():
    rng = np.random.default_rng(0)
    x = rng.random((32, 32, 3), dtype=np.float32)
    mask = np.zeros((32, 32), np.float32)
    mask[8:24, 8:24] = 1
    out = modes.create("blur", {"strength": "3"})(x, mask)
    assert np.array_equal(out[mask == 1], x[mask == 1])
    assert out[mask == 0].std() < x[mask == 0].std() / 2
    with pytest.raises(OptionError, match="strength"):
        modes.create("blur", {"strength": "0"})


def test_desaturate_and_dim():
    x = rgb((1.0, 0.0, 0.0), (1.0, 0.0, 0.0), (1.0, 0.0, 0.0))
    grey = modes.create("desaturate", {})(x, M)
    assert np.array_equal(grey[0, 0], x[0, 0])
    np.testing.assert_allclose(grey[0, 1], [0.299] * 3, atol=1e-3)
    dim = modes.create("dim", {"amount": "0.5"})(x, M)
    assert np.array_equal(dim[0, 0], x[0, 0])
    assert dim[0, 1].tolist() == [0.5, 0.0, 0.0]
    np.testing.assert_allclose(dim[0, 2], [0.75, 0.0, 0.0], atol=1e-6)
    with pytest.raises(OptionError, match="amount"):
        modes.create("dim", {"amount": "2"})


# -- enhance ------------------------------------------------------------------------------------------------------

def test_enhance_strengths_inside_and_outside():
    x = np.array([[0.4, 0.4, 0.4]], np.float32)
    out = modes.create("enhance", {"brightness": "1.5", "outside_brightness": "0.5"})(x, M)
    np.testing.assert_allclose(out, [[0.6, 0.2, 0.4]], atol=1e-6)
    stronger = modes.create("enhance", {"brightness": "2"})(x, M)
    np.testing.assert_allclose(stronger, [[0.8, 0.4, 0.6]], atol=1e-6)


def test_enhance_contrast_saturation_sharpen_clahe():
    x = np.array([[0.3, 0.5]], np.float32)
    np.testing.assert_allclose(adjust(x, Adjustment(contrast=2.0)), [[0.2, 0.6]], atol=1e-6)
    colour = rgb((0.8, 0.2, 0.2))
    flat = adjust(colour, Adjustment(saturation=0.0))
    assert np.ptp(flat) < 1e-6
    richer = adjust(colour, Adjustment(saturation=1.5))
    assert np.ptp(richer) > np.ptp(colour)
    edge = np.zeros((16, 16), np.float32)
    edge[:, 8:] = 0.6
    edge += 0.2
    sharp = adjust(edge, Adjustment(sharpen=1.0, sharpen_radius=1.0))
    assert sharp[:, 8].min() > edge[:, 8].max() and sharp[:, 7].max() < edge[:, 7].min()  # overshoot at the edge
    ramp = np.tile(np.linspace(0.4, 0.6, 64, dtype=np.float32), (64, 1))
    equalised = adjust(ramp, Adjustment(clahe=4.0))
    assert np.ptp(equalised) > np.ptp(ramp) * 1.2
    assert adjust(as_rgb(ramp), Adjustment(clahe=4.0)).shape == (64, 64, 3)


def test_enhance_needs_something_to_do_and_checks_values():
    with pytest.raises(OptionError, match="nothing to do"):
        modes.create("enhance", {})
    with pytest.raises(OptionError, match="outside_blur"):
        modes.create("enhance", {"outside_blur": "-1"})


def test_enhance_outside_blur_leaves_the_subject():
    rng = np.random.default_rng(0)
    x = rng.random((24, 24, 3), dtype=np.float32)
    mask = np.zeros((24, 24), np.float32)
    mask[:, :12] = 1
    out = modes.create("enhance", {"outside_blur": "2"})(x, mask)
    assert np.array_equal(out[:, :12], x[:, :12])
    assert out[:, 14:].std() < x[:, 14:].std() / 2


# -- crop ---------------------------------------------------------------------------------------------------------

def _box_mask() -> np.ndarray:
    mask = np.zeros((20, 30), np.float32)
    mask[5:10, 10:20] = 1.0  # 5 tall, 10 wide
    return mask


def test_crop_box_with_margins_in_pixels_and_percent():
    mask = _box_mask()
    assert crop_box(mask) == (5, 10, 10, 20)
    assert crop_box(mask, margin="2") == (3, 8, 12, 22)
    assert crop_box(mask, margin="20%") == (3, 8, 12, 22)  # 20 % of the longer side (10)
    assert crop_box(mask, margin=100) == (0, 0, 20, 30)  # kept within the image


def test_crop_box_cutoff_ignores_near_transparent_pixels():
    mask = _box_mask()
    mask[0, 0] = 0.02
    mask[19, 29] = 0.05
    assert crop_box(mask) == (5, 10, 10, 20)
    assert crop_box(mask, cutoff=0.0) == (0, 0, 20, 30)


def test_crop_square_canvas_centres_the_subject_and_pads():
    pixels = np.full((20, 30, 3), 0.5, np.float32)
    mask = np.zeros((20, 30), np.float32)
    mask[0:4, 10:20] = 1.0  # at the top edge: the square reaches above the image
    out = modes.create("crop", {"square": "yes", "background": "black"})(pixels, mask)
    assert out.shape == (10, 10, 3)
    assert out[:3].max() == 0.0 and out[3:7].min() == 0.5  # three rows of padding above
    cut = modes.create("crop", {"square": "true", "cutout": "true", "decontaminate": "no"})
    assert cut.output_alpha
    rgba = cut(pixels, mask)
    assert rgba.shape == (10, 10, 4)
    assert rgba[:3, :, 3].max() == 0.0 and rgba[3:7, :, 3].min() == 1.0 and rgba[7:, :, 3].max() == 0.0


def test_crop_keeps_pixels_and_cuts_exactly():
    pixels = np.random.default_rng(0).random((20, 30), dtype=np.float32)
    mask = _box_mask()
    out = modes.create("crop", {"margin": "1"})(pixels, mask)
    assert np.array_equal(out, pixels[4:11, 9:21])


def test_crop_of_an_empty_mask_is_an_input_error():
    with pytest.raises(InputError, match="mask is empty: nothing to crop"):
        modes.create("crop", {})(np.zeros((4, 4), np.float32), np.zeros((4, 4), np.float32))
    with pytest.raises(OptionError, match="margin"):
        modes.create("crop", {"margin": "ten"})


# -- overlay ------------------------------------------------------------------------------------------------------

def test_overlay_tints_the_region_and_draws_its_outline():
    pixels = np.zeros((7, 7), np.float32)
    mask = np.zeros((7, 7), np.float32)
    mask[1:6, 1:6] = 1
    out = overlay(pixels, mask, color=(1.0, 0.0, 0.0), opacity=0.5, outline=1)
    assert out.shape == (7, 7, 3) and out.dtype == np.float32
    assert out[3, 3].tolist() == [0.5, 0.0, 0.0]  # tinted inside
    assert out[1, 1].tolist() == [1.0, 0.0, 0.0]  # outline in full colour
    assert out[0, 0].tolist() == [0.0, 0.0, 0.0]  # untouched outside
    assert outline_of(mask, 1).sum() == 16
    assert not outline_of(np.ones((5, 5), np.float32), 2).any()  # the image border is not an edge


def test_highlight_mode_and_its_colour():
    mode = modes.create("highlight", {"background": "#00ff00", "outline": "0", "opacity": "1"})
    out = mode(np.zeros((1, 3), np.float32), M)
    assert out[0, 0].tolist() == [0.0, 1.0, 0.0] and out[0, 1].tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(OptionError, match="opacity"):
        modes.create("highlight", {"opacity": "1.5"})
