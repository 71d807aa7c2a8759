"""Hostile inputs: files that are not images, names that lie, outputs that would land on inputs, signals and
killed parents. Every test here once failed on maskcli 0.1."""

from __future__ import annotations

import os
import stat
import sys

import cv2
import numpy as np
import pytest

from maskcli.errors import InputError
from maskcli.io.decode import read_image

from conftest import SAMPLES, run_cli

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs and device files are POSIX")


@posix_only
@pytest.mark.parametrize("kind", ["fifo", "zero", "urandom"])
def test_only_regular_files_are_read(tmp_path, kind):
    path = tmp_path / "x.png"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to(f"/dev/{kind}")
    expected = "not a regular file (FIFO)" if kind == "fifo" else "not a regular file (character device)"
    with pytest.raises(InputError, match=r"^" + expected.replace("(", r"\(").replace(")", r"\)") + "$"):
        read_image(path)
    done = run_cli("segment", str(path), str(SAMPLES / "coins.png"), "-o", str(tmp_path / "out"), timeout=60)
    assert done.returncode == 1
    assert done.stderr.decode().splitlines()[0] == f"maskcli: error: {path}: {expected}"
    assert (tmp_path / "out" / "coins.png").is_file()


def test_stdin_is_read_no_further_than_the_pixel_limit(tmp_path):
    png = (SAMPLES / "coins.png").read_bytes()
    done = run_cli("segment", "-", "-o", str(tmp_path / "m.png"), "--max-pixels", "100",
                   stdin=png + b"\0" * (20 << 20))
    assert done.returncode == 1
    assert "more than 16,778,816 bytes" in done.stderr.decode()
    assert not (tmp_path / "m.png").exists()


def _photo(path, seed, shape=(48, 64, 3)):
    rng = np.random.default_rng(seed)
    image = (rng.random(shape) * 255).astype(np.uint8)
    image[10:30, 20:40] = 250
    assert cv2.imwrite(str(path), image)
    return path


def _digests(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_no_output_replaces_any_input_of_the_batch(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    _photo(folder / "cat.jpg", 1)
    _photo(folder / "cat.png", 2)
    before = _digests(folder)
    segment = run_cli("segment", str(folder), "-o", str(folder), "--overwrite")
    apply = run_cli("apply", str(folder), "-m", "otsu", "-o", str(folder), "--overwrite", "-f", "jpg", "-b", "white",
                    "--mode", "color")
    assert _digests(folder) == before
    for done in (segment, apply):
        assert done.returncode == 1
        errors = done.stderr.decode().splitlines()[:-1]
        assert len(errors) == 2 and all("input" in line for line in errors), errors


def test_masks_folder_and_hard_links_are_inputs_too(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    _photo(images / "a.png", 3)
    cv2.imwrite(str(masks / "a.png"), np.full((48, 64), 255, np.uint8))
    before = _digests(masks)
    done = run_cli("apply", str(images), "--masks", str(masks), "-o", str(masks), "--overwrite")
    assert done.returncode == 1 and _digests(masks) == before
    assert f"output {masks / 'a.png'} is {masks / 'a.png'}, an input of this batch" in done.stderr.decode()
    out = tmp_path / "out"
    out.mkdir()
    os.link(images / "a.png", out / "a.png")  # the same file under another name
    done = run_cli("segment", str(images), "-o", str(out), "--overwrite")
    assert done.returncode == 1 and "is the input itself" in done.stderr.decode()
    assert _digests(images) == _digests(out)


def test_an_input_given_twice_is_processed_once(tmp_path):
    folder = tmp_path / "shop"
    folder.mkdir()
    _photo(folder / "a.png", 4)
    _photo(folder / "b.png", 5)
    done = run_cli("segment", str(folder), str(folder), str(folder / "a.png"), str(tmp_path / "shop/./b.png"),
                   "-o", str(tmp_path / "m"), "--json")
    assert done.returncode == 0, done.stderr.decode()
    assert [line.count('"written"') for line in done.stdout.decode().splitlines()] == [1, 1]


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stream:
                    parent = int(stream.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stream:
            return stream.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def many(tmp_path):
    from benchmarks.synth import make_discs

    return make_discs(tmp_path / "many", count=120, size=(600, 800))


#: A method that runs in worker processes with --jobs 2 (its local statistics are NumPy work that holds the GIL),
#: for the tests of what happens to workers; Otsu, the default, runs in threads of maskcli's own process.
IN_WORKERS = ["-m", "sauvola"]


def test_the_worker_method_runs_in_worker_processes():
    from maskcli.methods import methods

    assert not methods.get(IN_WORKERS[1]).releases_gil and methods.get("otsu").releases_gil


def _start(args, tmp_path, **kwargs):
    import subprocess

    from conftest import REPO

    env = {**os.environ, "TMPDIR": str(_private_tmp(tmp_path))}
    return subprocess.Popen([sys.executable, "-m", "maskcli", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def _private_tmp(tmp_path):
    folder = tmp_path / "tmp"
    folder.mkdir(exist_ok=True)
    return folder


def _wait_for(condition, limit=60.0):
    import time

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process tree from /proc")
def test_no_process_outlives_a_killed_parent(tmp_path, many):
    import signal

    process = _start(["segment", str(many), *IN_WORKERS, "-o", str(tmp_path / "out"), "--jobs", "2", "-q"],
                     tmp_path)
    try:
        # the fork server and two workers are up and busy
        assert _wait_for(lambda: len(_descendants(process.pid)) >= 3 and (tmp_path / "out").is_dir())
        below = _descendants(process.pid)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        assert _wait_for(lambda: not any(_alive(pid) for pid in below), limit=20), [
            pid for pid in below if _alive(pid)]
    finally:
        process.kill()
        process.communicate()


def _written(stdout: bytes) -> set[str]:
    import json

    return {os.path.basename(r["output"]) for r in map(json.loads, stdout.decode().splitlines())
            if r["status"] == "written"}


@pytest.mark.slow
@pytest.mark.parametrize(("jobs", "method"), [("1", []), ("2", []), ("2", IN_WORKERS)],
                         ids=["in-process", "threads", "processes"])
@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_run_and_every_file_left_is_reported(tmp_path, many, jobs, method, signal_name):
    import signal

    out = tmp_path / "out"
    process = _start(["segment", str(many), *method, "-o", str(out), "--jobs", jobs, "--json"], tmp_path)
    try:
        assert _wait_for(lambda: out.is_dir() and len([n for n in os.listdir(out) if not n.startswith(".")]) >= 3)
        process.send_signal(getattr(signal, signal_name))
        stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 130, stderr.decode()
    assert "Traceback" not in stderr.decode() and stderr.decode().endswith("(interrupted)\n"), stderr.decode()
    left = set(os.listdir(out))
    assert left == _written(stdout) and 3 <= len(left) < 120
    assert not os.listdir(_private_tmp(tmp_path))  # no temp folders (pymp-*) left behind


def _ctrl_c(process, times=1):
    """What a terminal's Ctrl-C does: SIGINT to every process of the group (the fork server's and workers')."""
    import signal
    import time

    for _ in range(times):
        os.killpg(process.pid, signal.SIGINT)
        time.sleep(0.05)


@pytest.mark.slow
@posix_only
def test_stopping_worker_processes_leaves_no_resource_tracker_warning(tmp_path, many):
    # A second Ctrl-C ends maskcli at once: the semaphores of its process pool, left to multiprocessing's resource
    # tracker, made it print "There appear to be 5 leaked semaphore objects" (5 runs of 16 before the fix).
    for run in range(6):
        out = tmp_path / f"out{run}"
        process = _start(["segment", str(many), *IN_WORKERS, "-o", str(out), "--jobs", "2"], tmp_path,
                         start_new_session=True)
        try:
            assert _wait_for(lambda out=out: out.is_dir() and len([n for n in os.listdir(out) if n[0] != "."]) >= 2)
            _ctrl_c(process, times=1 + run % 2)
            _, stderr = process.communicate(timeout=30)
        finally:
            process.kill()
        assert "resource_tracker" not in stderr.decode(), stderr.decode()
        if run % 2 == 0:  # one Ctrl-C: the orderly stop
            assert process.returncode == 130 and "Traceback" not in stderr.decode(), stderr.decode()


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the fork server through /proc")
def test_a_ctrl_c_while_the_fork_server_starts_is_quiet(tmp_path, many):
    # The fork server ignores SIGINT only after importing maskcli: a Ctrl-C before that printed its traceback,
    # and a worker whose start it cut short printed one later (its pool's semaphores gone).
    for run in range(4):
        process = _start(["segment", str(many), *IN_WORKERS, "-o", str(tmp_path / f"out{run}"), "--jobs", "2"],
                         tmp_path, start_new_session=True)

        def server_started(pid: int = process.pid) -> bool:
            try:
                with open(f"/proc/{pid}/task/{pid}/children") as children:
                    pids = children.read().split()
                return any(b"forkserver" in open(f"/proc/{pid}/cmdline", "rb").read() for pid in pids)
            except OSError:
                return False

        try:
            assert _wait_for(server_started)
            _ctrl_c(process)
            _, stderr = process.communicate(timeout=30)
        finally:
            process.kill()
        assert process.returncode == 130 and "Traceback" not in stderr.decode(), stderr.decode()


def test_fail_fast_reports_every_file_it_leaves(tmp_path, many):
    (many / "00002.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    done = run_cli("segment", str(many), "-o", str(out), "--jobs", "2", "--json", "--fail-fast")
    assert done.returncode == 1
    assert set(os.listdir(out)) == _written(done.stdout) and len(os.listdir(out)) < 119


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="watches the imports through /proc")
@pytest.mark.parametrize("library", ["_multiarray_umath", "cv2"])
def test_a_signal_during_start_up_imports_is_quiet(tmp_path, library):
    import signal

    process = _start(["segment", str(SAMPLES / "coins.png"), "-o", str(tmp_path / "out")], tmp_path)

    def importing() -> bool:
        try:
            with open(f"/proc/{process.pid}/maps") as maps:
                return library in maps.read()
        except OSError:
            return True

    _wait_for(importing, limit=30)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130 and "Traceback" not in stderr.decode(), stderr.decode()
    assert stderr.decode() == "maskcli: interrupted\n"


def test_control_characters_in_names_are_escaped_in_lines_and_kept_in_records(tmp_path):
    import json

    folder = tmp_path / "in"
    folder.mkdir()
    name = "evil\nmaskcli: 9 written, 0 skipped, 0 failed\x1b[2J.png"
    (folder / name).write_bytes(b"not an image")
    done = run_cli("segment", str(folder), "-o", str(tmp_path / "out"), "--json")
    assert done.returncode == 1
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 2 and lines[1].startswith("maskcli: 0 written")
    assert "evil\\nmaskcli: 9 written, 0 skipped, 0 failed\\x1b[2J.png: not a readable image" in lines[0]
    (record,) = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert record["input"] == str(folder / name)


@pytest.mark.parametrize("code", ["EROFS", "EACCES", "ENOSPC"])
def test_an_output_folder_that_takes_no_file_stops_the_batch(tmp_path, monkeypatch, capsys, code):
    import errno
    import tempfile

    from benchmarks.synth import make_discs
    from maskcli.cli.app import main

    folder = make_discs(tmp_path / "in", count=30)
    out = tmp_path / "out"
    attempts = []
    real_mkstemp, real_replace = tempfile.mkstemp, os.replace

    def failing(*args, **kwargs):
        attempts.append(args)
        raise OSError(getattr(errno, code), os.strerror(getattr(errno, code)))

    if code == "ENOSPC":  # the temp file is made, then the disk is full
        monkeypatch.setattr(tempfile, "mkstemp", lambda *a, **k: (attempts.append(a), real_mkstemp(*a, **k))[1])
        monkeypatch.setattr(os, "replace", lambda *a: failing(*a) if str(a[1]).startswith(str(out)) else
                            real_replace(*a))
        from maskcli.io import files

        monkeypatch.setattr(files, "_rename_exclusive", failing)  # the rename that replaces nothing
    else:
        monkeypatch.setattr(tempfile, "mkstemp", failing)
    assert main(["segment", str(folder), "-o", str(out), "--jobs", "1"]) == 3
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and lines[0].startswith("maskcli: error: cannot write") and "stopping" in lines[0]
    assert lines[1].startswith("maskcli: 0 written, 0 skipped, 0 failed") and lines[1].endswith("(stopped)")
    assert len(attempts) < 10  # stopped at the first failures, not one per item of the batch
    assert not out.is_dir() or not os.listdir(out)  # no temp file left


def _gifs(folder):
    from PIL import Image as PILImage

    folder.mkdir(exist_ok=True)
    yy, xx = np.mgrid[:40, :70]
    frames = [PILImage.fromarray(np.where((yy - 20) ** 2 + (xx - 20 - 10 * k) ** 2 < 100, 220, 30).astype(np.uint8))
              for k in range(3)]
    frames[0].save(folder / "still.gif")
    frames[0].save(folder / "moving.gif", save_all=True, append_images=frames[1:], duration=100)
    return folder


def test_an_animated_gif_is_a_video_and_a_still_one_an_image(tmp_path):
    import json

    folder = _gifs(tmp_path / "gifs")
    done = run_cli("segment", str(folder), "-o", str(tmp_path / "masks"), "--json")
    assert done.returncode == 0, done.stderr.decode()
    records = {os.path.basename(r["input"]): r for r in map(json.loads, done.stdout.decode().splitlines())}
    assert records["still.gif"].get("warnings", []) == [] and records["moving.gif"]["frames"] == 3
    for frame in range(3):  # one mask per frame, each with that frame's disc
        mask = cv2.imread(str(tmp_path / "masks" / "moving" / f"{frame + 1:06d}.png"), cv2.IMREAD_UNCHANGED)
        assert mask.shape == (40, 70) and mask[20, 20 + 10 * frame] == 255 and mask[20, 60] == 0
    cut = run_cli("apply", str(folder / "still.gif"), "-m", "otsu", "-o", str(tmp_path / "cut"))
    assert cut.returncode == 0, cut.stderr.decode()
    assert cv2.imread(str(tmp_path / "cut" / "still.png"), cv2.IMREAD_UNCHANGED).shape == (40, 70, 4)
    piped = run_cli("segment", "-", stdin=(folder / "still.gif").read_bytes())
    assert piped.returncode == 0 and piped.stdout.startswith(b"\x89PNG")


def test_an_animated_gif_applied_in_its_own_folder_is_never_replaced(tmp_path):
    folder = _gifs(tmp_path / "gifs")
    before = (folder / "moving.gif").read_bytes()
    done = run_cli("apply", str(folder), "-m", "otsu", "-o", str(folder), "--overwrite")
    assert done.returncode == 1 and "moving.gif is the input itself" in done.stderr.decode()
    assert (folder / "moving.gif").read_bytes() == before


# --- the hostile folder: everything above at once, through segment and apply ------------------------------------

#: Inputs that are images, with the size each output must have (height, width).
GOOD = {
    "one.png": (1, 1), "row.png": (1, 7), "col.png": (7, 1), "grey16.tif": (30, 40), "rgb16.tif": (30, 40),
    "float.tif": (30, 40), "still.gif": (40, 70), "moving.gif": (40, 70), "bad\nname.png": (30, 40),
    "esc\x1b[31m.png": (30, 40), "cat.jpg": (48, 64), "cat.png": (48, 64),
}
#: Inputs that are not (regular) image files: one error line each.
BAD = ["fifo.png", "zero.png", "random.jpg", "empty.png", "truncated.jpg", "short.png", "short16.png"]


def _short_png(width: int, height: int, bits: int) -> bytes:
    """A PNG whose chunks are all well formed (CRCs right, IEND present) but whose compressed pixel data stops a
    third of the way: libpng, left to itself, prints "libpng error: Not enough image data" on the terminal."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    pixels = np.random.default_rng(bits).integers(0, 256, (height, width * 3 * bits // 8), dtype=np.uint8)
    stream = zlib.compress(np.hstack([np.zeros((height, 1), np.uint8), pixels]).tobytes())
    rows = stream[: len(stream) // 3]
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bits, 2, 0, 0, 0))
            + chunk(b"IDAT", rows) + chunk(b"IEND", b""))


def _hostile_folder(folder):
    import tifffile

    folder.mkdir()
    rng = np.random.default_rng(7)
    ramp = np.linspace(0, 1, 30 * 40, dtype=np.float32).reshape(30, 40)
    cv2.imwrite(str(folder / "one.png"), np.full((1, 1), 200, np.uint8))
    cv2.imwrite(str(folder / "row.png"), np.array([[0, 0, 0, 255, 255, 255, 255]], np.uint8))
    cv2.imwrite(str(folder / "col.png"), np.array([[0, 0, 0, 255, 255, 255, 255]], np.uint8).T.copy())
    tifffile.imwrite(folder / "grey16.tif", (ramp * 65535).astype(np.uint16))
    tifffile.imwrite(folder / "rgb16.tif", (np.dstack([ramp, ramp[::-1], ramp]) * 65535).astype(np.uint16))
    tifffile.imwrite(folder / "float.tif", ramp)
    _gifs(folder)
    for name in ("bad\nname.png", "esc\x1b[31m.png"):
        cv2.imwrite(str(folder / "tmp.png"), (ramp * 255).astype(np.uint8))
        os.rename(folder / "tmp.png", folder / name)
    _photo(folder / "cat.jpg", 1)
    _photo(folder / "cat.png", 2)
    os.mkfifo(folder / "fifo.png")
    (folder / "zero.png").symlink_to("/dev/zero")
    (folder / "random.jpg").symlink_to("/dev/urandom")
    (folder / "empty.png").write_bytes(b"")
    jpeg = cv2.imencode(".jpg", (rng.random((40, 40, 3)) * 255).astype(np.uint8))[1].tobytes()
    (folder / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (folder / "short.png").write_bytes(_short_png(40, 30, 8))
    (folder / "short16.png").write_bytes(_short_png(40, 30, 16))
    return folder


def _contents(folder):
    """Every regular file's bytes (FIFOs and device links are not read)."""
    return {p.name: p.read_bytes() for p in folder.iterdir() if stat.S_ISREG(os.lstat(p).st_mode)}


def _size(path):
    from PIL import Image as PILImage

    if os.path.isdir(path):  # an animated GIF's masks: one file per frame, each of the frame's size
        sizes = {_size(os.path.join(path, name)) for name in os.listdir(path)}
        assert len(sizes) == 1
        return sizes.pop()

    if str(path).endswith(".tif"):  # float RGBA TIFFs are beyond Pillow
        import tifffile

        with tifffile.TiffFile(path) as tiff:
            return tuple(tiff.pages[0].shape[:2])
    with PILImage.open(path) as picture:
        return picture.size[::-1]


@posix_only
@pytest.mark.slow
@pytest.mark.parametrize("jobs", ["1", "2"])
@pytest.mark.parametrize("verb", ["segment", "apply"])
def test_hostile_folder(tmp_path, verb, jobs):
    pytest.importorskip("tifffile")
    from maskcli.cli.report import escape

    folder = _hostile_folder(tmp_path / "d")
    before = _contents(folder)
    method = ["-m", "otsu"] if verb == "apply" else []
    for out in (tmp_path / "out", folder):  # a folder of its own, then the inputs' own folder
        process = _start([verb, str(folder), *method, "-o", str(out), "--overwrite", "--jobs", jobs, "--json"],
                         tmp_path)
        stdout, stderr = process.communicate(timeout=180)  # a FIFO or /dev/zero would hang it
        text = stderr.decode()
        assert process.returncode == 1, text
        assert "Traceback" not in text and "internal error" not in text, text
        lines = text.splitlines()
        errors = [line for line in lines if line.startswith("maskcli: error: ")]
        assert all(line.startswith(("maskcli: error: ", "maskcli: warning: ", "maskcli: ")) for line in lines)
        for name in BAD:  # one line per bad file
            assert sum(f"{folder / name}:" in line for line in errors) == 1, (name, errors)
        assert _contents(folder).items() >= before.items()  # no input changed
        import json

        records = [json.loads(line) for line in stdout.decode().splitlines()]
        written = {os.path.basename(r["input"]): r["output"] for r in records if r["status"] == "written"}
        failed = {os.path.basename(r["input"]) for r in records if r["status"] == "failed"}
        assert len(errors) == len(failed)
        for name, output in written.items():
            assert name in GOOD and _size(output) == GOOD[name], (name, output)
        if out != folder:
            # cat.jpg and cat.png both want cat.png: the second is refused, every other good file is written
            assert set(written) == set(GOOD) - {"cat.png"}, sorted(failed)
            assert failed == set(BAD) | {"cat.png"}
            assert any(escape(str(folder / "cat.png")) in line and "also the output of" in line for line in errors)
        else:
            # every output named like an input is refused; the rest are written next to their inputs
            def output_name(name):  # segment writes PNG masks (a folder of them for an animated GIF); apply
                stem, suffix = os.path.splitext(name)  # keeps the format, PNG for a still GIF
                if name == "moving.gif":
                    return stem if verb == "segment" else name
                return stem + ".png" if verb == "segment" or suffix == ".gif" else name

            refused = {name for name in GOOD if output_name(name) in before}
            assert refused and refused <= failed and set(written) == set(GOOD) - refused
        assert not [n for n in os.listdir(out) if n.startswith(".maskcli-tmp-")]


@posix_only
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process tree from /proc")
def test_hostile_folder_leaves_no_process_after_kill_9(tmp_path, many):
    import signal

    folder = _hostile_folder(tmp_path / "d")
    process = _start(["segment", str(folder), str(many), *IN_WORKERS, "-o", str(tmp_path / "out"), "--jobs", "2",
                      "-q"], tmp_path)
    try:
        assert _wait_for(lambda: len(_descendants(process.pid)) >= 3 and (tmp_path / "out").is_dir())
        below = _descendants(process.pid)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        assert _wait_for(lambda: not any(_alive(pid) for pid in below), limit=20)
    finally:
        process.kill()
        process.communicate()


@posix_only
def test_a_fifo_given_as_a_coco_file_is_refused(tmp_path):
    fifo = tmp_path / "annotations.json"
    os.mkfifo(fifo)
    done = run_cli("apply", str(SAMPLES / "coins.png"), "--masks", str(fifo), "-o", str(tmp_path / "out"),
                   timeout=60)
    assert done.returncode == 3
    assert done.stderr.decode() == f"maskcli: error: {fifo}: cannot read: not a regular file (FIFO)\n"


def test_a_signal_never_cuts_a_report_in_half(monkeypatch):
    """A first Ctrl-C while a result is being reported waits for the whole report (count, line, record and its
    newline), then stops; the runner offers that result again and it is not reported twice."""
    import io
    import json
    import signal

    from maskcli.cli import signals
    from maskcli.cli.report import Reporter
    from maskcli.work import Result

    class SignalMidRecord(io.StringIO):
        signalled = False

        def write(self, text):
            if not self.signalled:
                self.signalled = True
                os.kill(os.getpid(), signal.SIGINT)  # arrives in the middle of the first record's write
            return super().write(text)

    previous = signals.install(ready=True)
    try:
        stdout = SignalMidRecord()
        reporter = Reporter(json_records=True, stdout=stdout, stderr=io.StringIO())
        first = Result(0, "a.png", "out/a.png", "written")
        with pytest.raises(KeyboardInterrupt):
            reporter.result(first)
        reporter.result(first)  # offered again by the stopping runner
        reporter.result(Result(1, "b.png", "out/b.png", "written"))
    finally:
        signals.restore(previous)
    records = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert [r["input"] for r in records] == ["a.png", "b.png"] and reporter.counts["written"] == 2


# --- every file a run reads is an input: stdin, a background image, a list of paths -----------------------------


@posix_only
@pytest.mark.parametrize("verb", ["segment", "apply"])
def test_stdin_that_is_the_output_file_is_never_replaced(tmp_path, verb):
    import subprocess

    from conftest import REPO

    victim = _photo(tmp_path / "victim.png", 11)
    before = victim.read_bytes()
    method = ["-m", "otsu"] if verb == "apply" else []
    with open(victim, "rb") as stdin:  # `maskcli segment - -o victim.png --overwrite < victim.png`
        done = subprocess.run([sys.executable, "-m", "maskcli", verb, "-", *method, "-o", str(victim),
                               "--overwrite"], stdin=stdin, capture_output=True, cwd=REPO, timeout=60)
    assert done.returncode == 1, done.stderr.decode()
    assert f"output {victim} is stdin, an input of this batch" in done.stderr.decode()
    assert victim.read_bytes() == before and os.listdir(tmp_path) == ["victim.png"]


def test_a_background_image_and_a_path_list_are_inputs(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    _photo(folder / "a.png", 12)
    background = _photo(folder / "bg.png", 13)
    listing = folder / "list.png"  # a list of paths, named like the output the template makes
    listing.write_text(f"{folder / 'a.png'}\n")
    before = _digests(folder)
    image = run_cli("apply", str(folder / "a.png"), "-m", "otsu", "--mode", "image", "-b", str(background),
                    "-o", str(folder), "--name", "bg.png", "--overwrite")
    listed = run_cli("segment", "-T", str(listing), "-o", str(folder), "--name", "list.png", "--overwrite")
    assert _digests(folder) == before
    assert image.returncode == 1 and f"is {background}, an input of this batch" in image.stderr.decode()
    assert listed.returncode == 1 and f"is {listing}, an input of this batch" in listed.stderr.decode()


# --- an output folder inside a recursive input folder ------------------------------------------------------------


@pytest.mark.parametrize("verb", ["segment", "apply"])
def test_an_output_folder_inside_the_input_tree_is_never_read_as_input(tmp_path, verb):
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    _photo(photos / "a.png", 14)
    _photo(photos / "sub" / "b.png", 15)
    out = photos / "out"
    method = ["-m", "otsu"] if verb == "apply" else []
    for run in range(3):  # every run after the first finds the first one's outputs inside its input tree
        overwrite = ["--overwrite"] if run == 2 else []
        done = run_cli(verb, str(photos), *method, "-o", str(out), "-r", *overwrite)
        lines = done.stderr.decode().splitlines()
        assert lines[0] == (f"maskcli: warning: {out} is inside the input folder {photos}; this run does not "
                            "read it as input"), lines
        assert sum("inside the input folder" in line for line in lines) == 1
        assert done.returncode == (1 if run == 1 else 0), lines  # run 2: both outputs exist (an error each)
        if run == 1:
            assert len([line for line in lines if "exists" in line]) == 2
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == ["a.png", "sub", "sub/b.png"]


# --- name templates: the documented fields only -------------------------------------------------------------------


@pytest.mark.parametrize(("template", "says"), [
    ("{stem.nope}.png", "unknown field {stem.nope}"),
    ("{stem.__class__}.png", "unknown field {stem.__class__}"),
    ("{name[0]}.png", "unknown field {name[0]}"),
    ("{stem!r}.png", "{stem!r} in the name template"),
    ("{0}.png", "unknown field {0}"),
    ("{stem:05d}.png", "Unknown format code 'd'"),
    (".", "names no file"),
    ("{stem}.jpg", "ends in .jpg, but the outputs are PNG files"),
])
def test_a_name_template_with_more_than_its_fields_is_a_usage_error(tmp_path, capsys, template, says):
    from conftest import run_main

    status, err = run_main(["segment", str(SAMPLES / "coins.png"), "-o", str(tmp_path / "out"), "--name", template],
                           capsys)
    assert status == 2 and err.count("\n") == 1 and says in err, err
    assert err.startswith("maskcli: error: --name: ") and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_a_name_template_takes_format_specs(tmp_path, capsys):
    from conftest import run_main

    status, err = run_main(["segment", str(SAMPLES / "coins.png"), str(SAMPLES / "cell.png"), "-o",
                            str(tmp_path / "out"), "--name", "{index:03d}_{stem}_mask"], capsys)
    assert status == 0, err
    assert sorted(os.listdir(tmp_path / "out")) == ["000_coins_mask.png", "001_cell_mask.png"]


def test_the_engine_help_shows_the_extra_to_install():
    done = run_cli("segment", "--help")
    assert done.returncode == 0 and "'maskcli[ray]'" in done.stdout.decode()  # rich markup once ate [ray]


# --- messages ----------------------------------------------------------------------------------------------------


def test_fail_fast_reports_one_failure(tmp_path, many):
    for name in ("00002.png", "00003.png", "00004.png"):
        (many / name).write_bytes(b"not an image")
    done = run_cli("segment", str(many), "-o", str(tmp_path / "out"), "--jobs", "2", "--fail-fast")
    errors = [line for line in done.stderr.decode().splitlines() if line.startswith("maskcli: error:")]
    assert done.returncode == 1 and len(errors) == 1, errors


@posix_only
def test_a_device_as_background_is_not_a_regular_file(tmp_path):
    done = run_cli("apply", str(SAMPLES / "coins.png"), "-m", "otsu", "--mode", "image", "-b", "/dev/urandom",
                   "-o", str(tmp_path / "out"))
    assert done.returncode == 2
    assert done.stderr.decode() == "maskcli: error: --background: /dev/urandom: not a regular file (character device)\n"


@posix_only
def test_a_fifo_in_a_mask_folder_fails_its_item_only(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    _photo(images / "a.png", 18)
    _photo(images / "b.png", 19)
    os.mkfifo(masks / "a.png")
    cv2.imwrite(str(masks / "b.png"), np.full((48, 64), 255, np.uint8))
    done = run_cli("apply", str(images), "--masks", str(masks), "-o", str(tmp_path / "out"), timeout=60)
    errors = [line for line in done.stderr.decode().splitlines() if "error" in line]
    assert done.returncode == 1
    assert errors == [f"maskcli: error: {images / 'a.png'}: mask {masks / 'a.png'}: not a regular file (FIFO)"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["b.png"]


def _special(tmp_path, kind, name):
    if kind == "fifo":
        os.mkfifo(tmp_path / name)
        return str(tmp_path / name), "FIFO"
    return "/dev/zero", "character device"


@posix_only
@pytest.mark.parametrize("kind", ["fifo", "device"])
@pytest.mark.parametrize("flag", ["--mask", "--weights", "--from-file", "--boxes", "--background"])
def test_a_special_file_as_an_option_value_is_a_usage_error(tmp_path, kind, flag):
    path, named = _special(tmp_path, kind, "x.jsonl" if flag == "--boxes" else "x.png")
    coins = str(SAMPLES / "coins.png")
    args = {
        "--mask": ["apply", coins, "--mask", path],
        "--weights": ["segment", coins, "-m", "cnn", "--weights", path],
        "--from-file": ["segment", "-T", path],
        "--boxes": ["segment", coins, "--boxes", path],
        "--background": ["apply", coins, "-m", "otsu", "--mode", "image", "-b", path],
    }[flag]
    done = run_cli(*args, "-o", str(tmp_path / "out"), timeout=60)
    assert done.returncode == 2, done.stderr
    line, = done.stderr.decode().splitlines()
    assert line.startswith(f"maskcli: error: {flag}: {path}: not a regular file ({named})"), line
    assert not (tmp_path / "out").exists()


def test_resize_mask_warns_when_it_changes_the_aspect_ratio(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    _photo(images / "a.png", 16)  # 64×48
    _photo(images / "b.png", 17)
    cv2.imwrite(str(masks / "a.png"), np.full((24, 32), 255, np.uint8))  # the same shape, half the size
    cv2.imwrite(str(masks / "b.png"), np.full((48, 48), 255, np.uint8))  # square
    done = run_cli("apply", str(images), "--masks", str(masks), "--resize-mask", "-o", str(tmp_path / "out"))
    warnings = [line for line in done.stderr.decode().splitlines() if "warning" in line]
    assert done.returncode == 0 and len(warnings) == 1, warnings
    assert "b.png: mask is 48×48, stretched to the image's 64×48" in warnings[0]


def test_a_folder_that_fills_part_way_reports_every_file_it_holds(tmp_path, monkeypatch, capsys):
    import errno
    import json

    from benchmarks.synth import make_discs
    from maskcli.cli.app import main
    from maskcli.io import files

    folder = make_discs(tmp_path / "in", count=40)
    out = tmp_path / "out"
    real = files._rename_exclusive
    calls = []

    def fills(source, target):
        calls.append(target)
        if len(calls) > 5:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(source, target)

    monkeypatch.setattr(files, "_rename_exclusive", fills)
    assert main(["segment", str(folder), "-o", str(out), "--jobs", "2", "--json"]) == 3
    captured = capsys.readouterr()
    written = {os.path.basename(r["output"]) for r in map(json.loads, captured.out.splitlines())
               if r["status"] == "written"}
    assert written == set(os.listdir(out)) and len(written) == 5
    lines = captured.err.splitlines()
    assert "No space left on device; stopping" in lines[-2] and lines[-1].startswith("maskcli: 5 written")
