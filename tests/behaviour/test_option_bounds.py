"""Every size-like option at an absurd value: a usage error (exit 2), or a run within the memory budget (16 bytes a
pixel over a normal run's peak, plus a fixed allowance), measured as the peak of the command's own process."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import REPO, SAMPLES

SHAPE = (232, 315)  # the size the absurd values were first tried on
#: What a run may hold beyond a normal one, besides 16 bytes a pixel: libraries loaded by some options only.
ALLOWANCE = 80 << 20

ABSURD = [
    ["apply", "--mode", "blur", "-s", "strength=1e9"],
    ["apply", "--mode", "enhance", "-s", "blur=1e9"],
    ["apply", "--mode", "enhance", "-s", "sharpen=1", "-s", "sharpen_radius=1e9"],
    ["segment", "--sigma", "1e6"],
    ["segment", "-m", "sauvola", "-p", "window=999999"],
    ["segment", "-m", "niblack", "-p", "window=999999"],
    ["segment", "-m", "local", "-p", "block_size=1000001"],
    ["segment", "-m", "local", "-p", "block_size=1000001", "-p", "kind=mean"],
    ["segment", "-m", "local", "-p", "block_size=1000001", "-p", "kind=median"],
    ["segment", "--dilate", "5000"],
    ["segment", "--dilate", "1000000"],
    ["segment", "--open", "1000000"],
    ["segment", "--close", "1000000", "--feather", "1e9"],
    ["segment", "--feather", "1e9", "--erode", "100000"],
]


def _peak(args, folder, out):
    """Exit status and peak resident memory (bytes) of ``maskcli ARGS`` run on ``folder``."""
    verb, *rest = args
    method = ["-m", "otsu"] if verb == "apply" else []
    with open(out.with_suffix(".err"), "wb") as err:
        process = subprocess.Popen([sys.executable, "-m", "maskcli", verb, str(folder), *method, *rest, "-o",
                                    str(out), "--jobs", "1", "-q"], cwd=REPO, stdout=subprocess.DEVNULL,
                                   stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_maxrss * 1024, out.with_suffix(".err").read_text()


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    image = cv2.imread(str(SAMPLES / "chelsea.png"))
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(folder / name), cv2.resize(image, SHAPE[::-1], interpolation=cv2.INTER_AREA))
    return folder


@pytest.fixture(scope="module")
def normal_peak(photos, tmp_path_factory):
    out = tmp_path_factory.mktemp("normal")
    peaks = [_peak([verb], photos, out / verb)[1] for verb in ("segment", "apply")]
    return max(peaks)


@pytest.mark.skipif(not hasattr(os, "wait4"), reason="measures the child with wait4")
@pytest.mark.parametrize("args", ABSURD, ids=[" ".join(a) for a in ABSURD])
def test_an_absurd_size_is_refused_or_stays_within_the_memory_budget(photos, normal_peak, tmp_path, args):
    status, peak, err = _peak(args, photos, tmp_path / "out")
    assert status in (0, 2), err
    assert "internal error" not in err and "Traceback" not in err, err
    budget = normal_peak + 16 * SHAPE[0] * SHAPE[1] + ALLOWANCE
    assert peak <= budget, f"{peak / 2**20:.0f} MiB against {budget / 2**20:.0f} MiB"
    if status == 0:
        assert len(os.listdir(tmp_path / "out")) == 2
        mask = cv2.imread(str(next((tmp_path / "out").iterdir())), cv2.IMREAD_UNCHANGED)
        assert mask is not None and mask.shape[:2] == SHAPE and np.isfinite(mask).all()


#: Each size-like option, where its help is shown, and what that help says of a value larger than the image.
CLAMPED = "larger is clamped"
SAID = [
    (["segment", "--help"], "--sigma", CLAMPED),
    (["segment", "--help"], "--open", CLAMPED),
    (["segment", "--help"], "--close", CLAMPED),
    (["segment", "--help"], "--erode", CLAMPED),
    (["segment", "--help"], "--dilate", CLAMPED),
    (["segment", "--help"], "--feather", "any width is taken"),
    (["apply", "--help"], "--sigma", CLAMPED),
    (["apply", "--help"], "--feather", "any width is taken"),
    (["segment", "--help"], "--jobs", CLAMPED),
    (["segment", "--help"], "--batch-size", "at most 64: larger is clamped"),
    (["methods", "cnn"], "batch_size", "at most 64: larger is clamped"),
    (["methods", "otsu"], "sigma", CLAMPED),
    (["methods", "canny"], "sigma", CLAMPED),
    (["methods", "sauvola"], "window", CLAMPED),
    (["methods", "niblack"], "window", CLAMPED),
    (["methods", "local"], "block_size", CLAMPED),
    (["modes", "blur"], "strength", CLAMPED),
    (["modes", "enhance"], "blur", CLAMPED),
    (["modes", "enhance"], "sharpen_radius", CLAMPED),
    (["modes", "enhance"], "outside_blur", CLAMPED),
]


@pytest.fixture(scope="module")
def helps():
    texts = {}
    for args in {tuple(args) for args, _, _ in SAID}:
        done = subprocess.run([sys.executable, "-m", "maskcli", *args], cwd=REPO, capture_output=True, text=True,
                              env={**os.environ, "COLUMNS": "400", "NO_COLOR": "1"}, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        texts[args] = done.stdout
    return texts


@pytest.mark.parametrize(("args", "name", "words"), SAID, ids=[f"{' '.join(a)} {n}" for a, n, _ in SAID])
def test_the_help_says_what_becomes_of_a_value_larger_than_the_image(helps, args, name, words):
    row = re.compile(rf"^[│|┃ ]*{re.escape(name)}(?![\w-])")
    lines = [line for line in helps[tuple(args)].splitlines() if row.match(line)]
    assert len(lines) == 1, lines
    assert words in lines[0], lines[0]


@pytest.mark.parametrize("args", [["--jobs", "0"], ["--jobs", "-1"], ["--batch-size", "0"], ["--batch-size", "-1"]],
                         ids=" ".join)
def test_no_jobs_or_batch_below_one(photos, tmp_path, args):
    done = subprocess.run([sys.executable, "-m", "maskcli", "segment", str(photos), "-o", str(tmp_path / "out"),
                           *args], cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2 and f"Invalid value for '{args[0]}'" in done.stderr, done.stderr
    assert not (tmp_path / "out").exists()


def test_jobs_beyond_the_cores_are_clamped_to_them():
    from pathlib import PurePosixPath

    from maskcli.cores import cpu_count
    from maskcli.engines.local import choose
    from maskcli.io.sources import Item, Source

    class PerItem:
        batched, batch_size, releases_gil = False, 1, True

    items = [Item(i, Source(f"{i}.png", PurePosixPath(f"{i}.png"))) for i in range(1000)]
    for jobs in (10**9, cpu_count() + 1):
        engine, rest = choose(PerItem(), jobs, iter(items))
        assert (getattr(engine, "threads", None) or engine.jobs) == cpu_count()
        assert len(list(rest)) == 1000


def test_a_huge_batch_size_holds_a_bounded_number_of_items():
    from pathlib import PurePosixPath

    from maskcli.engines.threads import MAX_BATCH_SIZE, InProcess
    from maskcli.io.files import WriteGate
    from maskcli.io.sources import Item, Source
    from maskcli.work import JobBase, Result

    class Counting(JobBase):
        """A batched job that counts the items loaded and not yet saved (each would hold a decoded image)."""

        batched, batch_size = True, 10**9

        def __init__(self):
            self.held = self.most = 0
            self.batches = []

        def load(self, item):
            self.held += 1
            self.most = max(self.most, self.held)
            return item.index

        def compute(self, loaded):
            self.batches.append(len(loaded))
            return loaded

        def save(self, item, loaded, computed, gate):
            self.held -= 1
            return Result(item.index, item.name, None, "written")

    job = Counting()
    items = (Item(i, Source(f"{i}.png", PurePosixPath(f"{i}.png"))) for i in range(1000))
    results = list(InProcess(threads=2).execute(job, items, ordered=True, gate=WriteGate()))
    assert [r.index for r in results] == list(range(1000))
    assert max(job.batches) == MAX_BATCH_SIZE and sum(job.batches) == 1000
    # The engine's window (two batches and one item a thread) decoded ahead, and as many behind being saved; a
    # batch of 10**9 once held every item of the batch at once.
    assert job.most <= 2 * (2 * MAX_BATCH_SIZE + 2), job.most


def test_the_batch_bound_in_help_is_the_engines():
    import dataclasses

    from maskcli.engines.threads import MAX_BATCH_SIZE
    from maskcli.methods.cnn import CNN

    field = {f.name: f for f in dataclasses.fields(CNN)}["batch_size"]
    assert f"at most {MAX_BATCH_SIZE}: larger is clamped" in field.metadata["help"]
    assert all(f"at most {MAX_BATCH_SIZE}:" in words for _, name, words in SAID if "batch" in name)
