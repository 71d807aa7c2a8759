"""Watched folders: every good file that lands is masked exactly once, never a partial file, never the run's own
outputs; bad files are one error each; --json records stream; Ctrl-C ends with the summary and exit 130."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2

from conftest import REPO, SAMPLES, interrupt

WRITER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    folder, samples = Path(sys.argv[1]), Path(sys.argv[2])
    coins, camera = (samples / "coins.png").read_bytes(), (samples / "camera.png").read_bytes()
    # 1. written in place, slowly, in chunks, kept open between them
    with open(folder / "slow.png", "wb") as stream:
        for start in range(0, len(coins), len(coins) // 6 + 1):
            stream.write(coins[start:start + len(coins) // 6 + 1]); stream.flush(); time.sleep(0.15)
    # 2. written under a hidden temp name, then renamed in
    (folder / ".camera.png.tmp").write_bytes(camera)
    os.rename(folder / ".camera.png.tmp", folder / "renamed.png")
    # 3. a bad file: text named like an image
    (folder / "bad.png").write_text("not a picture\\n" * 50)
    # 4. a partial download's name, completed by a rename
    (folder / "late.png.part").write_bytes(coins[:1000])
    time.sleep(0.3)
    (folder / "late.png.part").write_bytes(coins)
    os.rename(folder / "late.png.part", folder / "late.png")
    print("done", flush=True)
""")


def _records(process: subprocess.Popen, wanted: int, deadline: float) -> list[dict]:
    records: list[dict] = []
    os.set_blocking(process.stdout.fileno(), False)
    buffer = b""
    while len(records) < wanted and time.monotonic() < deadline:
        chunk = process.stdout.read()
        if chunk:
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            records += [json.loads(line) for line in lines if line.strip()]
        else:
            time.sleep(0.05)
    return records


def test_watch_masks_each_complete_file_once(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "first.png").write_bytes((SAMPLES / "cell.png").read_bytes())  # there before the watch starts
    out = inbox / "masks"  # the outputs land inside the watched tree
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-m", "maskcli", "segment", str(inbox), "-o", str(out), "-r",
                                "--watch", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        first = _records(process, 1, time.monotonic() + 60)
        writer = subprocess.run([sys.executable, "-c", WRITER, str(inbox), str(SAMPLES)], timeout=60,
                                capture_output=True)
        assert writer.returncode == 0, writer.stderr
        records = first + _records(process, 4, time.monotonic() + 60)
        time.sleep(1.5)  # time for a wrong second round (an output or a file seen twice) to show up
    finally:
        rest, errors = interrupt(process, 30)
    records += [json.loads(line) for line in rest.splitlines() if line.strip()]
    assert process.returncode == 130, errors
    names = sorted(Path(record["input"]).name for record in records)
    assert names == ["bad.png", "first.png", "late.png", "renamed.png", "slow.png"], records
    status = {Path(record["input"]).name: record["status"] for record in records}
    assert status.pop("bad.png") == "failed"
    assert set(status.values()) == {"written"}
    coins = cv2.imread(str(SAMPLES / "coins.png"), 0)
    for name in ("slow", "late"):  # the whole picture was read, not a part of it
        mask = cv2.imread(str(out / f"{name}.png"), 0)
        assert mask.shape == coins.shape and 0.2 < float((mask > 0).mean()) < 0.6
    summary = errors.decode().strip().splitlines()[-1]
    assert "4 written" in summary and "1 failed" in summary and "interrupted" in summary
    assert sorted(p.name for p in out.iterdir()) == ["first.png", "late.png", "renamed.png", "slow.png"]
