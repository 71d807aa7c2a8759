"""Pairing predictions with truths, scoring folders, ranking methods, and ``maskcli eval`` as a user runs it."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

from maskcli.compare import MethodSpec, compare_methods, parse_method_specs
from maskcli.errors import OptionError, SetupError
from maskcli.evaluate import ImageScore, evaluate_folders, worst_first
from maskcli.io.files import write_atomic
from maskcli.io.masks import encode_mask
from maskcli.io.pairing import pair_files

from conftest import DATA, needs_data, run_cli


def put(root: Path, name: str, mask: np.ndarray) -> Path:
    path = root / name
    write_atomic(path, encode_mask(mask.astype(np.float32)))
    return path


def half(rows: int = 8, cols: int = 8, split: int = 4) -> np.ndarray:
    mask = np.zeros((rows, cols), np.float32)
    mask[:, :split] = 1
    return mask


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """pred/ and gt/ with two pairs (one in a sub-folder), one prediction and one truth without a partner."""
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    put(pred, "a.png", half())  # perfect
    put(gt, "a.png", half())
    put(pred, "sub/b.png", half(split=2))  # IoU 2/4
    put(gt, "sub/b.png", half())
    put(pred, "only_pred.png", half())
    put(gt, "only_gt.png", half())
    put(gt, "b.png", half())  # same stem as sub/b but another folder: does not pair with it
    return pred, gt


def test_pairing_by_relative_path_and_stem(folders):
    pred, gt = folders
    pairing = pair_files(pred, gt)
    assert [(p.key, Path(p.source).relative_to(pred).as_posix(), Path(p.truth).relative_to(gt).as_posix())
            for p in pairing.pairs] == [("a", "a.png", "a.png"), ("sub/b", "sub/b.png", "sub/b.png")]
    assert pairing.unpaired_sources == ["only_pred.png"]
    assert pairing.unpaired_truths == ["b.png", "only_gt.png"]


def test_pairing_ignores_the_suffix_and_reports_duplicates(tmp_path):
    images, gt = tmp_path / "images", tmp_path / "gt"
    put(images, "x.jpg", half())  # an image x.jpg pairs with the truth x.png
    put(images, "x.png", half())  # ... and a second file with the same stem is a problem, not a silent pick
    put(gt, "x.png", half())
    pairing = pair_files(images, gt)
    assert [p.key for p in pairing.pairs] == ["x"]
    assert Path(pairing.pairs[0].source).name == "x.jpg"
    assert len(pairing.problems) == 1 and "same name" in pairing.problems[0][1]


def test_two_files_pair_whatever_their_names(tmp_path):
    a = put(tmp_path, "prediction.png", half())
    b = put(tmp_path, "truth.png", half())
    pairing = pair_files(a, b)
    assert len(pairing.pairs) == 1 and not pairing.unpaired_sources and not pairing.unpaired_truths


def test_evaluate_folders_means_and_worst_first(folders):
    pred, gt = folders
    result = evaluate_folders(pred, gt)
    assert [i.key for i in result.images] == ["a", "sub/b"]
    assert result.images[1].scores["iou"] == 0.5
    assert result.means["iou"] == pytest.approx(0.75)
    assert [i.key for i in worst_first(result.images)] == ["sub/b", "a"]


def test_unreadable_pair_fails_alone(folders):
    pred, gt = folders
    (pred / "a.png").write_bytes(b"not a png")
    result = evaluate_folders(pred, gt)
    assert [i.key for i in result.failed] == ["a"]
    assert result.means["iou"] == 0.5  # the mean is over what was scored


def test_size_mismatch_is_an_item_error(folders):
    pred, gt = folders
    put(pred, "a.png", np.ones((4, 4), np.float32))
    result = evaluate_folders(pred, gt)
    assert "4×4" in result.failed[0].error


def test_nothing_paired_is_a_setup_error(tmp_path):
    put(tmp_path / "p", "a.png", half())
    put(tmp_path / "g", "b.png", half())
    with pytest.raises(SetupError, match="no prediction"):
        evaluate_folders(tmp_path / "p", tmp_path / "g")
    with pytest.raises(SetupError, match="no such file"):
        evaluate_folders(tmp_path / "p", tmp_path / "missing")


def test_worst_first_puts_failures_first():
    images = [ImageScore("a", "", "", {"iou": 0.1}), ImageScore("b", "", "", error="bad"),
              ImageScore("c", "", "", {"iou": 0.9})]
    assert [i.key for i in worst_first(images)] == ["b", "a", "c"]


def test_method_spec_syntax():
    specs = parse_method_specs(["otsu,li:sigma=1:polarity=dark", "cnn:weights=C:/w/u2netp.onnx"])
    assert [(s.label, s.method, s.options) for s in specs] == [
        ("otsu", "otsu", {}),
        ("li:sigma=1:polarity=dark", "li", {"sigma": "1", "polarity": "dark"}),
        ("cnn:weights=C:/w/u2netp.onnx", "cnn", {"weights": "C:/w/u2netp.onnx"}),  # a colon inside a value
    ]
    for bad in ("", "otsu,otsu", "li:sigma", ":sigma=1", "preset:", "li:=1"):
        with pytest.raises(OptionError):
            parse_method_specs(bad)


def test_method_spec_refinement_settings_are_typed():
    pytest.importorskip("maskcli.refine")
    (spec,) = parse_method_specs("li:sigma=1:fill_holes=1:min_size=30")
    assert spec.options == {"sigma": "1"}  # method options stay text: methods.create converts them
    assert spec.refinement == {"fill_holes": True, "min_size": 30}
    with pytest.raises(OptionError, match="fill_holes"):
        parse_method_specs("li:fill_holes=maybe")


def test_method_spec_presets():
    presets = pytest.importorskip("maskcli.presets")
    name = sorted(presets.PRESETS)[0]
    preset = presets.get_preset(name)
    (spec,) = parse_method_specs(f"preset:{name}")
    assert (spec.label, spec.method, spec.options, spec.refinement) == (
        f"preset:{name}", preset.method, dict(preset.options), dict(preset.refinement))


def test_compare_methods_with_a_bad_option_fails_before_any_image(folders):
    pred, gt = folders
    with pytest.raises(OptionError):
        compare_methods(pred, gt, [MethodSpec("otsu", "otsu", {"no_such_option": "1"})])


@pytest.fixture
def nuclei_subset(tmp_path: Path) -> tuple[Path, Path]:
    """Every fourth pair of fluo_nuclei (7 of 28, all three kinds of cell), linked, not copied."""
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for image in sorted((DATA / "fluo_nuclei" / "images").iterdir())[::4]:
        os.symlink(image, images / image.name)
        truth = DATA / "fluo_nuclei" / "masks" / f"{image.stem}.png"
        os.symlink(truth, masks / truth.name)
    return images, masks


@needs_data
def test_li_beats_otsu_on_nuclei(nuclei_subset):
    images, masks = nuclei_subset
    seen = []
    ranking = compare_methods(images, masks, [("otsu", "otsu", {}, {}), ("li", "li", {}, {})],
                              progress=lambda label, image: seen.append(label))
    assert [r.spec.label for r in ranking.results] == ["li", "otsu"]
    li, otsu = ranking.results
    assert len(li.images) == len(otsu.images) == 7 and not li.failed
    assert li.mean - otsu.mean > 0.03, (li.mean, otsu.mean)  # baselines on the full set: 0.56 vs 0.43
    assert 0.35 < li.mean < 0.8
    assert 0 < li.seconds_per_image < 5
    assert "confidence" in li.images[0].facts or "threshold" in li.images[0].facts
    assert len(seen) == 14


@needs_data
def test_compare_methods_limit_and_both_classes(nuclei_subset):
    images, masks = nuclei_subset
    ranking = compare_methods(images, masks, [MethodSpec("li", "li")], limit=2, both_classes=True)
    (result,) = ranking.results
    assert [i.key for i in result.images] == ["gowt1_t01", "gowt1_t52"]
    assert ranking.rank_key == "iou_both" and result.mean == result.means["iou_both"]


# -- the command line ---------------------------------------------------------------------------------------------


def test_cli_table_and_unpaired_warnings(folders):
    pred, gt = folders
    done = run_cli("eval", str(pred), str(gt))
    assert done.returncode == 0, done.stderr
    out, err = done.stdout.decode(), done.stderr.decode()
    assert "sub/b" in out and "mean" in out and "0.750" in out
    assert "only_pred.png: no truth of the same name" in err
    assert "only_gt.png: truth without a prediction" in err


def test_cli_json_worst_and_csv(folders, tmp_path):
    pred, gt = folders
    table = tmp_path / "scores.csv"
    done = run_cli("eval", str(pred), str(gt), "--json", "--worst", "1", "--csv", str(table))
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["count"] == 2 and document["mean"]["iou"] == 0.75
    assert [i["key"] for i in document["images"]] == ["sub/b"]  # only the worst, means over both
    assert document["unpaired_predictions"] == ["only_pred.png"]
    rows = list(csv.DictReader(io.StringIO(table.read_text())))
    assert [(r["key"], float(r["iou"])) for r in rows] == [("a", 1.0), ("sub/b", 0.5)]


def test_cli_exit_statuses(folders, tmp_path):
    pred, gt = folders
    (pred / "a.png").write_bytes(b"broken")
    done = run_cli("eval", str(pred), str(gt), "--csv", "-")
    assert done.returncode == 1
    assert f"{pred / 'a.png'}:" in done.stderr.decode()
    assert done.stdout.decode().startswith("key,source,truth,error,iou")
    assert run_cli("eval", str(pred), str(tmp_path / "missing")).returncode == 3
    assert run_cli("eval", str(pred), str(gt), "--level", "0").returncode == 2
    assert run_cli("eval", "--methods", "no_such_method", str(pred), str(gt)).returncode == 2


@needs_data
def test_cli_ranks_methods(nuclei_subset):
    images, masks = nuclei_subset
    done = run_cli("eval", "--methods", "otsu,li:sigma=1", str(images), str(masks), "--limit", "3", "--json")
    assert done.returncode == 0, done.stderr
    ranking = json.loads(done.stdout)["ranking"]
    assert {r["label"] for r in ranking} == {"otsu", "li:sigma=1"}
    assert ranking[0]["mean"]["iou"] >= ranking[1]["mean"]["iou"]
    assert all(len(r["images"]) == 3 and r["ms_per_image"] > 0 for r in ranking)


def test_eval_takes_the_cnn_options_segment_has(folders, tmp_path):
    pred, gt = folders
    missing = tmp_path / "nowhere" / "u2netp.onnx"
    done = run_cli("eval", "--methods", "otsu,cnn", str(pred), str(gt), "--weights", str(missing), "--json")
    assert done.returncode == 3, done.stderr.decode()
    assert f"--weights {missing}: no such file" in done.stderr.decode()
    done = run_cli("eval", "--methods", "otsu", str(pred), str(gt), "--device", "cpu")
    assert done.returncode == 2 and "--device: applies to the cnn entries of --methods" in done.stderr.decode()
    # -M is apply's --masks; eval's --methods is spelled out, so one letter never means two things
    assert run_cli("eval", "-M", "otsu", str(pred), str(gt)).returncode == 2
