"""Two runs writing into one folder at once: without ``--overwrite`` neither replaces a file the other wrote, even
one that appeared after it planned its batch; with ``--skip-existing`` such an item counts as skipped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from benchmarks.synth import make_discs

from conftest import REPO

COUNT = 120


def _start(args, tmp_path):
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    return subprocess.Popen([sys.executable, "-m", "maskcli", *args], cwd=REPO, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.slow
@pytest.mark.parametrize("skip", [False, True], ids=["error", "skip-existing"])
@pytest.mark.parametrize("first", ["bright", "dark"])
def test_two_runs_into_one_folder_never_replace_each_others_files(tmp_path, skip, first):
    images = make_discs(tmp_path / "images", count=COUNT)
    masks = tmp_path / "masks"
    listing = "".join(f"{images / name}\n" for name in sorted(os.listdir(images))).encode()
    policy = ["--skip-existing"] if skip else []
    # Each run reads its paths from stdin and plans its whole batch once the list ends: closing both lists
    # together makes both plan before either writes, as two runs started together do. The runs' masks differ
    # (one marks the bright disc, the other the dark rest), so each file tells which run wrote it.
    runs = {polarity: _start(["segment", "-o", str(masks), "--polarity", polarity, "--jobs", "1", "--json", "-q",
                              *policy], tmp_path) for polarity in ("bright", "dark")}
    order = [first] + [polarity for polarity in runs if polarity != first]
    for polarity in order:
        runs[polarity].stdin.write(listing)
        runs[polarity].stdin.flush()
    for polarity in order:
        runs[polarity].stdin.close()
        runs[polarity].stdin = None  # closed: communicate() has nothing to send
        time.sleep(0.02)
    written: dict[str, set[str]] = {}
    for polarity, process in runs.items():
        stdout, stderr = process.communicate(timeout=240)
        records = [json.loads(line) for line in stdout.decode().splitlines()]
        assert len(records) == COUNT, stderr.decode()
        written[polarity] = {os.path.basename(r["output"]) for r in records if r["status"] == "written"}
        others = [r for r in records if r["status"] != "written"]
        if skip:
            assert process.returncode == 0, stderr.decode()
            assert {r["status"] for r in others} <= {"skipped"}
        else:
            assert process.returncode == (1 if others else 0), stderr.decode()
            assert all(r["status"] == "failed" and "exists" in r["error"] for r in others), others[:3]
            assert len(stderr.decode().splitlines()) == len(others)
    # Every mask was written by exactly one run, and is that run's.
    assert not written["bright"] & written["dark"], sorted(written["bright"] & written["dark"])[:5]
    assert written["bright"] | written["dark"] == set(os.listdir(images))
    assert sorted(os.listdir(masks)) == sorted(os.listdir(images))  # no temp file left
    for polarity, names in written.items():
        for name in names:
            image = cv2.imread(str(images / name), cv2.IMREAD_UNCHANGED)
            bright = np.where(image > 120, 255, 0).astype(np.uint8)
            expected = bright if polarity == "bright" else 255 - bright
            assert np.array_equal(cv2.imread(str(masks / name), cv2.IMREAD_UNCHANGED), expected), (polarity, name)


def test_an_output_that_appears_after_planning_is_not_replaced(tmp_path, monkeypatch):
    """The same, deterministic, in one process: the file appears between the plan and the write."""
    from maskcli.io.sinks import FolderSink
    from maskcli.io.sources import expand_inputs
    from maskcli.jobs.segment import SegmentJob
    from maskcli.methods import methods
    from maskcli.pipeline import run

    images = make_discs(tmp_path / "images", count=2)
    masks = tmp_path / "masks"
    results = {}
    for existing in ("error", "skip", "overwrite"):
        out = masks / existing
        sink = FolderSink(out, existing=existing)
        items = list(sink.items(expand_inputs([str(images)])))
        out.mkdir(parents=True)
        (out / "00000.png").write_bytes(b"another run's mask")
        job = SegmentJob(methods.create("otsu"), sink=sink)
        results[existing] = [(r.status, r.error) for r in run(items, job, jobs=1)]
        kept = (out / "00000.png").read_bytes() == b"another run's mask"
        assert kept == (existing != "overwrite")
        assert sorted(os.listdir(out)) == ["00000.png", "00001.png"]
    assert results["error"][0][0] == "failed" and "another process wrote it" in results["error"][0][1]
    assert results["skip"][0] == ("skipped", None) and results["overwrite"][0] == ("written", None)
    assert all(outcome[1] == ("written", None) for outcome in results.values())


@pytest.mark.parametrize("renameat2", [True, False], ids=["renameat2", "link-then-unlink"])
def test_an_exclusive_write_keeps_the_file_there(tmp_path, monkeypatch, renameat2):
    from maskcli.errors import OutputTaken
    from maskcli.io import files

    if not renameat2:
        monkeypatch.setattr(files, "_renameat2", lambda: None)
    elif files._renameat2() is None:
        pytest.skip("no renameat2 here")
    target = tmp_path / "a.png"
    files.write_atomic(target, b"new", replace=False)
    assert target.read_bytes() == b"new"
    with pytest.raises(OutputTaken, match="exists"):
        files.write_atomic(target, b"newer", replace=False)
    assert target.read_bytes() == b"new" and os.listdir(tmp_path) == ["a.png"]
