"""``maskcli train`` and :func:`maskcli.train.fine_tune`: a tiny real run on nuclei, the checkpoint loading wherever
a model does, interrupt and resume, and the data policy on bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import DATA, REPO, U2NETP, needs_data, needs_u2netp, run_cli

pytest.importorskip("torch")
pytestmark = [needs_data, needs_u2netp]

NUCLEI = ["gowt1_t01", "gowt1_t21", "gowt1_t31", "gowt1_t39", "gowt1_t52", "gowt1_t72"]
#: A tiny, fast run: 96×96 inputs, 64×64 crops.
TINY = ["--size", "96", "--crop", "64", "--batch-size", "5", "--weights", str(U2NETP)]


def _nuclei(root: Path, names: list[str] = NUCLEI, side: int = 192) -> tuple[Path, Path]:
    """Real nuclei pairs, shrunk to ``side`` pixels so that validation is quick."""
    images, masks = root / "images", root / "masks"
    images.mkdir(parents=True, exist_ok=True)
    masks.mkdir(parents=True, exist_ok=True)
    for name in names:
        image = cv2.imread(str(DATA / "fluo_nuclei" / "images" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        mask = cv2.imread(str(DATA / "fluo_nuclei" / "masks" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        cv2.imwrite(str(images / f"{name}.png"), cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA))
        cv2.imwrite(str(masks / f"{name}.png"), cv2.resize(mask, (side, side), interpolation=cv2.INTER_NEAREST))
    return images, masks


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One tiny library run shared by the tests that only read its result."""
    from maskcli.train import EpochRecord, TrainSettings, fine_tune

    root = tmp_path_factory.mktemp("train")
    images, masks = _nuclei(root)
    events: list = []
    settings = TrainSettings(size=96, crop=64, batch_size=5, epochs=4, patience=4, weights=str(U2NETP))
    result = fine_tune(images, masks, root / "model.pt", settings, on_event=events.append)
    return {"root": root, "images": images, "masks": masks, "result": result,
            "epochs": [e for e in events if isinstance(e, EpochRecord)]}


@pytest.mark.slow
@pytest.mark.timeout(1200)  # a tiny run, but a busy machine can stretch it well past the default
def test_training_lowers_the_loss_and_raises_validation_iou(trained: dict) -> None:
    result, epochs = trained["result"], trained["epochs"]
    assert [e.epoch for e in epochs] == [0, 1, 2, 3, 4]
    assert epochs[0].train_loss is None and epochs[0].val == result.start_scores
    assert epochs[-1].train_loss < epochs[1].train_loss
    # The salient-object model finds almost no nuclei; four tiny epochs already find many.
    assert result.start_scores["iou"] < 0.2
    assert result.best_scores["iou"] > result.start_scores["iou"] + 0.1
    assert (result.train_pairs, result.val_pairs) == (5, 1)
    assert not (trained["root"] / "model.pt.resume").exists()  # removed when the run finishes


@pytest.mark.slow
@pytest.mark.timeout(1200)  # a tiny run, but a busy machine can stretch it well past the default
def test_the_checkpoint_holds_its_metadata(trained: dict) -> None:
    from maskcli.cnn.weights import checkpoint_meta

    meta = checkpoint_meta(trained["root"] / "model.pt")
    assert meta is not None
    assert (meta["base_model"], meta["input_size"], meta["threshold"]) == ("u2netp", 96, 0.5)
    assert meta["val_scores"] == trained["result"].best_scores
    assert meta["start_scores"] == trained["result"].start_scores
    assert len(meta["data_fingerprint"]) == 16
    import maskcli

    assert meta["maskcli_version"] == maskcli.__version__
    # No machine's paths: the starting weights by file name only, and no setting holds an absolute path.
    assert meta["settings"]["weights"] == U2NETP.name
    assert not [v for v in meta["settings"].values() if isinstance(v, str) and os.path.isabs(v)]
    # Every open setting says what it was measured from; the ones the test gave say so.
    assert set(meta["decisions"]) == {"flips", "size", "crop", "batch_size", "both_classes", "lr"}
    assert meta["decisions"]["flips"]["value"] == "hv" and "grey share 1.00" in meta["decisions"]["flips"]["reason"]
    assert meta["decisions"]["size"] == {"value": 96, "reason": "set by the user"}
    assert meta["decisions"]["lr"]["value"] == 1e-4 and meta["settings"]["lr"] == 1e-4
    assert meta["stopped"] == "epochs" and meta["settings"]["epochs"] == 4
    shown = run_cli("models", "info", str(trained["root"] / "model.pt"), env={"COLUMNS": "200"})
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout.decode()
    assert "base_model" in text and meta["data_fingerprint"] in text and "input_size" in text


@pytest.mark.slow
@pytest.mark.timeout(1200)  # a tiny run, but a busy machine can stretch it well past the default
def test_the_checkpoint_works_in_segment_apply_and_eval(trained: dict, tmp_path: Path) -> None:
    from maskcli.metrics import iou

    model, images, masks = trained["root"] / "model.pt", trained["images"], trained["masks"]
    assert json.loads(json.dumps(trained["result"].history))[-1]["epoch"] == 4  # the records are plain data
    done = run_cli("segment", str(images), "-o", str(tmp_path / "out"), "--model", "u2netp", "--weights", str(model))
    assert done.returncode == 0, done.stderr
    scores = []
    for name in NUCLEI:
        predicted = cv2.imread(str(tmp_path / "out" / f"{name}.png"), cv2.IMREAD_GRAYSCALE) / 255.0
        truth = cv2.imread(str(masks / f"{name}.png"), cv2.IMREAD_GRAYSCALE) / 255.0
        scores.append(iou(predicted.astype(np.float32), truth.astype(np.float32)))
    assert np.mean(scores) > trained["result"].start_scores["iou"] + 0.1
    applied = run_cli("apply", str(images / "gowt1_t01.png"), "-o", str(tmp_path / "cut"), "--method", "cnn",
                      "--weights", str(model), "--mode", "cutout")
    assert applied.returncode == 0, applied.stderr
    assert any((tmp_path / "cut").iterdir())
    ranked = run_cli("eval", "--methods", f"cnn:weights={model}", str(images), str(masks), "--json")
    assert ranked.returncode == 0, ranked.stderr
    assert json.loads(ranked.stdout)["ranking"][0]["mean"]["iou"] == pytest.approx(np.mean(scores), abs=0.02)


@pytest.mark.slow
@pytest.mark.timeout(1200)  # a tiny run, but a busy machine can stretch it well past the default
def test_a_checkpoint_of_another_architecture_is_refused_in_one_line(trained: dict, tmp_path: Path) -> None:
    done = run_cli("segment", str(trained["images"] / "gowt1_t01.png"), "-o", str(tmp_path), "--model", "u2net",
                   "--weights", str(trained["root"] / "model.pt"))
    assert done.returncode == 3
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "fine-tuned from u2netp" in lines[0] and "--model u2netp" in lines[0]


@pytest.mark.slow
@pytest.mark.timeout(1200)  # a tiny run, but a busy machine can stretch it well past the default
def test_ctrl_c_saves_and_exits_130_and_resume_finishes(tmp_path: Path) -> None:
    images, masks = _nuclei(tmp_path / "data", side=128)
    output = tmp_path / "model.pt"
    command = [sys.executable, "-m", "maskcli", "train", str(images), str(masks), "-o", str(output), *TINY,
               "--epochs", "50", "--patience", "50", "--seed", "3"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ})
    assert process.stderr is not None
    seen = []
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        seen.append(line)
        if line.startswith("maskcli: epoch 1/50"):
            break
    else:
        process.kill()
        pytest.fail(f"no first epoch: {seen}")
    process.send_signal(signal.SIGINT)
    rest = process.communicate(timeout=600)[1]
    assert process.returncode == 130, rest
    assert "interrupted after" in rest and "--resume" in rest
    assert output.is_file() and (tmp_path / "model.pt.resume").is_file()

    again = run_cli("train", str(images), str(masks), "-o", str(output), *TINY, "--epochs", "3", "--patience", "50",
                    "--seed", "3", "--resume", "--json", timeout=900)
    assert again.returncode == 0, again.stderr
    records = [json.loads(line) for line in again.stdout.decode().splitlines()]
    epochs = [r["epoch"] for r in records if "epoch" in r]
    assert epochs and epochs[0] >= 2 and epochs[-1] == 3  # continued, not restarted at 0
    assert records[-1]["epochs_run"] == 3
    assert not (tmp_path / "model.pt.resume").exists()
    from maskcli.cnn.weights import checkpoint_meta

    assert checkpoint_meta(output)["epochs_run"] == 3


def test_an_existing_output_is_not_replaced_and_resume_needs_its_file(tmp_path: Path) -> None:
    images, masks = _nuclei(tmp_path / "data", NUCLEI[:1], side=64)
    output = tmp_path / "model.pt"
    output.write_bytes(b"keep")
    done = run_cli("train", str(images), str(masks), "-o", str(output))
    assert done.returncode == 2 and b"--overwrite" in done.stderr and output.read_bytes() == b"keep"
    fresh = tmp_path / "new.pt"
    done = run_cli("train", str(images), str(masks), "-o", str(fresh), "--resume", *TINY)
    assert done.returncode == 3


def test_too_few_pairs_are_refused_with_the_minimum(tmp_path: Path) -> None:
    images, masks = _nuclei(tmp_path, NUCLEI[:4], side=64)
    done = run_cli("train", str(images), str(masks), "-o", str(tmp_path / "m.pt"), *TINY)
    assert done.returncode == 3
    assert b"4 usable image/mask pairs: at least 5 are needed" in done.stderr
    assert not (tmp_path / "m.pt").exists()


def test_unpaired_files_are_listed_and_all_empty_masks_refused(tmp_path: Path) -> None:
    images, masks = _nuclei(tmp_path, side=64)
    for mask in masks.iterdir():
        cv2.imwrite(str(mask), np.zeros((64, 64), np.uint8))
    cv2.imwrite(str(images / "stray.png"), np.zeros((64, 64), np.uint8))
    cv2.imwrite(str(masks / "lonely.png"), np.zeros((64, 64), np.uint8))
    done = run_cli("train", str(images), str(masks), "-o", str(tmp_path / "m.pt"), *TINY)
    err = done.stderr.decode()
    assert done.returncode == 3, err
    assert "stray.png: training image without a mask" in err
    assert "lonely.png: training mask without an image" in err
    assert "training masks is empty" in err


def test_mask_size_policy_resizes_same_shape_and_leaves_out_other_shapes(tmp_path: Path) -> None:
    from maskcli.train import Notice, _load_pairs

    images, masks = _nuclei(tmp_path, NUCLEI[:3], side=64)
    half = cv2.imread(str(masks / f"{NUCLEI[0]}.png"), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(masks / f"{NUCLEI[0]}.png"), cv2.resize(half, (32, 32), interpolation=cv2.INTER_NEAREST))
    cv2.imwrite(str(masks / f"{NUCLEI[1]}.png"), np.zeros((64, 40), np.uint8))
    notices: list[Notice] = []
    pairs = _load_pairs(images, masks, "training", notices)
    assert pairs.keys == [NUCLEI[0], NUCLEI[2]]
    assert pairs.masks[0].shape == (64, 64)
    text = [n.message for n in notices]
    assert "mask is 32×32 but the image is 64×64; mask resized to the image" in text
    assert "mask is 40×64 but the image is 64×64 (another shape); pair left out" in text


@pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools")
def test_masks_from_label_images_or_a_coco_file_pair_as_in_eval(tmp_path: Path) -> None:
    from maskcli.formats.labels import legend_for, write_legend
    from maskcli.train import _load_pairs

    images, masks = _nuclei(tmp_path, side=64)
    labels = tmp_path / "labels"
    labels.mkdir()
    truths = {path.stem: cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) > 127 for path in masks.iterdir()}
    for name, truth in truths.items():
        cv2.imwrite(str(labels / f"{name}.png"), (truth * 2).astype(np.uint8))  # label 2: nucleus
    write_legend(labels, legend_for(["debris", "nucleus"]))
    folder = _load_pairs(images, masks, "training", [])
    from_labels = _load_pairs(images, labels, "training", [], ["nucleus"])
    assert from_labels.keys == folder.keys == NUCLEI
    for a, b in zip(from_labels.masks, folder.masks):
        np.testing.assert_array_equal(a, b)
    assert from_labels.digests != folder.digests  # the fingerprint follows where the masks came from
    # The CLI passes --class on: a class no pixel has leaves every mask empty, which is refused.
    done = run_cli("train", str(images), str(labels), "-o", str(tmp_path / "m.pt"), "--class", "debris", *TINY)
    assert done.returncode == 3 and b"training masks is empty" in done.stderr, done.stderr.decode()

    pytest.importorskip("pycocotools", reason="COCO files need pycocotools (pip install 'maskcli[coco]')")
    from maskcli.formats.coco import rle_encode

    entries, annotations = [], []
    for number, (name, truth) in enumerate(sorted(truths.items()), start=1):
        entries.append({"id": number, "file_name": f"{name}.png", "height": 64, "width": 64})
        annotations.append({"id": number, "image_id": number, "category_id": 2, "iscrowd": 0,
                            "segmentation": rle_encode(truth), "area": int(truth.sum())})
    coco = tmp_path / "nuclei.json"
    coco.write_text(json.dumps({"images": entries, "annotations": annotations,
                                "categories": [{"id": 1, "name": "debris"}, {"id": 2, "name": "nucleus"}]}))
    from_coco = _load_pairs(images, coco, "training", [])
    assert from_coco.keys == folder.keys
    for a, b in zip(from_coco.masks, folder.masks):
        np.testing.assert_array_equal(a, b)


def test_settings_are_checked_and_errors_name_the_flag(tmp_path: Path) -> None:
    images, masks = _nuclei(tmp_path, NUCLEI[:1], side=64)
    done = run_cli("train", str(images), str(masks), "-o", str(tmp_path / "m.pt"), "--size", "100")
    assert done.returncode == 2 and b"--size: must be a multiple of 32" in done.stderr
    done = run_cli("train", str(images), str(masks), "-o", str(tmp_path / "m.pt"), "--val-images", str(images))
    assert done.returncode == 2 and b"--val-masks" in done.stderr
    done = run_cli("train", str(images), str(masks), "-o", str(tmp_path / "m.pt"), "--model", "isnet-general-use")
    assert done.returncode == 2 and b"--model: fine-tuning works with the models built in torch" in done.stderr
    assert b"lraspp-mobilenet-v3" in done.stderr  # the semantic models are among them
    done = run_cli("train", str(images), str(masks), "-o", str(tmp_path / "m.pt"), "--model", "lraspp-mobilenet-v3",
                   "--freeze", "2")
    assert done.returncode == 2 and b"--freeze: lraspp-mobilenet-v3: 1 (the backbone fixed" in done.stderr


@pytest.mark.slow
@pytest.mark.timeout(1200)  # a small run, but a busy machine can stretch it well past the default
def test_a_semantic_models_head_fine_tunes_with_its_backbone_fixed(tmp_path: Path) -> None:
    """A torchvision model given as a weights file fine-tunes its head only, and the result segments from the
    command line. No weights can be downloaded in the tests, so the start is a random LR-ASPP whose batch-norm
    statistics are set on the images (so that its features carry the image) and whose classifiers are zero (every
    pixel foreground, as a VOC model sees an unknown scene)."""
    import torch
    from torchvision.models import segmentation

    from maskcli.cnn.weights import checkpoint_meta, read_checkpoint
    from maskcli.metrics import score
    from maskcli.train import EpochRecord, TrainSettings, fine_tune

    images, masks = _nuclei(tmp_path / "data", side=128)
    torch.manual_seed(0)
    network = segmentation.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=21)
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # a plain average over the batch below
    pixels = [cv2.resize(cv2.imread(str(path)), (96, 96)) for path in sorted(images.iterdir())]
    with torch.no_grad():
        network.train()(torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2).float() / 255.0)
    start = network.state_dict()
    for key in [k for k in start if "_classifier." in k]:
        start[key].zero_()
    torch.save(start, tmp_path / "lraspp.pth")

    events: list = []
    settings = TrainSettings(model="lraspp-mobilenet-v3", weights=str(tmp_path / "lraspp.pth"), size=96, crop=64,
                             batch_size=3, epochs=2, patience=2, both_classes=True)
    result = fine_tune(images, masks, tmp_path / "head.pt", settings, val_images=images, val_masks=masks,
                       on_event=events.append)
    epochs = [e for e in events if isinstance(e, EpochRecord)]
    assert epochs[-1].train_loss < epochs[1].train_loss and result.settings["freeze"] == 1
    # Every pixel foreground scores the nuclei's share on the foreground and nothing on the background.
    assert result.start_scores["iou_both"] < 0.1 < 0.3 < result.best_scores["iou_both"]

    trained = read_checkpoint(tmp_path / "head.pt")["model"]
    backbone = [k for k in start if k.startswith("backbone.")]
    head = [k for k in start if k.startswith("classifier.") and start[k].is_floating_point()]
    assert backbone and head and set(trained) == set(start)
    # Every backbone tensor as it was, batch-norm statistics included; the head's weights have moved.
    assert all(torch.equal(trained[k], start[k]) for k in backbone)
    assert any(not torch.equal(trained[k], start[k]) for k in head)
    meta = checkpoint_meta(tmp_path / "head.pt")
    assert (meta["base_model"], meta["kind"], meta["input_size"]) == ("lraspp-mobilenet-v3", "semantic", 96)

    done = run_cli("segment", str(images), "-o", str(tmp_path / "out"), "--model", "lraspp-mobilenet-v3",
                   "--weights", str(tmp_path / "head.pt"))
    assert done.returncode == 0, done.stderr
    scores = []
    for name in NUCLEI:
        predicted = cv2.imread(str(tmp_path / "out" / f"{name}.png"), cv2.IMREAD_GRAYSCALE) / 255.0
        truth = cv2.imread(str(masks / f"{name}.png"), cv2.IMREAD_GRAYSCALE) / 255.0
        scores.append(score(predicted.astype(np.float32), truth.astype(np.float32), level=0.5)["iou_both"])
    # segment reads the fine-tuned model as validation did: the same score.
    assert np.mean(scores) == pytest.approx(result.best_scores["iou_both"], abs=0.01)


def _real_pairs(name: str, count: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The first ``count`` pairs of a shared set, read as training reads them."""
    from maskcli.io.decode import read_image

    paths = sorted((DATA / name / "images").iterdir())[:count]
    images = [read_image(path).pixels for path in paths]
    masks = [read_image(DATA / name / "masks" / f"{path.stem}.png", gray=True).pixels for path in paths]
    return images, masks


def _decide(name: str, count: int, **given: object) -> dict:
    from maskcli.train import CPU_DEFAULTS
    from maskcli.train_defaults import decide

    images, masks = _real_pairs(name, count)
    chosen = decide(images, masks, model_size=320, adapt_size=True, device_crop=CPU_DEFAULTS["crop"],
                    device_batch=CPU_DEFAULTS["batch_size"], given=given)
    return {key: decision.value for key, decision in chosen.items()}


def test_defaults_measured_on_grey_nuclei_match_their_tuned_recipe() -> None:
    # The tuned recipe (benchmarks/results/train.md): --flips hv --size 448, 192 crops.
    chosen = _decide("fluo_nuclei", 20)
    assert chosen == {"flips": "hv", "size": 448, "crop": 192, "batch_size": 2, "both_classes": False}


def test_defaults_measured_on_em_score_both_classes_at_full_resolution() -> None:
    # The tuned recipe: --flips hv --both-classes --size 512 --batch-size 2.
    chosen = _decide("isbi2012_em", 20)
    assert chosen == {"flips": "hv", "size": 512, "crop": 192, "batch_size": 2, "both_classes": True}


def test_defaults_measured_on_colour_photos_keep_an_up_and_whole_images() -> None:
    # One large horse per photo: horizontal flips only, the model's 320 input, whole images as patches.
    chosen = _decide("weizmann_horses", 80)
    assert chosen == {"flips": "h", "size": 320, "crop": 320, "batch_size": 4, "both_classes": False}


def test_explicit_settings_win_over_the_measured_ones() -> None:
    from maskcli.train import CPU_DEFAULTS
    from maskcli.train_defaults import decide

    images, masks = _real_pairs("isbi2012_em", 8)
    chosen = decide(images, masks, model_size=320, adapt_size=True, device_crop=CPU_DEFAULTS["crop"],
                    device_batch=4, given={"flips": "none", "both_classes": False, "size": 320, "batch_size": 3})
    assert {k: d.value for k, d in chosen.items()} == {"flips": "none", "size": 320, "crop": 192, "batch_size": 3,
                                                       "both_classes": False}
    assert chosen["flips"].reason == "set by the user" and "typical object" in chosen["crop"].reason
    # A checkpoint (or a semantic model) brings its own input size: the data does not change it.
    kept = decide(images, masks, model_size=384, adapt_size=False, device_crop=192, device_batch=4)
    assert kept["size"].value == 384


@pytest.mark.slow
@pytest.mark.timeout(1200)  # a tiny run, but a busy machine can stretch it well past the default
def test_a_time_budget_stops_cleanly_with_a_resumable_checkpoint(tmp_path: Path) -> None:
    from maskcli.cnn.weights import checkpoint_meta

    images, masks = _nuclei(tmp_path / "data", side=128)
    output = tmp_path / "model.pt"
    started = time.monotonic()
    done = run_cli("train", str(images), str(masks), "-o", str(output), *TINY, "--seed", "3", "--time", "40s",
                   "--epochs", "500", "--json", timeout=900)
    wall = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.decode().splitlines()]
    summary = records[-1]
    assert summary["stopped"] == "time" and 1 <= summary["epochs_run"] < 500
    assert summary["seconds"] <= 40 + 5  # the last step may overrun; no epoch starts that cannot fit
    assert wall < 40 + 60  # what the budget leaves out: starting Python and torch
    assert "stopped at the 40s time limit" in done.stderr.decode()
    # The same files as Ctrl-C leaves: the best epoch, its record, and the state to continue from.
    meta = checkpoint_meta(output)
    assert meta["stopped"] == "time" and meta["epochs_run"] == summary["epochs_run"]
    assert meta["best_epoch"] == summary["best_epoch"] and meta["settings"]["time"] == 40.0
    assert (tmp_path / "model.pt.resume").is_file()

    target = summary["epochs_run"] + 1
    # With no time limit, patience applies again (8 epochs by default): a long patience lets the one epoch run.
    again = run_cli("train", str(images), str(masks), "-o", str(output), *TINY, "--seed", "3", "--time", "0",
                    "--epochs", str(target), "--patience", "1000", "--resume", "--json", timeout=900)
    assert again.returncode == 0, again.stderr
    records = [json.loads(line) for line in again.stdout.decode().splitlines()]
    assert [r["epoch"] for r in records if "epoch" in r] == [target]  # continued, not restarted
    assert records[-1]["stopped"] == "epochs" and records[-1]["epochs_run"] == target
    assert not (tmp_path / "model.pt.resume").exists()


def test_a_time_that_is_no_duration_names_the_flag(tmp_path: Path) -> None:
    images, masks = _nuclei(tmp_path, NUCLEI[:1], side=64)
    done = run_cli("train", str(images), str(masks), "-o", str(tmp_path / "m.pt"), "--time", "soon")
    assert done.returncode == 2 and b"--time: not a duration: 'soon'" in done.stderr
