"""``maskcli apply`` end to end, as a user runs it: mask sources, size checks, failures, formats and metadata."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image as PILImage

from conftest import SAMPLES, run_cli


def write_mask(path: Path, mask: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), mask)
    return path


def disc_mask(height: int, width: int, soft: bool = False) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    cv2.circle(mask, (width // 2, height // 2), min(height, width) // 3, 255, -1)
    return cv2.GaussianBlur(mask, (0, 0), 2) if soft else mask


def rgba_of(path: Path) -> np.ndarray:
    return np.asarray(PILImage.open(path).convert("RGBA"))


def ok(done) -> None:
    assert done.returncode == 0, done.stderr.decode()


@pytest.fixture
def tree(tmp_path) -> tuple[Path, Path]:
    """Images in sub-folders (a JPEG and PNGs) and their masks at the same relative paths."""
    images, masks = tmp_path / "images", tmp_path / "masks"
    for rel, sample in (("portraits/astronaut.png", "astronaut.png"), ("pets/chelsea.png", "chelsea.png"),
                        ("coins.png", "coins.png")):
        target = images / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((SAMPLES / sample).read_bytes())
        height, width = cv2.imread(str(target), cv2.IMREAD_UNCHANGED).shape[:2]
        write_mask((masks / rel).with_suffix(".png"), disc_mask(height, width, soft=True))
    return images, masks


def test_per_image_masks_matched_by_relative_path_give_exact_cutouts(tree, tmp_path):
    images, masks = tree
    out = tmp_path / "out"
    done = run_cli("apply", str(images), "-r", "--masks", str(masks), "-o", str(out), "-s", "decontaminate=no",
                   "--jobs", "2")
    ok(done)
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert written == ["coins.png", "pets/chelsea.png", "portraits/astronaut.png"]
    result = rgba_of(out / "portraits" / "astronaut.png")
    source = np.asarray(PILImage.open(images / "portraits" / "astronaut.png").convert("RGB"))
    mask = cv2.imread(str(masks / "portraits" / "astronaut.png"), cv2.IMREAD_GRAYSCALE)
    assert np.array_equal(result[..., 3], mask)  # the mask, exactly, as alpha
    assert np.array_equal(result[..., :3], source)  # without decontamination the pixels are the image's


def test_a_missing_mask_fails_that_item_and_the_others_are_written(tree, tmp_path):
    images, masks = tree
    (masks / "pets" / "chelsea.png").unlink()
    out = tmp_path / "out"
    done = run_cli("apply", str(images), "-r", "--masks", str(masks), "-o", str(out), "--mode", "dim")
    assert done.returncode == 1
    errors = done.stderr.decode()
    assert "chelsea" in errors and "no mask found" in errors
    assert (out / "coins.png").is_file() and (out / "portraits" / "astronaut.png").is_file()
    assert not (out / "pets" / "chelsea.png").exists()


def test_static_mask_for_every_image_and_color_to_jpeg(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a", "b"):
        cv2.imwrite(str(images / f"{name}.jpg"), np.full((40, 60, 3), (200, 30, 10), np.uint8))
    mask = np.zeros((40, 60), np.uint8)
    mask[10:30, 20:40] = 255
    static = write_mask(tmp_path / "mask.png", mask)
    out = tmp_path / "out"
    ok(run_cli("apply", str(images), "--mask", str(static), "--mode", "color", "-b", "white", "-f", "jpg",
               "-o", str(out)))
    for name in ("a", "b"):
        pixels = cv2.imread(str(out / f"{name}.jpg"))
        assert pixels.shape == (40, 60, 3)
        assert pixels[2, 2].min() >= 250  # white background
        assert abs(int(pixels[20, 30, 0]) - 200) <= 6 and pixels[20, 30, 2] <= 20  # the subject (BGR)


def test_alpha_result_as_jpeg_is_a_usage_error(tree, tmp_path):
    images, masks = tree
    done = run_cli("apply", str(images), "-r", "--masks", str(masks), "-o", str(tmp_path / "out"), "-f", "jpg")
    assert done.returncode == 2
    message = done.stderr.decode()
    assert "JPEG has no transparency" in message and "-b" in message
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.*"))
    # and a JPEG input cut out becomes PNG by default
    jpeg = tmp_path / "photo.jpg"
    cv2.imwrite(str(jpeg), np.full((10, 10, 3), 128, np.uint8))
    ok(run_cli("apply", str(jpeg), "--mask", str(write_mask(tmp_path / "m.png", disc_mask(10, 10))),
               "-o", str(tmp_path / "cut")))
    assert (tmp_path / "cut" / "photo.png").is_file()


def test_size_mismatch_names_both_sizes_unless_resize_mask(tmp_path):
    image = tmp_path / "wide.png"
    cv2.imwrite(str(image), np.full((30, 40, 3), 90, np.uint8))
    small = write_mask(tmp_path / "small.png", disc_mask(15, 20))
    done = run_cli("apply", str(image), "--mask", str(small), "-o", str(tmp_path / "out"))
    assert done.returncode == 1
    message = done.stderr.decode()
    assert "20×15" in message and "40×30" in message and "--resize-mask" in message
    ok(run_cli("apply", str(image), "--mask", str(small), "--resize-mask", "-o", str(tmp_path / "out")))
    result = rgba_of(tmp_path / "out" / "wide.png")
    assert result.shape == (30, 40, 4) and set(np.unique(result[..., 3])) == {0, 255}  # hard stays hard


def test_the_images_own_alpha_as_mask_with_invert(tmp_path):
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[..., :3] = (10, 200, 10)
    rgba[5:15, 5:15, 3] = 255
    path = tmp_path / "sticker.png"
    cv2.imwrite(str(path), rgba)
    out = tmp_path / "out"
    ok(run_cli("apply", str(path), "--alpha", "--mode", "color", "-b", "0,0,255", "-o", str(out)))
    result = cv2.imread(str(out / "sticker.png"), cv2.IMREAD_UNCHANGED)
    assert result.shape == (20, 20, 3)
    assert result[0, 0].tolist() == [255, 0, 0] and result[10, 10].tolist() == [10, 200, 10]  # BGR
    ok(run_cli("apply", str(path), "--alpha", "--invert", "--mode", "color", "-b", "blue", "-o",
               str(tmp_path / "inv")))
    inverted = cv2.imread(str(tmp_path / "inv" / "sticker.png"), cv2.IMREAD_UNCHANGED)
    assert inverted[0, 0].tolist() == [10, 200, 10] and inverted[10, 10].tolist() == [255, 0, 0]


def test_sixteen_bit_input_stays_sixteen_bit(tmp_path):
    ramp = (np.linspace(0, 65535, 32 * 24).reshape(24, 32)).astype(np.uint16)
    colour = np.dstack([ramp, ramp[::-1], np.full_like(ramp, 1234)])
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), colour)
    mask = np.zeros((24, 32), np.uint8)
    mask[4:20, 4:28] = 255
    static = write_mask(tmp_path / "m.png", mask)
    ok(run_cli("apply", str(path), "--mask", str(static), "-o", str(tmp_path / "cut")))
    cut = cv2.imread(str(tmp_path / "cut" / "deep.png"), cv2.IMREAD_UNCHANGED)
    assert cut.dtype == np.uint16 and cut.shape == (24, 32, 4)
    assert np.array_equal(cut[4:20, 4:28, :3], colour[4:20, 4:28])  # exact at 16 bits
    assert set(np.unique(cut[..., 3])) == {0, 65535}
    ok(run_cli("apply", str(path), "--mask", str(static), "--mode", "dim", "-o", str(tmp_path / "dim")))
    assert cv2.imread(str(tmp_path / "dim" / "deep.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16


def test_icc_profile_and_exif_are_kept(tmp_path):
    source = PILImage.open(SAMPLES / "chelsea.png")
    icc = source.info.get("icc_profile")
    exif = source.getexif()
    assert icc and len(exif)
    height, width = source.height, source.width
    static = write_mask(tmp_path / "m.png", disc_mask(height, width, soft=True))
    for mode, fmt in (("cutout", "png"), ("color", "jpg"), ("blur", "webp")):
        out = tmp_path / mode
        ok(run_cli("apply", str(SAMPLES / "chelsea.png"), "--mask", str(static), "--mode", mode, "-f", fmt,
                   "-o", str(out)))
        written = PILImage.open(next(out.iterdir()))
        assert written.info.get("icc_profile") == icc, mode
        assert dict(written.getexif()) == dict(exif), mode


def test_unknown_mode_option_and_bad_colour_are_usage_errors(tmp_path):
    static = write_mask(tmp_path / "m.png", disc_mask(10, 10))
    done = run_cli("apply", str(SAMPLES / "coins.png"), "--mask", str(static), "-o", str(tmp_path / "o"),
                   "--mode", "blur", "-s", "sigma=3")
    assert done.returncode == 2 and "sigma" in done.stderr.decode() and "strength" in done.stderr.decode()
    done = run_cli("apply", str(SAMPLES / "coins.png"), "--mask", str(static), "-o", str(tmp_path / "o"),
                   "--mode", "color", "-b", "blurple")
    assert done.returncode == 2 and "not a colour: 'blurple'" in done.stderr.decode()


def test_segment_json_records_piped_into_apply(tmp_path):
    from maskcli.methods import methods

    if "otsu" not in methods:
        pytest.skip("the otsu method is not registered")
    masks, out = tmp_path / "masks", tmp_path / "out"
    seg = run_cli("segment", str(SAMPLES / "coins.png"), str(SAMPLES / "camera.png"), "-o", str(masks),
                  "--method", "otsu", "--json")
    ok(seg)
    records = [json.loads(line) for line in seg.stdout.decode().splitlines()]
    assert len(records) == 2
    done = run_cli("apply", "--mode", "highlight", "-o", str(out), stdin=seg.stdout)
    ok(done)
    assert sorted(p.name for p in out.iterdir()) == ["camera.png", "coins.png"]
    highlighted = cv2.imread(str(out / "coins.png"))
    assert highlighted.shape[:2] == (303, 384) and highlighted.ndim == 3
    # a failed record fails its item only
    bad = json.dumps({"input": str(SAMPLES / "astronaut.png"), "relpath": "astronaut.png", "status": "failed",
                      "output": None, "error": "boom"}).encode() + b"\n"
    done = run_cli("apply", "--mode", "dim", "-o", str(tmp_path / "out2"), stdin=seg.stdout + bad)
    assert done.returncode == 1 and "boom" in done.stderr.decode()
    assert len(list((tmp_path / "out2").iterdir())) == 2


def test_apply_help_claims_no_default_method():
    done = run_cli("apply", "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.decode().replace("│", " ").split())
    assert "Default: otsu" not in text
    assert "one of the mask sources, with no default" in text
