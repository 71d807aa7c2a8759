"""The README's tour runs as written, after the README's install: every line of its code block, in a shell, on
small real images (from samples/) in the folders it names, with only maskcli's core dependencies importable."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import tomllib

from conftest import REPO, SAMPLES

#: What each folder or file of the tour holds: samples, made small so that every line runs in moments.
WORKSPACE = {
    "scans": ["camera.png", "coins.png"],
    "cells": ["cell.png", "coins.png"],
    "shop": ["coffee.png", "chelsea.png"],
    "photos": ["chelsea.png", "astronaut.png"],
    "images": ["coins.png", "cell.png"],
}
SIDE = 128


def tour() -> list[list[str]]:
    """The tour's commands, in groups (a blank line ends a group; a group's lines may use what earlier ones made)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## A tour\n\n```sh\n(.+?)\n```", text, re.S)
    assert block, "README.md has no tour"
    groups: list[list[str]] = [[]]
    for line in block.group(1).splitlines():
        if not line.strip():
            groups.append([])
        elif not line.lstrip().startswith("#"):
            groups[-1].append(line)
    return [group for group in groups if group]


def core_only() -> set[str]:
    """Modules of the optional extras that a core install lacks (pyproject.toml decides)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]

    def module(requirement: str) -> str:
        return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].strip().lower().replace("-", "_")

    core = {module(requirement) for requirement in project["dependencies"]}
    extras = {module(r) for name, requirements in project["optional-dependencies"].items() if name != "test"
              for r in requirements}
    return extras - core


def _small(path: Path, folder: Path, suffix: str = ".png") -> Path:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    scale = SIDE / max(image.shape[:2])
    small = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                       interpolation=cv2.INTER_AREA)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / (path.stem + suffix)
    assert cv2.imwrite(str(target), small)
    return target


def _workspace(root: Path, group: list[str]) -> None:
    for folder, names in WORKSPACE.items():
        for name in names:
            _small(SAMPLES / name, root / folder, ".jpg" if folder in ("photos", "shop") else ".png")
    _small(SAMPLES / "chelsea.png", root, ".jpg").rename(root / "photo.jpg")
    for image in (root / "images").iterdir():  # hand-made truth: a disc in the middle
        height, width = cv2.imread(str(image), cv2.IMREAD_GRAYSCALE).shape
        truth = np.zeros((height, width), np.uint8)
        cv2.circle(truth, (width // 2, height // 2), min(height, width) // 3, 255, -1)
        (root / "truth").mkdir(exist_ok=True)
        cv2.imwrite(str(root / "truth" / image.name), truth)
    _detections(root)
    _clip(root / "clip.mp4")
    (root / "inbox").mkdir()
    _small(SAMPLES / "coins.png", root / "inbox")
    # A group that reads masks/ before any of its lines writes them starts with masks of images/.
    first = next((line for line in group if "masks/" in line), "")
    if first and "-o masks/" not in first:
        (root / "masks").mkdir()
        for truth in (root / "truth").iterdir():
            (root / "masks" / truth.name).write_bytes(truth.read_bytes())


def _detections(root: Path) -> None:
    """detections.json (a COCO file of boxes) and truth.json (the same objects as polygons) for photos/: one box
    in the middle of each photo."""
    import json

    images, boxes, truths = [], [], []
    for number, photo in enumerate(sorted((root / "photos").iterdir()), start=1):
        height, width = cv2.imread(str(photo), cv2.IMREAD_GRAYSCALE).shape
        x0, y0, x1, y1 = width // 4, height // 4, 3 * width // 4, 3 * height // 4
        images.append({"id": number, "file_name": photo.name, "width": width, "height": height})
        box = {"id": number, "image_id": number, "category_id": 1, "bbox": [x0, y0, x1 - x0, y1 - y0],
               "area": (x1 - x0) * (y1 - y0), "iscrowd": 0}
        boxes.append(box)
        truths.append({**box, "segmentation": [[x0, y0, x1, y0, x1, y1, x0, y1]]})
    categories = [{"id": 1, "name": "subject"}]
    (root / "detections.json").write_text(json.dumps({"images": images, "annotations": boxes,
                                                      "categories": categories}))
    (root / "truth.json").write_text(json.dumps({"images": images, "annotations": truths,
                                                 "categories": categories}))


def _clip(path: Path) -> None:
    """clip.mp4: a few frames of a sample photo, panned."""
    from video_clips import make_clip

    picture = cv2.cvtColor(cv2.imread(str(_small(SAMPLES / "chelsea.png", path.parent / "frames"))), cv2.COLOR_BGR2RGB)
    make_clip(path, [np.ascontiguousarray(np.roll(picture, 2 * k, axis=1)[:96, :128]) for k in range(6)])


def _watch(line: str, root: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """A --watch line runs until Ctrl-C: let it take the folder's files, then interrupt it (exit 130)."""
    import time

    from conftest import interrupt

    process = subprocess.Popen(["bash", "-c", "exec " + line], cwd=root, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list((root / "masks").glob("*.png")) and process.poll() is None:
        time.sleep(0.2)
    stdout, stderr = interrupt(process, 60)
    return subprocess.CompletedProcess(line, 0 if process.returncode == 130 else process.returncode, stdout, stderr)


def _maskcli_command(bin_folder: Path, blocked: set[str]) -> None:
    """``maskcli`` on PATH, as the README's ``pip install -e .`` makes it, with the extras' modules missing."""
    bin_folder.mkdir()
    starter = bin_folder / "maskcli_core_only.py"
    starter.write_text(
        "import sys\n"
        f"for name in {sorted(blocked)!r}:\n"
        "    sys.modules[name] = None  # not installed: imports fail, find_spec says None\n"
        "if __name__ == '__main__':  # as a console script: worker processes import this file again\n"
        "    from maskcli.cli.entry import main\n"
        "    main()\n")
    script = bin_folder / "maskcli"
    script.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(str(starter))} \"$@\"\n")
    script.chmod(0o755)


def _needs_download(line: str) -> str | None:
    """Why a line cannot run offline here (a model whose weights are not shipped), or None."""
    match = re.search(r"--model (\S+)", line)
    if match and match.group(1) not in ("u2netp",):
        return f"the {match.group(1)} weights are downloaded on first use"
    return None


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="the tour is a POSIX shell session")
def test_the_readme_tour_runs_as_written_after_the_readme_install(tmp_path):
    blocked = core_only()
    _maskcli_command(tmp_path / "bin", blocked)
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env["PYTHONPATH"] = str(REPO)  # this checkout, installed (workers import it too)
    ran, skipped = [], []
    for number, group in enumerate(tour()):
        root = tmp_path / f"group{number}"
        root.mkdir()
        _workspace(root, group)
        unavailable: list[str] = []  # outputs of lines that could not run
        for line in group:
            reason = _needs_download(line) or next((f"it reads {out}, which a skipped line makes"
                                                    for out in unavailable if out in line), None)
            if reason:
                skipped.append((line, reason))
                unavailable += re.findall(r"-o (\S+)", line)
                continue
            if "--watch" in line:
                done = _watch(line, root, env)
            else:
                done = subprocess.run(["bash", "-o", "pipefail", "-c", line], cwd=root, env=env,
                                      capture_output=True, timeout=300)
            assert done.returncode == 0, (line, done.stderr.decode()[-2000:])
            assert "Traceback" not in done.stderr.decode(), (line, done.stderr.decode())
            for output in re.findall(r"(?:-o|--sheet|>) (\S+)", line):
                assert (root / output).exists(), (line, output)
            ran.append(line)
    assert len(ran) >= 18 and len(skipped) <= 2, skipped
    assert any("annotations.json" in line for line in ran)  # the COCO lines, with pycocotools as installed


def test_the_tour_check_blocks_exactly_the_extras():
    """The install simulated above: the extras' modules are missing, the core's are not."""
    blocked = core_only()
    assert {"pymatting", "ray"} <= blocked and "numpy" not in blocked and "pycocotools" not in blocked
