"""Masks for data sets: COCO (RLE, polygons), YOLO, label images; out with ``export`` and in with ``apply`` and
``eval``; exact round trips on the shared data's masks; bad inputs each one line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import DATA, SAMPLES, needs_data, run_cli

pytest.importorskip("pycocotools", reason="the COCO tests need pycocotools (pip install 'maskcli[coco]')")

from maskcli.formats import Region, export_formats  # noqa: E402
from maskcli.formats.coco import CocoAnnotations, polygons_decode, rle_decode, rle_encode  # noqa: E402
from maskcli.formats.geometry import components, mask_to_polygons, polygons_to_mask, self_intersects  # noqa: E402
from maskcli.formats.labels import LabelFolder, labels_to_regions, legend_for, regions_to_labels  # noqa: E402

HORSES = DATA / "weizmann_horses"
# pycocotools 2.0.x hands numpy 2 an __array__ without the copy keyword; the warning is theirs.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools")


def shared_masks() -> list[Path]:
    return sorted(DATA.glob("*/masks/*.png"))


def read_truth(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) > 127


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def ok(done) -> None:
    assert done.returncode == 0, done.stderr.decode()


def error_lines(done) -> list[str]:
    return [line for line in done.stderr.decode().splitlines() if "error" in line]


# --- round trips on the shared data -----------------------------------------------------------------------------


@needs_data
def test_mask_to_rle_to_mask_is_bit_exact_on_every_shared_mask() -> None:
    paths = shared_masks()
    assert len(paths) >= 150
    for path in paths:
        mask = read_truth(path)
        rle = json.loads(json.dumps(rle_encode(mask)))  # through JSON, as a file holds it
        assert rle["size"] == list(mask.shape)
        np.testing.assert_array_equal(rle_decode(rle), mask, err_msg=path.name)


@needs_data
@pytest.mark.slow
def test_mask_to_polygons_to_mask_on_every_shared_mask() -> None:
    """Measured: mean and minimum IoU 1.0 over the 158 masks (every mask comes back pixel for pixel, holes
    included), through pycocotools' rasterisation and through OpenCV's."""
    ious = []
    for path in shared_masks():
        mask = read_truth(path)
        polygons = mask_to_polygons(mask)
        assert not any(self_intersects(p) for p in polygons), path.name
        back = polygons_decode(polygons, *mask.shape)
        ious.append(iou(back, mask))
        assert ious[-1] >= 0.99, path.name
        np.testing.assert_array_equal(polygons_to_mask(polygons, *mask.shape), back, err_msg=path.name)
    assert min(ious) >= 0.99 and np.mean(ious) == pytest.approx(1.0)


@needs_data
def test_labels_to_masks_to_labels_is_exact() -> None:
    truth = read_truth(DATA / "fluo_nuclei" / "masks" / sorted(p.name for p in (DATA / "fluo_nuclei" / "masks")
                                                                  .glob("*.png"))[0])
    instances = components(truth)
    assert len(instances) > 10
    labels, meaning = regions_to_labels([Region("nucleus", m) for m in instances], ["nucleus"], truth.shape,
                                        instances=True)
    regions = [Region(name, labels == value) for value, name in meaning.items()]
    again, _ = regions_to_labels(regions, ["nucleus"], truth.shape, instances=True)
    np.testing.assert_array_equal(again, labels)
    classes = np.zeros(truth.shape, np.int32)
    classes[truth] = 2
    classes[: truth.shape[0] // 3] = 1
    legend = legend_for(["sky", "nucleus"])
    back, _ = regions_to_labels(labels_to_regions(classes, legend), legend.names(), truth.shape)
    np.testing.assert_array_equal(back, classes)


def test_polygons_of_small_shapes_and_holes_are_exact() -> None:
    mask = np.zeros((9, 11), bool)
    mask[0, 0] = True                   # one pixel in a corner
    mask[2, 3:9] = True                 # a one-pixel line
    mask[4:9, 1:10] = True              # a block with two holes
    mask[5, 3] = mask[6:8, 6:8] = False
    mask[8, 10] = True                  # touching diagonally: the same 8-connected region
    polygons = mask_to_polygons(mask)
    assert len(polygons) == 3
    np.testing.assert_array_equal(polygons_decode(polygons, 9, 11), mask)
    np.testing.assert_array_equal(polygons_to_mask(polygons, 9, 11), mask)
    assert mask_to_polygons(np.zeros((3, 3), bool)) == []


# --- export, and back in through eval and apply -----------------------------------------------------------------


@pytest.fixture(scope="module")
def horses(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Six horse photos and their masks (a copy, so that outputs may land beside them)."""
    if not HORSES.is_dir():
        pytest.skip("../shared/data (the evaluation sets) is not beside this clone")
    root = tmp_path_factory.mktemp("horses")
    names = sorted(p.stem for p in (HORSES / "images").glob("*.png"))[::17][:6]
    for name in names:
        for kind in ("images", "masks"):
            (root / kind).mkdir(exist_ok=True)
            (root / kind / f"{name}.png").write_bytes((HORSES / kind / f"{name}.png").read_bytes())
    return root / "images", root / "masks"


def test_coco_export_loads_with_pycocotools_and_comes_back_exactly(horses, tmp_path) -> None:
    from pycocotools.coco import COCO

    images, masks = horses
    target = tmp_path / "annotations.json"
    ok(run_cli("export", str(masks), "--images", str(images), "-o", str(target), "--category", "horse"))
    coco = COCO(str(target))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["horse"]
    assert len(coco.getImgIds()) == 6 and len(coco.getAnnIds()) == 6
    for image in coco.loadImgs(coco.getImgIds()):
        truth = read_truth(masks / image["file_name"])
        (annotation,) = coco.loadAnns(coco.getAnnIds(imgIds=image["id"]))
        np.testing.assert_array_equal(coco.annToMask(annotation).astype(bool), truth)
        assert (image["height"], image["width"]) == truth.shape
        assert annotation["area"] == truth.sum()
        x, y, w, h = annotation["bbox"]
        rows, cols = np.nonzero(truth)
        assert (x, y, x + w - 1, y + h - 1) == (cols.min(), rows.min(), cols.max(), rows.max())

    scored = run_cli("eval", str(masks), str(target), "--json", "-q")
    ok(scored)
    assert json.loads(scored.stdout)["mean"]["iou"] == 1.0 and json.loads(scored.stdout)["count"] == 6

    from maskcli.compare import compare_methods

    ranking = compare_methods(images, target, [("otsu", "otsu", {}, {})], classes=["horse"])
    assert len(ranking.best.images) == 6 and not ranking.best.failed and 0 < ranking.best.mean < 1

    via_coco, via_folder = tmp_path / "a", tmp_path / "b"
    ok(run_cli("apply", str(images), "--masks", str(target), "--class", "horse", "-o", str(via_coco), "-q"))
    ok(run_cli("apply", str(images), "--masks", str(masks), "-o", str(via_folder), "-q"))
    for path in via_folder.glob("*.png"):
        assert (via_coco / path.name).read_bytes() == path.read_bytes()


def test_polygons_and_instances(horses, tmp_path) -> None:
    from pycocotools.coco import COCO

    images, masks = horses
    target = tmp_path / "polygons.json"
    ok(run_cli("export", str(masks), "-o", str(target), "--polygons", "--instances"))
    coco = COCO(str(target))
    for image in coco.loadImgs(coco.getImgIds()):
        truth = read_truth(masks / image["file_name"])
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=image["id"]))
        assert len(annotations) == len(components(truth))  # one per connected region
        assert all(isinstance(a["segmentation"], list) for a in annotations)
        union = np.zeros(truth.shape, bool)
        for annotation in annotations:
            part = coco.annToMask(annotation).astype(bool)
            assert not (union & part).any()
            union |= part
        np.testing.assert_array_equal(union, truth)


def test_yolo_export(horses, tmp_path) -> None:
    _, masks = horses
    out = tmp_path / "yolo"
    ok(run_cli("export", str(masks), "-o", str(out), "--to", "yolo", "--category", "horse"))
    assert (out / "classes.txt").read_text() == "horse\n"
    for path in masks.glob("*.png"):
        truth = read_truth(path)
        height, width = truth.shape
        polygons = []
        for line in (out / f"{path.stem}.txt").read_text().splitlines():
            number, *values = line.split()
            assert number == "0"
            points = np.asarray(values, float).reshape(-1, 2)
            assert points.min() >= 0 and points.max() <= 1
            polygons.append((points * [width, height]).ravel().tolist())
        assert iou(polygons_to_mask(polygons, height, width), truth) >= 0.999  # 6 significant digits


def test_label_images_out_and_back(horses, tmp_path) -> None:
    images, masks = horses
    out = tmp_path / "labels"
    ok(run_cli("export", str(masks), "-o", str(out), "--to", "labels", "--instances", "--category", "horse"))
    legend = json.loads((out / "labels.json").read_text())
    assert legend["kind"] == "instances" and legend["classes"] == ["horse"]
    folder = LabelFolder.open(out)
    for path in masks.glob("*.png"):
        labels = cv2.imread(str(out / path.name), cv2.IMREAD_UNCHANGED)
        assert labels.dtype == np.uint8 and labels.ndim == 2
        parts = components(read_truth(path))
        assert labels.max() == len(parts) == len(legend["instances"][path.name])
        regions, _ = folder.regions(out / path.name)
        again, _ = regions_to_labels(regions, ["horse"], labels.shape, instances=True)
        np.testing.assert_array_equal(again, labels)
    # Label folders are mask sources too: a COCO file from them, and truths for eval.
    target = tmp_path / "from-labels.json"
    ok(run_cli("export", str(out), "-o", str(target)))
    scored = run_cli("eval", str(masks), str(target), "--json", "-q")
    ok(scored)
    assert json.loads(scored.stdout)["mean"]["iou"] == 1.0
    scored = run_cli("eval", str(masks), str(out), "--class", "horse", "--json", "-q")
    ok(scored)
    assert json.loads(scored.stdout)["mean"]["iou"] == 1.0


# --- bad input: one line each, nothing half-written --------------------------------------------------------------


def _coco(path: Path, images: list[dict], annotations: list[dict]) -> Path:
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": [{"id": 1, "name": "thing"}]}))
    return path


def test_bad_coco_files_each_give_one_line(tmp_path) -> None:
    sample = tmp_path / "photos" / "coins.png"
    sample.parent.mkdir()
    sample.write_bytes((SAMPLES / "coins.png").read_bytes())
    height, width = cv2.imread(str(sample)).shape[:2]
    square = [[2, 2, 20, 2, 20, 20, 2, 20]]
    wrong_size = _coco(tmp_path / "size.json", [{"id": 1, "file_name": "coins.jpg", "width": width + 1,
                                                 "height": height}],
                       [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": square}])
    done = run_cli("apply", str(sample.parent), "--masks", str(wrong_size), "-o", str(tmp_path / "out"))
    assert done.returncode == 1
    (line,) = error_lines(done)
    assert f"gives coins.jpg as {width + 1}×{height}, but the image is {width}×{height}" in line
    assert not (tmp_path / "out" / "coins.png").exists()

    done = run_cli("apply", str(sample.parent), "--masks", str(wrong_size), "--class", "person", "-o",
                   str(tmp_path / "out"))
    assert done.returncode == 2
    assert error_lines(done) == [f"maskcli: error: --class: {wrong_size} has no category 'person'; its "
                                 "categories: thing"]

    entries = [{"id": i, "file_name": f"{name}.png", "width": 30, "height": 30}
               for i, name in enumerate(["empty", "bowtie", "short", "fine"], start=1)]
    broken = _coco(tmp_path / "broken.json", entries, [
        {"id": 1, "image_id": 1, "category_id": 1, "segmentation": []},
        {"id": 2, "image_id": 2, "category_id": 1, "segmentation": [[0, 0, 10, 10, 10, 0, 0, 10]]},
        {"id": 3, "image_id": 3, "category_id": 1, "segmentation": [[0, 0, 10, 10]]},
        {"id": 4, "image_id": 4, "category_id": 1, "segmentation": square},
        {"id": 5, "image_id": 99, "category_id": 1, "segmentation": square},
    ])
    predictions = tmp_path / "pred"
    predictions.mkdir()
    for name in ("empty", "bowtie", "short", "fine"):
        cv2.imwrite(str(predictions / f"{name}.png"), np.zeros((30, 30), np.uint8))
    done = run_cli("eval", str(predictions), str(broken), "-q")
    assert done.returncode == 1
    stderr = done.stderr.decode()
    assert "annotation 5: image id 99 is not in images; ignored" in stderr
    assert "annotation 1 of empty.png: empty segmentation" in stderr
    assert "annotation 2 of bowtie.png: polygon 0 intersects itself" in stderr
    assert "annotation 3 of short.png: polygon 0 is not a list of at least 3 x, y points" in stderr
    assert len(error_lines(done)) == 3

    not_coco = tmp_path / "notes.json"
    not_coco.write_text("[1, 2]")
    done = run_cli("eval", str(predictions), str(not_coco))
    assert done.returncode == 3
    assert error_lines(done) == [f"maskcli: error: {not_coco}: not a COCO file (expected an object with images "
                                 "and annotations lists)"]


def test_export_writes_nothing_when_a_mask_fails(tmp_path) -> None:
    masks = tmp_path / "masks"
    masks.mkdir()
    cv2.imwrite(str(masks / "a.png"), np.full((8, 8), 255, np.uint8))
    (masks / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    target = tmp_path / "out.json"
    done = run_cli("export", str(masks), "-o", str(target))
    assert done.returncode == 1
    lines = error_lines(done)
    assert len(lines) == 2 and lines[0].startswith(f"maskcli: error: {masks / 'b.png'}: ")
    assert lines[1] == f"maskcli: error: {target} not written: 1 of 2 masks failed"
    assert not target.exists() and list(tmp_path.glob("*.json")) == []
    target.write_text("keep me")
    done = run_cli("export", str(masks), "-o", str(target))
    assert done.returncode == 2 and "exists (use --overwrite" in done.stderr.decode()
    assert target.read_text() == "keep me"


def test_without_pycocotools_coco_is_a_setup_error_saying_how_to_install(tmp_path) -> None:
    masks = tmp_path / "masks"
    masks.mkdir()
    cv2.imwrite(str(masks / "a.png"), np.full((8, 8), 255, np.uint8))
    hide = ("import sys; sys.modules['pycocotools'] = None; from maskcli.cli.app import main; "
            "sys.exit(main(sys.argv[1:]))")
    import subprocess

    for args in (["export", str(masks), "-o", str(tmp_path / "a.json")],
                 ["eval", str(masks), str(tmp_path / "a.json")]):
        (tmp_path / "a.json").unlink(missing_ok=True)
        if args[0] == "eval":
            (tmp_path / "a.json").write_text("{}")
        done = subprocess.run([sys.executable, "-c", hide, *args], capture_output=True, timeout=120)
        assert done.returncode == 3, done.stderr.decode()
        assert done.stderr.decode().strip() == ("maskcli: error: COCO files need pycocotools, a dependency of "
                                                "maskcli missing here: pip install pycocotools")
    # YOLO and label images need nothing more.
    done = subprocess.run([sys.executable, "-c", hide, "export", str(masks), "-o", str(tmp_path / "y"), "--to",
                           "yolo", "-q"], capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()


def test_the_registry_lists_the_formats() -> None:
    assert export_formats.names() == ["coco", "labels", "yolo"]
    with pytest.raises(Exception, match="unknown export format 'cocoa'; did you mean 'coco'"):
        export_formats.get("cocoa")


def test_coco_reader_matches_by_path_then_stem(tmp_path) -> None:
    path = _coco(tmp_path / "a.json", [{"id": 1, "file_name": "train/x.jpg", "width": 4, "height": 3},
                                       {"id": 2, "file_name": "y.jpg", "width": 4, "height": 3}], [])
    coco = CocoAnnotations.load(path)
    assert coco.find("train/x.png").id == 1 and coco.find("x.png").id == 1 and coco.find("y.tif").id == 2
    assert coco.find("z.png") is None
    assert coco.mask(coco.find("y.png")).shape == (3, 4)  # no annotations: an empty mask


# --- label images from a semantic model, through the whole path with random weights ------------------------------


@pytest.mark.slow
def test_segment_labels_from_a_semantic_model_then_apply_and_export(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    from torchvision.models import segmentation

    from maskcli.cnn import specs

    torch.manual_seed(0)
    weights = tmp_path / "deeplab.pth"
    torch.save(segmentation.deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None,
                                                         num_classes=21).state_dict(), weights)
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(3)
    for name, shape in (("a", (60, 80, 3)), ("b", (50, 40, 3))):
        cv2.imwrite(str(photos / f"{name}.png"), (rng.random(shape) * 255).astype(np.uint8))
    out = tmp_path / "labels"
    model = ["--model", "deeplabv3-mobilenet-v3", "--weights", str(weights)]
    done = run_cli("segment", str(photos), "-o", str(out), *model, "--labels", "--json")
    ok(done)
    classes = list(specs.VOC_CATEGORIES[1:])
    assert json.loads((out / "labels.json").read_text())["classes"] == {str(i): c for i, c in
                                                                        enumerate(classes, start=1)}
    records = {Path(r["input"]).stem: r for r in map(json.loads, done.stdout.decode().splitlines())}
    labels = cv2.imread(str(out / "a.png"), cv2.IMREAD_UNCHANGED)
    assert labels.dtype == np.uint8 and labels.shape == (60, 80) and labels.max() <= 20
    found = [classes[v - 1] for v in np.unique(labels) if v]
    assert found and records["a"]["classes_found"] == found  # random weights: one class tends to win everywhere

    # The same maps as the library's, pixel for pixel.
    from maskcli.methods import methods

    method = methods.create("cnn", {"model": "deeplabv3-mobilenet-v3", "weights": str(weights), "device": "cpu"})
    image = cv2.cvtColor(cv2.imread(str(photos / "a.png")), cv2.COLOR_BGR2RGB).astype(np.float32) / 255
    (made,) = method.compute_labels([image])
    np.testing.assert_array_equal(made.labels, labels)

    # apply picks classes from the label images; export turns them into a COCO file of those classes.
    pick = found[0]
    cutouts = tmp_path / "cutouts"
    ok(run_cli("apply", str(photos), "--masks", str(out), "--class", pick, "-o", str(cutouts), "-q"))
    alpha = cv2.imread(str(cutouts / "a.png"), cv2.IMREAD_UNCHANGED)[:, :, 3]
    np.testing.assert_array_equal(alpha > 0, labels == classes.index(pick) + 1)
    target = tmp_path / "classes.json"
    ok(run_cli("export", str(out), "--images", str(photos), "-o", str(target)))
    document = json.loads(target.read_text())
    assert [c["name"] for c in document["categories"]] == classes
    first = [a for a in document["annotations"] if a["image_id"] == 1]
    assert sorted(classes[a["category_id"] - 1] for a in first) == sorted(found)

    done = run_cli("segment", str(photos), "-o", str(tmp_path / "x"), "-m", "otsu", "--labels")
    assert done.returncode == 2
    assert error_lines(done) == ["maskcli: error: --labels: method 'otsu' has no classes; label images come from "
                                 "a semantic CNN model (--model deeplabv3-resnet50 ...)"]
    done = run_cli("segment", str(photos), "-o", str(out), *model, "--classes", "dog", "--labels")
    assert done.returncode == 2 and "labels.json exists with other classes" in done.stderr.decode()


def test_label_maps_pick_the_most_probable_chosen_class() -> None:
    """A stand-in for a semantic model whose scores follow the colour: person where red, dog where green,
    the background where black."""
    torch = pytest.importorskip("torch")
    from maskcli.cnn import specs
    from maskcli.cnn.infer import Segmenter

    spec = specs.get("deeplabv3-resnet50")
    person, dog = spec.categories.index("person"), spec.categories.index("dog")

    class ByColour(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 21, 1)
            with torch.no_grad():
                self.conv.weight.zero_()
                self.conv.bias.fill_(-100.0)
                self.conv.bias[0] = 0.0
                self.conv.weight[person, 0] = self.conv.weight[dog, 1] = 10.0
                self.conv.bias[person] = self.conv.bias[dog] = 0.0

        def forward(self, x):  # type: ignore[no-untyped-def]
            return {"out": self.conv(x)}

    image = np.zeros((40, 90, 3), np.float32)
    image[:, :30, 0] = 1.0   # red: person
    image[:, 60:, 1] = 1.0   # green: dog
    both = Segmenter(spec, ByColour(), classes=(person, dog)).predict_labels([image])[0]
    assert both.shape == (40, 90) and both.dtype == np.uint8
    assert (both[:, :25] == 1).all() and (both[:, 35:55] == 0).all() and (both[:, 65:] == 2).all()
    only_dog = Segmenter(spec, ByColour(), classes=(dog,)).predict_labels([image])[0]
    assert (only_dog[:, :55] == 0).all() and (only_dog[:, 65:] == 1).all()  # person counts as the rest


def test_label_images_take_16_bits_when_8_do_not_hold_the_labels(tmp_path) -> None:
    from maskcli.formats.labels import encode_labels, read_labels

    labels = np.arange(300 * 4, dtype=np.int32).reshape(30, 40) % 300
    path = tmp_path / "many.png"
    path.write_bytes(encode_labels(labels))
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    np.testing.assert_array_equal(read_labels(path), labels)
    path.write_bytes(encode_labels(labels % 200))
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).dtype == np.uint8


def test_export_checks_each_mask_against_its_image(tmp_path) -> None:
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for name, size in (("a", (10, 12)), ("b", (10, 12)), ("c", (10, 12))):
        cv2.imwrite(str(masks / f"{name}.png"), np.full(size, 255, np.uint8))
    cv2.imwrite(str(images / "a.jpg"), np.zeros((10, 12, 3), np.uint8))
    cv2.imwrite(str(images / "b.jpg"), np.zeros((12, 10, 3), np.uint8))
    out = tmp_path / "yolo"
    done = run_cli("export", str(masks), "--images", str(images), "-o", str(out), "--to", "yolo")
    assert done.returncode == 1
    assert error_lines(done) == [
        f"maskcli: error: {masks / 'b.png'}: mask is 12×10 but its image {images / 'b.jpg'} is 10×12",
        f"maskcli: error: {masks / 'c.png'}: no image named c.* in {images}",
    ]
    assert sorted(p.name for p in out.iterdir()) == ["a.txt", "classes.txt"]
