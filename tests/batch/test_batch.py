"""The library's whole batches (maskcli.batch): masks and images written, records returned, nothing printed, and
the rules that used to live in the commands now raised by the library."""

from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskcli.batch import (
    ApplySettings,
    BatchSettings,
    ExportSettings,
    SegmentSettings,
    apply_batch,
    export_batch,
    segment_batch,
)
from maskcli.errors import OptionError, SetupError

from conftest import REPO

SAMPLES = REPO / "samples"
NAMES = ["camera.png", "coins.png"]


class Heard:
    """A listener that keeps what it is told."""

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.results: list = []
        self.on_stdout: bool | None = None

    def warning(self, message: str) -> None:
        self.warnings.append(message)

    def started(self, *, image_on_stdout: bool) -> None:
        self.on_stdout = image_on_stdout

    def result(self, result) -> None:
        self.results.append(result)


def _inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in NAMES:
        (folder / name).write_bytes((SAMPLES / name).read_bytes())
    return folder


def test_segment_batch_writes_masks_and_returns_records_without_printing(tmp_path, capfd):
    photos = _inputs(tmp_path)
    heard = Heard()
    outcome = segment_batch(SegmentSettings(BatchSettings([str(photos)], tmp_path / "masks", jobs=1), method="otsu",
                                            refinement={"fill_holes": True}), heard)
    assert [(r.status, Path(r.output).name) for r in outcome.results] == [("written", n) for n in NAMES]
    assert heard.results == outcome.results and heard.on_stdout is False
    assert not outcome.interrupted and outcome.stopped is None and outcome.failed == 0
    for name in NAMES:
        mask = cv2.imread(str(tmp_path / "masks" / name), cv2.IMREAD_UNCHANGED)
        image = cv2.imread(str(SAMPLES / name), cv2.IMREAD_GRAYSCALE)
        assert mask.shape == image.shape and set(np.unique(mask)) == {0, 255}
    coins = outcome.results[1].record()
    assert coins["status"] == "written" and coins["method"] == "otsu" and 0.05 < coins["foreground_fraction"] < 0.95
    json.dumps(coins)  # a record as --json prints it
    assert capfd.readouterr() == ("", "")


def test_segment_batch_checks_mask_bits_before_writing(tmp_path):
    photos = _inputs(tmp_path)
    with pytest.raises(OptionError) as caught:
        segment_batch(SegmentSettings(BatchSettings([str(photos)], tmp_path / "masks"), mask_bits=12))
    assert caught.value.option == "bits" and not (tmp_path / "masks").exists()


def test_segment_batch_reads_paths_from_stdin(tmp_path):
    photos = _inputs(tmp_path)
    listed = "".join(f"{photos / name}\n" for name in NAMES).encode()
    stdin = io.TextIOWrapper(io.BufferedReader(io.BytesIO(listed)))
    outcome = segment_batch(SegmentSettings(BatchSettings(output=tmp_path / "masks", stdin=stdin, jobs=1)))
    assert [r.status for r in outcome.results] == ["written", "written"]
    with pytest.raises(SetupError, match="no inputs"):
        segment_batch(SegmentSettings(BatchSettings(output=tmp_path / "masks")))


def test_apply_batch_with_masks_from_a_folder_and_from_segment_records(tmp_path):
    photos = _inputs(tmp_path)
    made = segment_batch(SegmentSettings(BatchSettings([str(photos)], tmp_path / "masks", jobs=1)))
    outcome = apply_batch(ApplySettings(BatchSettings([str(photos)], tmp_path / "cut", jobs=1),
                                        masks=tmp_path / "masks"))
    assert [(r.status, r.facts["format"]) for r in outcome.results] == [("written", "PNG")] * 2
    cutout = cv2.imread(str(tmp_path / "cut" / "coins.png"), cv2.IMREAD_UNCHANGED)
    mask = cv2.imread(str(tmp_path / "masks" / "coins.png"), cv2.IMREAD_GRAYSCALE)
    assert cutout.shape[2] == 4 and np.array_equal(cutout[..., 3], mask)

    records = "".join(json.dumps(r.record()) + "\n" for r in made.results).encode()
    stdin = io.TextIOWrapper(io.BufferedReader(io.BytesIO(records)))
    piped = apply_batch(ApplySettings(BatchSettings(output=tmp_path / "piped", stdin=stdin, jobs=1)))
    assert [r.status for r in piped.results] == ["written"] * 2
    assert np.array_equal(cv2.imread(str(tmp_path / "piped" / "coins.png"), cv2.IMREAD_UNCHANGED), cutout)


def test_apply_batch_takes_one_mask_source_and_classes_only_with_masks(tmp_path):
    photos = _inputs(tmp_path)
    with pytest.raises(OptionError) as caught:
        apply_batch(ApplySettings(BatchSettings([str(photos)], tmp_path / "out"), mask=SAMPLES / "coins.png",
                                  alpha=True))
    assert caught.value.option == "alpha" and "`mask` and `alpha`" in caught.value.message
    with pytest.raises(OptionError) as caught:
        apply_batch(ApplySettings(BatchSettings([str(photos)], tmp_path / "out"), method="otsu", classes=["horse"]))
    assert caught.value.option == "class"
    with pytest.raises(OptionError) as caught:
        apply_batch(ApplySettings(BatchSettings([str(photos)], tmp_path / "out")))
    assert caught.value.option == "masks"
    assert not (tmp_path / "out").exists()


def test_matting_options_need_the_matting_refinement_in_both_batches(tmp_path):
    photos = _inputs(tmp_path)
    batch = BatchSettings([str(photos)], tmp_path / "out")
    for run in (lambda: segment_batch(SegmentSettings(batch, refinement={"matting_band": 0.1})),
                lambda: apply_batch(ApplySettings(batch, method="otsu", refinement={"matting_band": 0.1}))):
        with pytest.raises(OptionError) as caught:
            run()
        assert caught.value.option == "matting_band"


def test_export_batch_writes_coco_and_reports_each_mask(tmp_path):
    photos = _inputs(tmp_path)
    segment_batch(SegmentSettings(BatchSettings([str(photos)], tmp_path / "masks", jobs=1)))
    heard = Heard()
    outcome = export_batch(ExportSettings(tmp_path / "masks", tmp_path / "coco.json", images=photos, jobs=1), heard)
    assert [r.status for r in heard.results] == ["written", "written"] and outcome.problem is None
    document = json.loads((tmp_path / "coco.json").read_text())
    assert sorted(image["file_name"] for image in document["images"]) == NAMES
    assert len(document["annotations"]) == 2
    with pytest.raises(OptionError) as caught:
        export_batch(ExportSettings(tmp_path / "masks", tmp_path / "coco.json"))
    assert caught.value.option == "output"


def test_export_batch_writes_no_document_when_a_mask_fails(tmp_path):
    masks = tmp_path / "masks"
    masks.mkdir()
    (masks / "a.png").write_bytes((SAMPLES / "coins.png").read_bytes())
    (masks / "b.png").write_bytes(b"not a png")
    outcome = export_batch(ExportSettings(masks, tmp_path / "coco.json", jobs=1))
    assert outcome.failed == 1 and outcome.problem == f"{tmp_path / 'coco.json'} not written: 1 of 2 masks failed"
    assert not (tmp_path / "coco.json").exists()
