"""Shared fixtures: where the samples and the shared evaluation data live, and small image factories."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
SHARED = REPO.parent / "shared"
DATA = SHARED / "data"
# The default model's weights ship inside the package; ../shared keeps the original for older checkouts.
U2NETP = next((path for path in (REPO / "maskcli" / "cnn" / "weights_data" / "u2netp.onnx",
                                 SHARED / "weights" / "u2netp.onnx") if path.is_file()),
              SHARED / "weights" / "u2netp.onnx")

needs_data = pytest.mark.skipif(
    not DATA.is_dir(), reason="../shared/data (the evaluation sets) is not beside this clone"
)
needs_u2netp = pytest.mark.skipif(
    not U2NETP.is_file(), reason="the U²-Net-P weights are neither in the package nor in ../shared/weights"
)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test downloads or sees a user's cache: an empty private cache per test, downloads off unless a test
    injects its own fetch. The CLI's subprocesses inherit this environment."""
    monkeypatch.setenv("MASKCLI_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MASKCLI_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


@pytest.fixture
def samples() -> Path:
    return SAMPLES


def run_cli(*args: str, stdin: bytes | None = None, cwd: Path | None = None, timeout: float = 120,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m maskcli`` as a user would, with its real streams."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("COLUMNS", None)
    return subprocess.run(
        [sys.executable, "-m", "maskcli", *args],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        cwd=cwd or REPO,
        timeout=timeout,
        env=full_env,
    )


@pytest.fixture
def blob_image() -> np.ndarray:
    """A 64×80 grey uint8 image: a bright disc on a dark, slightly noisy background."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:64, :80]
    disc = (yy - 30) ** 2 + (xx - 42) ** 2 < 15**2
    image = np.where(disc, 200, 40).astype(np.int16) + rng.integers(-10, 10, disc.shape)
    return image.clip(0, 255).astype(np.uint8)


def run_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run the CLI in this process (fast, for wide grids of small cases): exit status and stderr."""
    import signal

    from maskcli.cli.app import main

    handler = signal.getsignal(signal.SIGTERM)
    try:
        status = main(args)
    finally:
        signal.signal(signal.SIGTERM, handler)
    return status, capsys.readouterr().err


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares a huge size (a decompression bomb's calling card)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def interrupt(process: subprocess.Popen, timeout: float) -> tuple[bytes, bytes]:
    """Ctrl-C a running command and collect what it wrote; one that outlives ``timeout`` is killed (the test
    fails on its exit status, and no process outlives the test)."""
    try:
        process.send_signal(signal.SIGINT)
        return process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
