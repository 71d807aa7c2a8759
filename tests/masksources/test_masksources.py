"""Mask sources and output sinks in the library: pairing, records, static masks, formats, and batch apply from
Python giving the same pixels as the command."""

from __future__ import annotations

import io
import json
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
import pytest

from maskcli.batch import ApplySettings, BatchSettings, apply_batch
from maskcli.errors import InputError, OptionError
from maskcli.io.files import WriteGate
from maskcli.io.sinks import FileSink, OutputPlan, StreamSink
from maskcli.io.sources import Item, Source
from maskcli.masksources import (
    AlphaMasks,
    MaskFolder,
    MethodMasks,
    SegmentRecords,
    StaticMask,
    mask_sources,
    open_masks,
    paired,
)

from conftest import DATA, SAMPLES, needs_data, run_cli


def _source(rel: str) -> Source:
    return Source(f"photos/{rel}", PurePosixPath(rel))


def test_the_registry_names_every_kind():
    assert mask_sources.names() == ["alpha", "coco", "file", "folder", "labels", "method", "records"]
    assert mask_sources.get("folder") is MaskFolder and mask_sources.get("records") is SegmentRecords
    with pytest.raises(OptionError, match="did you mean 'folder'"):
        mask_sources.get("fodler")


def test_folder_pairs_by_relative_path_then_stem(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.png").write_bytes(b"")
    (tmp_path / "b.tif").write_bytes(b"")
    folder = MaskFolder(tmp_path)
    assert folder.pair(_source("sub/a.jpg")) == tmp_path / "sub" / "a.png"
    assert folder.pair(_source("b.jpg")) == tmp_path / "b.tif"  # same stem, another suffix
    with pytest.raises(InputError, match=r"no mask found \(looked for .*sub/c.png\)"):
        folder.pair(_source("sub/c.jpg"))
    items = list(paired([Item(0, _source("sub/a.jpg")), Item(1, _source("c.jpg"))], folder))
    assert items[0].mask == tmp_path / "sub" / "a.png" and items[0].error is None
    assert items[1].mask is None and "no mask found" in items[1].error
    with pytest.raises(OptionError, match="not a folder"):
        MaskFolder(tmp_path / "missing")


def test_records_give_sources_and_their_masks():
    lines = [json.dumps({"input": "p/a.jpg", "relpath": "a.jpg", "output": "m/a.png", "status": "written"}),
             "", json.dumps({"input": "p/b.jpg", "status": "failed", "error": "boom", "output": None}), "{oops"]
    records = SegmentRecords(io.StringIO("\n".join(lines)))
    sources = list(records.sources())
    assert [(s.path, s.error) for s in sources] == [
        ("p/a.jpg", None),
        ("p/b.jpg", "no mask: segment failed (boom)"),
        ("<stdin line 4>", "not a maskcli record (expected a JSON object with input and output)"),
    ]
    assert records.pair(sources[0]) == Path("m/a.png")


def test_static_and_alpha_masks(tmp_path):
    from maskcli.io.decode import read_image

    path = tmp_path / "m.png"
    cv2.imwrite(str(path), np.array([[0, 255]], np.uint8))
    static = StaticMask(path)
    item = Item(0, _source("a.png"))
    image = read_image(SAMPLES / "coins.png")
    levels = static.load(item, image, max_pixels=100)  # a plain grey file: its levels, 1 byte per pixel
    assert levels.dtype == np.uint8 and levels.tolist() == [[0, 255]]
    with pytest.raises(InputError, match="no alpha channel"):
        AlphaMasks().load(item, image, max_pixels=10**8)
    with pytest.raises(OptionError, match="none.png: no such file"):
        StaticMask(tmp_path / "none.png")


def test_the_output_plan_decides_the_format_once():
    assert OutputPlan.for_masks().format_for(".jpg") == "PNG"
    plan = OutputPlan.for_images(None, alpha=False)
    assert (plan.format_for(".jpg"), plan.suffix_for(".jpeg"), plan.format_for(".bmp")) == ("JPEG", ".jpg", "PNG")
    assert plan.format_of(Source("-", PurePosixPath("stdin")), "WEBP") == "WEBP"
    assert OutputPlan.for_images("tiff", alpha=True).suffix_for(".jpg") == ".tif"
    with pytest.raises(OptionError, match="JPEG has no transparency"):
        OutputPlan.for_images("jpg", alpha=True)
    with pytest.raises(OptionError, match="unknown format 'gif'"):
        OutputPlan.for_images("gif", alpha=False)


def test_stream_and_file_sinks(tmp_path):
    stream = io.BytesIO()
    sink = StreamSink(stream)
    (item,) = sink.items([Source("-", PurePosixPath("stdin"), data=b"x")])
    assert sink.write(item, b"PNGDATA", WriteGate()) is None and stream.getvalue() == b"PNGDATA"
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    (refused,) = FileSink(target).items([Source("-", PurePosixPath("stdin"))])
    assert "exists" in refused.error
    (allowed,) = FileSink(target, "overwrite").items([Source("-", PurePosixPath("stdin"))])
    assert FileSink(target, "overwrite").write(allowed, b"new", WriteGate()) == str(target)
    assert target.read_bytes() == b"new"


def _apply(inputs, masks, output, **options):
    """The library's apply batch on one core: its results."""
    settings = ApplySettings(BatchSettings([str(path) for path in inputs], output, jobs=1), masks=masks, **options)
    return apply_batch(settings).results


def test_batch_apply_from_python_matches_the_command(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for name in ("coins.png", "camera.png"):
        (images / name).write_bytes((SAMPLES / name).read_bytes())
        pixels = cv2.imread(str(SAMPLES / name), cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(str(masks / name), np.where(pixels > 128, 255, 0).astype(np.uint8))
    results = _apply([images], MaskFolder(masks), tmp_path / "py", mode="color", mode_options={"background": "white"})
    assert [(r.status, Path(r.output).name) for r in results] == [("written", "camera.png"), ("written", "coins.png")]
    done = run_cli("apply", str(images), "--masks", str(masks), "--mode", "color", "-b", "white", "-o",
                   str(tmp_path / "cli"), "--jobs", "1")
    assert done.returncode == 0, done.stderr.decode()
    for name in ("coins.png", "camera.png"):
        assert np.array_equal(cv2.imread(str(tmp_path / "py" / name)), cv2.imread(str(tmp_path / "cli" / name)))
    again = _apply([images], MaskFolder(masks), tmp_path / "py")
    assert [r.status for r in again] == ["failed", "failed"] and "exists" in again[0].error  # nothing replaced


def test_method_masks_run_the_method():
    from maskcli.methods import methods

    source = MethodMasks(methods.create("otsu"))
    assert source.method.name == "otsu" and source.pair(_source("a.png")) is None


@needs_data
@pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools")
def test_a_coco_file_and_label_images_are_mask_sources_like_a_folder(tmp_path):
    """The horses' true masks as a folder, as a COCO file and as label images: the same cut-outs, from Python
    (a path or a registered source) and from the command."""
    pytest.importorskip("pycocotools", reason="COCO files need pycocotools (pip install 'maskcli[coco]')")
    from maskcli.formats.coco import rle_encode
    from maskcli.formats.labels import legend_for, write_legend

    horses = DATA / "weizmann_horses"
    names = sorted(p.stem for p in (horses / "images").glob("*.png"))[:3]
    photos, masks, labels = tmp_path / "photos", tmp_path / "masks", tmp_path / "labels"
    for folder in (photos, masks, labels):
        folder.mkdir()
    images, annotations = [], []
    for number, name in enumerate(names, start=1):
        (photos / f"{name}.png").write_bytes((horses / "images" / f"{name}.png").read_bytes())
        (masks / f"{name}.png").write_bytes((horses / "masks" / f"{name}.png").read_bytes())
        truth = cv2.imread(str(masks / f"{name}.png"), cv2.IMREAD_GRAYSCALE) > 127
        images.append({"id": number, "file_name": f"{name}.png", "height": truth.shape[0], "width": truth.shape[1]})
        annotations.append({"id": number, "image_id": number, "category_id": 2, "iscrowd": 0,
                            "segmentation": rle_encode(truth), "area": int(truth.sum())})
        cv2.imwrite(str(labels / f"{name}.png"), (truth * 2).astype(np.uint8))  # label 2: horse
    coco = tmp_path / "horses.json"
    coco.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": [{"id": 1, "name": "rider"}, {"id": 2, "name": "horse"}]}))
    write_legend(labels, legend_for(["rider", "horse"]))

    kinds = {"folder": open_masks(masks), "coco": open_masks(coco, classes=["horse"]), "labels": open_masks(labels)}
    for name, source in kinds.items():
        assert type(source) is mask_sources.get(name)
    outputs = {}
    for name, source in kinds.items():
        results = _apply([photos], source, tmp_path / f"out-{name}")
        assert [r.status for r in results] == ["written"] * 3, [r.error for r in results]
        outputs[name] = {path.name: path.read_bytes() for path in (tmp_path / f"out-{name}").glob("*.png")}
    assert outputs["coco"] == outputs["folder"] == outputs["labels"] and len(outputs["folder"]) == 3
    _apply([photos], coco, tmp_path / "by-path")  # a path is opened as its kind
    assert {p.name: p.read_bytes() for p in (tmp_path / "by-path").glob("*.png")} == outputs["folder"]

    done = run_cli("apply", str(photos), "--masks", str(labels), "--class", "horse", "-o", str(tmp_path / "cli"),
                   "-q")
    assert done.returncode == 0, done.stderr.decode()
    assert {p.name: p.read_bytes() for p in (tmp_path / "cli").glob("*.png")} == outputs["folder"]

    with pytest.raises(OptionError) as caught:
        open_masks(masks, classes=["horse"])  # plain masks have one class
    assert caught.value.option == "class"
    with pytest.raises(OptionError) as caught:
        open_masks(tmp_path / "nothing-here")
    assert caught.value.option == "masks" and "neither a folder nor a COCO file" in str(caught.value)
    with pytest.raises(OptionError, match="has no category 'zebra'"):
        open_masks(coco, classes=["zebra"])


def test_an_output_never_replaces_the_label_image_a_mask_came_from(tmp_path):
    from maskcli.formats.labels import legend_for, write_legend

    photos, labels = tmp_path / "photos", tmp_path / "labels"
    photos.mkdir()
    labels.mkdir()
    cv2.imwrite(str(photos / "a.png"), np.full((20, 20, 3), 100, np.uint8))
    label = np.zeros((20, 20), np.uint8)
    label[5:15, 5:15] = 1
    cv2.imwrite(str(labels / "a.png"), label)
    write_legend(labels, legend_for(["part"]))
    before = (labels / "a.png").read_bytes()
    done = run_cli("apply", str(photos), "--masks", str(labels), "-o", str(labels), "--overwrite")
    assert done.returncode == 1 and b"an input of this batch" in done.stderr, done.stderr.decode()
    assert (labels / "a.png").read_bytes() == before

