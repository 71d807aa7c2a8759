"""The command line as a user meets it: outputs, messages, exit statuses, pipes, and bad input."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import REPO, SAMPLES, run_cli


def png_bytes(array: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", array)
    return data.tobytes()


@pytest.fixture
def images(tmp_path, blob_image) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("one", "two", "three"):
        (folder / f"{name}.png").write_bytes(png_bytes(blob_image))
    return folder


def lines(stream: bytes) -> list[str]:
    return stream.decode().strip().splitlines()


def test_version_help_and_thresholds_do_not_import_torch(tmp_path):
    code = (
        "import sys; from maskcli.cli.app import main; "
        "status = main(sys.argv[1:]); "
        "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(status)"
    )
    otsu = ["segment", str(SAMPLES / "coins.png"), "-o", str(tmp_path), "--method", "otsu", "--quiet"]
    for args in (["--version"], ["--help"], ["segment", "--help"], ["apply", "--help"], ["methods"], otsu):
        done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, cwd=REPO)
        assert done.returncode == 0, (args, done.stderr.decode())
    version = run_cli("--version")
    assert version.stdout.decode().startswith("maskcli 0.")


def test_segment_writes_one_hard_mask_per_image(images, tmp_path):
    done = run_cli("segment", str(images), "-o", str(tmp_path / "masks"), "--jobs", "2")
    assert done.returncode == 0, done.stderr.decode()
    written = sorted(p.name for p in (tmp_path / "masks").iterdir())
    assert written == ["one.png", "three.png", "two.png"]
    mask = cv2.imread(str(tmp_path / "masks" / "one.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (64, 80) and set(np.unique(mask)) == {0, 255}
    assert 0.1 < (mask > 0).mean() < 0.3  # the disc, not the background
    assert lines(done.stderr)[-1].startswith("maskcli: 3 written, 0 skipped, 0 failed")


def test_segment_the_samples_folder(tmp_path):
    done = run_cli("segment", str(SAMPLES), "-o", str(tmp_path / "out"), "--json")
    assert done.returncode == 0, done.stderr.decode()
    records = [json.loads(line) for line in lines(done.stdout)]
    assert len(records) == len([p for p in SAMPLES.iterdir() if p.suffix in (".png", ".jpg")])
    for record in records:
        assert record["status"] == "written" and Path(record["output"]).is_file()
        assert 0.0 < record["threshold"] < 1.0
        assert set(record["timings_ms"]) >= {"decode", "compute", "encode"}


def test_bad_inputs_each_give_one_line_and_the_batch_goes_on(tmp_path, blob_image):
    folder = tmp_path / "mixed"
    folder.mkdir()
    good = png_bytes(blob_image)
    jpeg = cv2.imencode(".jpg", np.tile(blob_image, (8, 8)))[1].tobytes()
    (folder / "a_good.png").write_bytes(good)
    (folder / "b_empty.png").write_bytes(b"")
    (folder / "c_truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (folder / "d_text.png").write_text("not an image\n")
    (folder / "e_random.jpg").write_bytes(np.random.default_rng(0).bytes(4096))
    (folder / "f_loop.png").symlink_to(folder / "f_loop2.png")
    (folder / "f_loop2.png").symlink_to(folder / "f_loop.png")
    from conftest import png_declaring

    (folder / "g_bomb.png").write_bytes(png_declaring(60_000, 60_000))
    (folder / "h_folder.png").mkdir()
    (folder / "z_good.png").write_bytes(good)
    listing = "\n".join(str(p) for p in sorted(folder.iterdir())) + "\n"
    done = run_cli("segment", "-o", str(tmp_path / "out"), "--jobs", "2", stdin=listing.encode())
    assert done.returncode == 1
    errors = [line for line in lines(done.stderr) if line.startswith("maskcli: error:")]
    expected = {
        "b_empty.png": "empty file",
        "c_truncated.jpg": "truncated",
        "d_text.png": "not a readable image",
        "e_random.jpg": "not a readable image",
        "f_loop.png": "symbolic links",
        "f_loop2.png": "symbolic links",
        "g_bomb.png": "over the limit",
        "h_folder.png": "is a folder",
    }
    assert len(errors) == len(expected)
    for line in errors:
        name = next(n for n in expected if f"{n}:" in line)
        assert expected.pop(name) in line, line
    assert "Traceback" not in done.stderr.decode()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_good.png", "z_good.png"]
    assert "maskcli: 2 written, 0 skipped, 8 failed" in done.stderr.decode()


def test_unwritable_output_folder(images):
    done = run_cli("segment", str(images), "-o", "/proc/1/maskcli-out", "--jobs", "1")
    assert done.returncode == 1
    errors = lines(done.stderr)[:-1]
    assert len(errors) == 3 and all(e.startswith("maskcli: error: ") and "cannot write" in e for e in errors)


def test_output_equal_to_input_is_refused(images):
    before = {p.name: p.read_bytes() for p in images.iterdir()}
    done = run_cli("segment", str(images), "-o", str(images), "--overwrite")
    assert done.returncode == 1
    assert done.stderr.decode().count("is the input itself") == 3
    assert {p.name: p.read_bytes() for p in images.iterdir()} == before


def test_names_cannot_escape_the_output_folder(images, tmp_path):
    done = run_cli("segment", str(images), "-o", str(tmp_path / "out"), "--name", "../{stem}.png")
    assert done.returncode == 1
    assert done.stderr.decode().count("would leave the output folder") == 3
    assert not list(tmp_path.glob("*.png"))


def test_existing_outputs_error_skip_overwrite(images, tmp_path):
    out = tmp_path / "out"
    assert run_cli("segment", str(images), "-o", str(out)).returncode == 0
    again = run_cli("segment", str(images), "-o", str(out))
    assert again.returncode == 1 and again.stderr.decode().count("exists (use --overwrite") == 3
    resumed = run_cli("segment", str(images), "-o", str(out), "--skip-existing", "--json")
    assert resumed.returncode == 0
    assert [json.loads(line)["status"] for line in lines(resumed.stdout)] == ["skipped"] * 3
    assert run_cli("segment", str(images), "-o", str(out), "--overwrite").returncode == 0


def test_recursive_mirrors_the_tree(tmp_path, blob_image):
    (tmp_path / "in" / "a" / "b").mkdir(parents=True)
    (tmp_path / "in" / "top.png").write_bytes(png_bytes(blob_image))
    (tmp_path / "in" / "a" / "b" / "deep.png").write_bytes(png_bytes(blob_image))
    done = run_cli("segment", str(tmp_path / "in"), "-r", "-o", str(tmp_path / "out"), "--name", "{stem}_mask.png")
    assert done.returncode == 0, done.stderr.decode()
    assert (tmp_path / "out" / "top_mask.png").is_file()
    assert (tmp_path / "out" / "a" / "b" / "deep_mask.png").is_file()


def test_nul_separated_list_from_a_file(images, tmp_path):
    listing = tmp_path / "list"
    listing.write_bytes(b"\0".join(str(p).encode() for p in sorted(images.iterdir())) + b"\0")
    done = run_cli("segment", "--from-file", str(listing), "-0", "-o", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr.decode()
    assert len(list((tmp_path / "out").iterdir())) == 3


def test_one_image_through_stdin_and_stdout(blob_image):
    done = run_cli("segment", "-", stdin=png_bytes(blob_image))
    assert done.returncode == 0, done.stderr.decode()
    mask = cv2.imdecode(np.frombuffer(done.stdout, np.uint8), cv2.IMREAD_UNCHANGED)
    assert mask.shape == blob_image.shape and set(np.unique(mask)) == {0, 255}
    assert done.stderr == b""  # stdout carries the image; nothing else is said on success


def test_piped_image_without_dash_is_recognised(blob_image):
    done = run_cli("segment", stdin=png_bytes(blob_image))
    assert done.returncode == 0 and done.stdout.startswith(b"\x89PNG")


def test_refuses_to_write_an_image_to_a_terminal(blob_image, tmp_path):
    source = tmp_path / "in.png"
    source.write_bytes(png_bytes(blob_image))
    leader, follower = pty.openpty()
    with open(source, "rb") as stdin:
        done = subprocess.run([sys.executable, "-m", "maskcli", "segment", "-"], stdin=stdin, stdout=follower,
                              stderr=subprocess.PIPE, cwd=REPO, timeout=60)
    os.close(follower)
    os.close(leader)
    assert done.returncode == 2
    assert "refusing to write image data to a terminal" in done.stderr.decode()


@pytest.mark.parametrize(
    "args, status, message",
    [
        (["segment", "samples", "-o", "x", "-m", "otsuu"], 2, "unknown method 'otsuu'; did you mean 'otsu'?"),
        (["segment", "samples", "-o", "x", "-p", "nonsense=1"], 2, "has no option 'nonsense'"),
        (["segment", "samples", "-o", "x", "-p", "novalue"], 2, "expected KEY=VALUE"),
        (["segment", "samples"], 2, "give an output folder"),
        (["segment", "-o", "x"], 3, "no inputs"),
        (["segment", "samples", "-o", "x", "--jobs", "0"], 2, "--jobs"),
        (["apply", "samples", "-o", "x"], 2, "say where masks come from"),
        (["apply", "samples", "-o", "x", "--mode", "nope", "--alpha"], 2, "unknown mode 'nope'"),
    ],
)
def test_usage_and_setup_errors(args, status, message, tmp_path):
    done = run_cli(*args, cwd=REPO)
    assert done.returncode == status, done.stderr.decode()
    assert message in done.stderr.decode()
    assert "Traceback" not in done.stderr.decode()


def test_missing_inputs_are_reported_per_item(tmp_path, images):
    done = run_cli("segment", str(images / "one.png"), str(tmp_path / "nope.png"), str(tmp_path / "*.gif"),
                   "-o", str(tmp_path / "out"))
    assert done.returncode == 1
    stderr = done.stderr.decode()
    assert f"maskcli: error: {tmp_path / 'nope.png'}: no such file or folder" in stderr
    assert "no files match this pattern" in stderr


def test_ctrl_c_stops_cleanly(tmp_path):
    from benchmarks.synth import make_discs

    folder = make_discs(tmp_path / "many", count=400, size=(700, 900))
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "maskcli", "segment", str(folder), "-o", str(out),
                                "--jobs", "2", "--quiet"], cwd=REPO, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline and (not out.exists() or len(list(out.iterdir())) < 5):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr.decode()
    written = list(out.iterdir())
    assert 5 <= len(written) < 400
    assert not [p for p in written if p.name.startswith(".maskcli-tmp-")]
    for path in written:  # every file left is complete
        assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).shape == (700, 900)
