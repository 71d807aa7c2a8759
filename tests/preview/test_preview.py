"""Overlays and contact sheets: exact sheet geometry, worst-first order, files written, and ``maskcli preview``."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskcli.errors import OptionError, SetupError
from maskcli.io.encode import encode_image
from maskcli.io.files import write_atomic
from maskcli.io.masks import encode_mask
from maskcli.preview import BACKGROUND, SheetLayout, contact_sheet, overlay_image, thumbnail, write_previews

from conftest import run_cli


@pytest.mark.parametrize("count, columns", [(1, 6), (5, 2), (6, 3), (7, 3), (10, 4), (3, 8)])
def test_sheet_size_from_count_columns_and_cell(count, columns):
    cell, label, gap = 40, 12, 3
    tiles = [(f"t{i}", np.full((20, 30), 0.5, np.float32)) for i in range(count)]
    sheet = contact_sheet(tiles, columns=columns, cell=cell, label_height=label, gap=gap)
    used = min(columns, count)
    rows = math.ceil(count / used)
    assert sheet.shape == (rows * (cell + label) + (rows + 1) * gap, used * cell + (used + 1) * gap, 3)
    assert sheet.dtype == np.float32


def test_tiles_fill_rows_left_to_right():
    cell, label, gap = 32, 10, 2
    values = [0.2, 0.4, 0.6, 0.8, 1.0]
    tiles = [(f"t{i}", np.full((cell, cell), v, np.float32)) for i, v in enumerate(values)]
    sheet = contact_sheet(tiles, columns=2, cell=cell, label_height=label, gap=gap)
    layout = SheetLayout.for_count(5, columns=2, cell=cell, label_height=label, gap=gap)
    for index, value in enumerate(values):
        y, x = layout.origin(index)
        assert (y, x) == (gap + (index // 2) * (cell + label + gap), gap + (index % 2) * (cell + gap))
        assert np.allclose(sheet[y:y + cell, x:x + cell], value)  # a square image fills its cell exactly
    # The sixth cell (row 2, column 1) is empty background, and so are the gaps.
    y, x = layout.origin(5)
    assert np.allclose(sheet[y:y + cell, x:x + cell], BACKGROUND)
    assert np.allclose(sheet[:gap], BACKGROUND)
    # Each label strip holds drawn text (lighter pixels than the background).
    y, x = layout.origin(0)
    assert sheet[y + cell:y + cell + label, x:x + cell].max() > 0.5


def test_thumbnails_keep_the_aspect_ratio():
    tall = thumbnail(np.ones((40, 10), np.float32), 20)
    assert tall.shape == (20, 20, 3)
    # 40×10 scaled by 0.5 is 20×5, centred: columns 7 to 11.
    assert np.where(tall[10, :, 0] > 0.5)[0].tolist() == [7, 8, 9, 10, 11]


def test_bad_layouts():
    with pytest.raises(SetupError):
        SheetLayout.for_count(0)
    with pytest.raises(OptionError):
        SheetLayout.for_count(3, columns=0)


def test_overlay_tints_the_masked_region_only():
    image = np.full((10, 10), 0.5, np.float32)
    mask = np.zeros((10, 10), np.float32)
    mask[2:8, 2:8] = 1
    out = overlay_image(image, mask, color=(1.0, 0.0, 0.0), opacity=0.5, outline=1)
    assert out.shape == (10, 10, 3)
    assert out[0, 0].tolist() == [0.5, 0.5, 0.5]  # outside: unchanged
    assert out[2, 2].tolist() == [1.0, 0.0, 0.0]  # outline
    assert np.allclose(out[5, 5], [0.75, 0.25, 0.25])  # inside: half tint


def _folder(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Four grey 24×24 images, each a distinct level; masks whose IoU with the truth is 1, 1/2, 1/3 and 0."""
    images, masks, truths = tmp_path / "images", tmp_path / "masks", tmp_path / "gt"
    truth = np.zeros((24, 24), np.float32)
    truth[:, :8] = 1
    widths = {"a": 8, "b": 16, "c": 24, "d": 0}  # the truth is 8 columns wide: IoU 8/8, 8/16, 8/24, 0
    for index, (name, width) in enumerate(widths.items()):
        level = 0.2 + 0.2 * index
        write_atomic(images / f"{name}.png", encode_image(np.full((24, 24), level, np.float32), format="PNG"))
        mask = np.zeros((24, 24), np.float32)
        mask[:, :width] = 1
        write_atomic(masks / f"{name}.png", encode_mask(mask))
        write_atomic(truths / f"{name}.png", encode_mask(truth))
    return images, masks, truths


def test_worst_first_sheet_and_overlays(tmp_path):
    images, masks, truths = _folder(tmp_path)
    out, sheet = tmp_path / "out", tmp_path / "sheet.png"
    report = write_previews(images, masks, output=out, sheet=sheet, truths=truths, columns=2, cell=32, opacity=0,
                            outline=0)
    assert [r.key for r in report.results] == ["d", "c", "b", "a"]
    assert [round(r.iou, 3) for r in report.results] == [0.0, 0.333, 0.5, 1.0]
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "c.png", "d.png"]
    assert cv2.imread(str(out / "a.png")).shape == (24, 24, 3)
    picture = cv2.imread(str(sheet)).astype(np.float32) / 255  # grey tiles: channel order does not matter
    layout = SheetLayout.for_count(4, columns=2, cell=32)
    assert picture.shape == (layout.height, layout.width, 3)
    levels = {"a": 0.2, "b": 0.4, "c": 0.6, "d": 0.8}
    for index, result in enumerate(report.results):
        y, x = layout.origin(index)
        assert picture[y + 16, x + 16, 0] == pytest.approx(levels[result.key], abs=0.01)


def _as_labels(folder: Path, target: Path) -> Path:
    """The masks of ``folder`` as label images: label 2 ("part") where the mask is, over a legend of two classes."""
    from maskcli.formats.labels import legend_for, write_legend

    target.mkdir()
    for path in folder.iterdir():
        mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) > 127
        cv2.imwrite(str(target / path.name), (mask * 2).astype(np.uint8))
    write_legend(target, legend_for(["dust", "part"]))
    return target


@pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools")
def test_masks_and_truths_from_label_images_or_a_coco_file(tmp_path):
    import json

    images, masks, truths = _folder(tmp_path)
    folders = write_previews(images, masks, sheet=tmp_path / "folders.png", truths=truths, columns=2, cell=32)
    labels = write_previews(images, _as_labels(masks, tmp_path / "mask-labels"), sheet=tmp_path / "labels.png",
                            truths=_as_labels(truths, tmp_path / "truth-labels"), classes=["part"], columns=2, cell=32)
    assert [(r.key, r.iou) for r in labels.results] == [(r.key, r.iou) for r in folders.results]
    assert (tmp_path / "labels.png").read_bytes() == (tmp_path / "folders.png").read_bytes()
    done = run_cli("preview", str(images), str(tmp_path / "mask-labels"), "--class", "dust", "--gt", str(truths),
                   "--sheet", str(tmp_path / "dust.png"))
    assert done.returncode == 0, done.stderr.decode()  # no dust anywhere: every mask empty, every IoU 0
    # Overlays are never written over the label images they were drawn from.
    again = write_previews(images, tmp_path / "mask-labels", output=tmp_path / "mask-labels", classes=["part"])
    assert len(again.failed) == 4 and "would replace an input" in again.failed[0].error
    assert cv2.imread(str(tmp_path / "mask-labels" / "b.png"), cv2.IMREAD_GRAYSCALE).max() == 2  # unchanged

    pytest.importorskip("pycocotools", reason="COCO files need pycocotools (pip install 'maskcli[coco]')")
    from maskcli.formats.coco import rle_encode

    entries, annotations = [], []
    for number, path in enumerate(sorted(truths.iterdir()), start=1):
        truth = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) > 127
        entries.append({"id": number, "file_name": path.name, "height": 24, "width": 24})
        annotations.append({"id": number, "image_id": number, "category_id": 1, "iscrowd": 0,
                            "segmentation": rle_encode(truth), "area": int(truth.sum())})
    coco = tmp_path / "truths.json"
    coco.write_text(json.dumps({"images": entries, "annotations": annotations,
                                "categories": [{"id": 1, "name": "part"}]}))
    from_coco = write_previews(images, masks, sheet=tmp_path / "coco.png", truths=coco, columns=2, cell=32)
    assert [(r.key, r.iou) for r in from_coco.results] == [(r.key, r.iou) for r in folders.results]


def test_existing_overlays_and_unpaired(tmp_path):
    images, masks, _ = _folder(tmp_path)
    (masks / "d.png").unlink()
    out = tmp_path / "out"
    first = write_previews(images, masks, output=out)
    assert not first.failed and first.pairing.unpaired_sources == ["d.png"]
    again = write_previews(images, masks, output=out)
    assert len(again.failed) == 3 and "exists" in again.failed[0].error
    assert not write_previews(images, masks, output=out, overwrite=True).failed
    with pytest.raises(OptionError):
        write_previews(images, masks)  # neither overlays nor a sheet asked for


def test_cli_preview(tmp_path):
    images, masks, truths = _folder(tmp_path)
    (masks / "a.png").write_bytes(b"broken")
    sheet = tmp_path / "sheet.png"
    done = run_cli("preview", str(images), str(masks), "-o", str(tmp_path / "out"), "--sheet", str(sheet),
                   "--columns", "3", "--cell", "48", "--gt", str(truths))
    assert done.returncode == 1, done.stderr  # one mask could not be read
    assert "a.png" in done.stderr.decode()
    layout = SheetLayout.for_count(4, columns=3, cell=48)
    assert cv2.imread(str(sheet)).shape == (layout.height, layout.width, 3)
    assert run_cli("preview", str(images), str(masks)).returncode == 2  # no -o and no --sheet
    assert run_cli("preview", str(images), str(tmp_path / "none"), "-o", str(tmp_path / "o")).returncode == 3


def test_an_existing_sheet_is_replaced_only_with_overwrite(tmp_path):
    images, masks, _ = _folder(tmp_path)
    sheet = tmp_path / "sheet.png"
    sheet.write_bytes(b"someone's sheet")
    done = run_cli("preview", str(images), str(masks), "--sheet", str(sheet))
    assert done.returncode == 2 and sheet.read_bytes() == b"someone's sheet"
    assert done.stderr.decode().strip() == (
        f"maskcli: error: --sheet: {sheet} exists; replace it with --overwrite or choose another file")
    done = run_cli("preview", str(images), str(masks), "--sheet", str(sheet), "--overwrite")
    assert done.returncode == 0 and cv2.imread(str(sheet)) is not None
