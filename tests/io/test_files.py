"""Files: safe reading, atomic writes, a run's write gate and the temp files writes leave."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from maskcli.errors import InputError, OutputError, WriteStopped
from maskcli.io import files
from maskcli.io.files import TEMP_PREFIX, WriteGate, read_regular_file, write_atomic


def test_write_atomic_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "deep" / "out.png"
    write_atomic(target, b"first")
    write_atomic(target, b"second")
    assert target.read_bytes() == b"second"
    assert [p.name for p in target.parent.iterdir()] == ["out.png"]


def test_write_atomic_failure_removes_the_temp_and_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OutputError, match="No space left"):
        write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_write_atomic_interrupted_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "out.png"

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, b"data")
    assert list(tmp_path.iterdir()) == []


def test_stopping_a_gate_waits_for_a_rename_under_way_and_then_refuses_the_next(tmp_path, monkeypatch):
    """Once ``WriteGate.stop`` returns, every rename begun before is complete (so its writer reports the file) and
    none begins after: a stopping run can list every file it leaves."""
    import threading

    renaming, release = threading.Event(), threading.Event()
    real_replace = os.replace

    def slow_replace(source, target):
        renaming.set()
        release.wait(10)
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", slow_replace)
    gate = WriteGate()
    writer = threading.Thread(target=write_atomic, args=(tmp_path / "a.png", b"a"), kwargs={"gate": gate})
    writer.start()
    assert renaming.wait(10)
    stopper = threading.Thread(target=gate.stop)
    stopper.start()
    try:
        stopper.join(0.3)
        assert stopper.is_alive()  # waits for the rename under way
    finally:
        release.set()
        stopper.join(10)
        writer.join(10)
    assert (tmp_path / "a.png").read_bytes() == b"a"
    with pytest.raises(WriteStopped):
        write_atomic(tmp_path / "b.png", b"b", gate=gate)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_read_only_folder_is_one_clear_error(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(files.tempfile, "mkstemp", refuse)
    with pytest.raises(OutputError, match="permission denied"):
        write_atomic(tmp_path / "out.png", b"x")


def test_the_temp_files_of_killed_processes_are_removed_and_no_others(tmp_path: Path) -> None:
    from maskcli.io.files import remove_temp_files

    left = tmp_path / f"{TEMP_PREFIX}4242-abc.png"  # what a worker killed mid-write leaves
    other = tmp_path / f"{TEMP_PREFIX}4243-def.png"  # another process's write in progress
    kept = tmp_path / "4242.png"
    for path in (left, other, kept):
        path.write_bytes(b"x")
    remove_temp_files([tmp_path, tmp_path / "missing"], [4242])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([other.name, kept.name])


def test_a_temp_file_names_its_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    real_replace = os.replace
    monkeypatch.setattr(files.os, "replace", lambda src, dst: (seen.append(os.path.basename(src)),
                                                                 real_replace(src, dst)))
    write_atomic(tmp_path / "a.png", b"data")
    assert seen and seen[0].startswith(f"{TEMP_PREFIX}{os.getpid()}-")


def test_the_temp_files_of_dead_processes_are_removed_and_a_live_ones_kept(tmp_path: Path) -> None:
    import subprocess
    import sys

    from maskcli.io.files import remove_temp_files_of_dead_processes

    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(done.stdout)  # a process that has exited
    (tmp_path / f"{TEMP_PREFIX}{dead}-abc.png").write_bytes(b"x")
    (tmp_path / f"{TEMP_PREFIX}{os.getpid()}-def.png").write_bytes(b"x")  # this live process's write
    remove_temp_files_of_dead_processes([tmp_path])
    assert [p.name for p in tmp_path.iterdir()] == [f"{TEMP_PREFIX}{os.getpid()}-def.png"]


def test_a_process_ending_mid_write_leaves_no_temp_file(tmp_path, monkeypatch):
    """``WriteGate.discard_temp_files`` (a stopped run's last step: the process may end without waiting for its
    threads) removes the temp file of a write still under way in another thread, and no new one is made after it."""
    import threading

    writing, release = threading.Event(), threading.Event()
    real_fdopen = os.fdopen

    class Slow:
        def __init__(self, stream):
            self.stream = stream

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.stream.close()

        def write(self, data):
            writing.set()
            release.wait(10)
            return self.stream.write(data)

    monkeypatch.setattr(os, "fdopen", lambda *a, **k: Slow(real_fdopen(*a, **k)))
    outcome = []

    gate = WriteGate()

    def write():
        try:
            write_atomic(tmp_path / "a.png", b"a", gate=gate)
        except WriteStopped:
            outcome.append("stopped")

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert writing.wait(10)
        assert [p.name for p in tmp_path.iterdir()][0].startswith(TEMP_PREFIX)
        gate.discard_temp_files()
        assert list(tmp_path.iterdir()) == []  # what os._exit would leave now
        with pytest.raises(WriteStopped):
            write_atomic(tmp_path / "b.png", b"b", gate=gate)
    finally:
        release.set()
        writer.join(10)
    assert outcome == ["stopped"] and list(tmp_path.iterdir()) == []


def test_a_regular_file_is_read_and_a_fifo_refused_without_blocking(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"bytes")
    assert read_regular_file(tmp_path / "a.bin") == b"bytes"
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(InputError, match=r"not a regular file \(FIFO\)"):
        read_regular_file(tmp_path / "pipe")
    with pytest.raises(InputError, match="is a folder"):
        read_regular_file(tmp_path)


def test_two_gates_in_one_process_stop_their_own_writes_alone(tmp_path):
    """Two runs in one process: stopping one run's gate leaves the other's writes, and later runs', alone."""
    first, second = WriteGate(), WriteGate()
    first.stop()
    with pytest.raises(WriteStopped):
        write_atomic(tmp_path / "first.png", b"1", gate=first)
    write_atomic(tmp_path / "second.png", b"2", gate=second)
    write_atomic(tmp_path / "ungated.png", b"3")  # a write outside any run
    assert first.stopped and not second.stopped
    assert sorted(p.name for p in tmp_path.iterdir()) == ["second.png", "ungated.png"]


def test_an_interrupted_run_leaves_the_next_runs_writes_open(tmp_path):
    """Each pipeline.run owns its gate: a run interrupted in this process stops only its own renames, so the next
    run in the same process writes (no reset anywhere, no test fixture needed)."""
    from pathlib import PurePosixPath

    from maskcli.engines.threads import InProcess
    from maskcli.errors import Interrupted
    from maskcli.io.sources import Item, Source
    from maskcli.pipeline import run
    from maskcli.work import JobBase, Result

    class Write(JobBase):
        def __init__(self, interrupt=False):
            self.interrupt = interrupt

        def load(self, item):
            return item.name

        def compute(self, loaded):
            return loaded

        def save(self, item, loaded, computed, gate):
            if self.interrupt:
                raise KeyboardInterrupt
            write_atomic(item.destination, b"mask", gate=gate)
            return Result(item.index, item.name, str(item.destination), "written")

    def one(name):
        return [Item(0, Source(name, PurePosixPath(name)), destination=tmp_path / name)]

    with pytest.raises(Interrupted):
        list(run(one("a.png"), Write(interrupt=True), executor=InProcess()))
    assert [r.status for r in run(one("b.png"), Write(), executor=InProcess())] == ["written"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.png"]
