"""The command line's IO context: every command reads and writes the streams it is handed (here, in memory), and
exits with the one set of statuses."""

from __future__ import annotations

import io
import json
import signal
from pathlib import Path

import cv2
import numpy as np

from maskcli.cli import common as c
from maskcli.cli.context import Exit, IOContext

from conftest import SAMPLES


def _main(args: list[str], stdin: bytes = b"") -> tuple[int, bytes, str]:
    """Run the command in this process on in-memory streams; batches on one core, since a process pool would
    leave its fork server running beside the test process."""
    from maskcli.cli.app import main

    if args[0] == "segment":
        args = [*args, "--jobs", "1"]
    context = IOContext(io.TextIOWrapper(io.BytesIO(stdin)), io.TextIOWrapper(io.BytesIO(), write_through=True),
                        io.StringIO())
    handler = signal.getsignal(signal.SIGTERM)
    try:
        status = main(args, io=context)
    finally:
        signal.signal(signal.SIGTERM, handler)
    return status, context.stdout_bytes.getvalue(), context.stderr.getvalue()  # type: ignore[attr-defined]


def test_an_image_in_and_its_mask_out_through_the_given_streams(tmp_path: Path) -> None:
    status, out, err = _main(["segment", "-", "-m", "otsu"], stdin=(SAMPLES / "coins.png").read_bytes())
    assert status == Exit.OK and out.startswith(b"\x89PNG"), err
    assert _main(["segment", str(SAMPLES / "coins.png"), "-m", "otsu", "-o", str(tmp_path)])[0] == Exit.OK
    piped = cv2.imdecode(np.frombuffer(out, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert 0.3 < (piped > 127).mean() < 0.5
    np.testing.assert_array_equal(piped, cv2.imread(str(tmp_path / "coins.png"), cv2.IMREAD_GRAYSCALE))


def test_records_errors_and_statuses_go_to_the_given_streams(tmp_path: Path) -> None:
    status, out, err = _main(["segment", str(SAMPLES / "coins.png"), str(tmp_path / "nope.png"), "-o",
                              str(tmp_path / "m"), "--json"])
    assert status == Exit.SOME_FAILED
    records = [json.loads(line) for line in out.decode().splitlines()]
    assert [r["status"] for r in records] == ["written", "failed"]
    assert f"maskcli: error: {tmp_path / 'nope.png'}: no such file or folder" in err
    status, out, err = _main(["segment", str(SAMPLES / "coins.png"), "-o", str(tmp_path / "m"), "--hard", "2"])
    assert status == Exit.USAGE and err == "maskcli: error: --hard: level must be in (0, 1], got 2.0\n"
    status, out, _ = _main(["--version"])
    assert status == Exit.OK and out.startswith(b"maskcli ")


def test_option_groups_are_declared_once_and_shared_by_segment_and_apply() -> None:
    import dataclasses
    import inspect

    from maskcli.cli.apply import apply_command
    from maskcli.cli.segment import segment_command

    for group in (c.BatchOptions, c.MethodOptions, c.MattingOptions):
        names = [field.name for field in dataclasses.fields(group)]
        for command in (segment_command, apply_command):
            parameters = list(inspect.signature(command).parameters)
            start = parameters.index(names[0])
            assert parameters[start:start + len(names)] == names  # spelled out in place, in the group's order
    seen = {}

    @c.grouped
    def demo(x: int = 1, *, batch: c.BatchOptions) -> None:
        seen.update(x=x, batch=batch)

    defaults = {field.name: field.default for field in dataclasses.fields(c.BatchOptions)}
    demo(x=2, **{**defaults, "jobs": 3, "skip_existing": True})
    assert seen["x"] == 2 and seen["batch"].jobs == 3 and seen["batch"].existing() == "skip"
