"""The Ray engine against real Ray clusters: a local instance shared by the module, a private instance started
by the CLI (interrupted), and a two-node cluster on this machine. The results must equal the local engine's, byte
for byte, and every rule of the local engine must hold.

The clusters run with token authentication off (they listen on this machine only, for the test's lifetime) and
keep their sessions in the test's temp folder; every process they start is gone when the test ends (checked).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

from conftest import REPO, SAMPLES, U2NETP, needs_u2netp, run_cli

RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
needs_ray = pytest.mark.skipif(
    __import__("importlib").util.find_spec("ray") is None, reason="Ray is not installed (pip install -e '.[ray]')"
)


# -- processes ------------------------------------------------------------------------------------------------

def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process we can see."""
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as handle:
                command = handle.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{name}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            if fields[0] != "Z":  # a zombie has exited; only its parent's wait is missing
                found[int(name)] = (int(fields[1]), command)
        except (OSError, IndexError):
            continue
    return found


def _family(roots: set[int], marker: str | None = None) -> set[int]:
    """``roots``, the processes whose command line names ``marker`` (a session folder), and all their
    descendants (Ray workers rename themselves ``ray::...``, so only their parentage ties them to a session)."""
    table = _processes()
    family = {pid for pid in roots if pid in table}
    if marker:
        family |= {pid for pid, (_, command) in table.items() if marker in command and pid != os.getpid()}
    grew = True
    while grew:
        grew = False
        for pid, (parent, _) in table.items():
            if parent in family and pid not in family:
                family.add(pid)
                grew = True
    return family


def _alive(pids: set[int]) -> set[int]:
    table = _processes()
    return {pid for pid in pids if pid in table}


def _wait_gone(pids: set[int], seconds: float = 20) -> set[int]:
    deadline = time.time() + seconds
    while _alive(pids) and time.time() < deadline:
        time.sleep(0.2)
    return _alive(pids)


def _kill(pids: set[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _short_temp(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    # Ray's Unix socket paths live under this folder and must stay under ~107 characters.
    folder = tmp_path_factory.mktemp(name)
    assert len(str(folder)) < 50, folder
    return folder


# -- inputs ---------------------------------------------------------------------------------------------------

def _outputs(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _records(done: subprocess.CompletedProcess[bytes]) -> list[dict]:
    return [json.loads(line) for line in done.stdout.decode().splitlines() if line.strip()]


def _folder_with_a_bad_file(folder: Path, bad_name: str = "d_bad.png") -> Path:
    folder.mkdir()
    for name in ("coins.png", "camera.png", "cell.png", "retina.jpg"):
        (folder / name).write_bytes((SAMPLES / name).read_bytes())
    (folder / bad_name).write_bytes(b"\x89PNG\r\n\x1a\n not really a PNG")
    return folder


# -- one local Ray instance for the module --------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    """A local Ray instance (2 CPUs) started once; yields its address for CLI runs to connect to."""
    ray = pytest.importorskip("ray")
    saved = {key: os.environ.get(key) for key in RAY_ENV}
    os.environ.update(RAY_ENV)
    temp = _short_temp(tmp_path_factory, "ray")
    # Children this test process already has (a worker pool's fork server from earlier tests) are not Ray's.
    before = _family({os.getpid()})
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=str(temp), logging_level="WARNING")
    family = _family({os.getpid()}, str(temp)) - before
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        left = _wait_gone(family)
        _kill(left)
        assert not left, f"ray.shutdown() left processes behind: {sorted(left)}"


def _ray_cli(address: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return run_cli(*args, "--engine", "ray", "--ray-address", address, env=RAY_ENV, timeout=240)


@needs_ray
def test_segment_and_apply_equal_the_local_engine(cluster, tmp_path):
    local, remote = tmp_path / "local", tmp_path / "ray"
    done = run_cli("segment", str(SAMPLES), "-o", str(local / "masks"), "--fill-holes", "--json")
    assert done.returncode == 0, done.stderr.decode()
    done = _ray_cli(cluster, "segment", str(SAMPLES), "-o", str(remote / "masks"), "--fill-holes", "--json")
    assert done.returncode == 0, done.stderr.decode()
    records = _records(done)
    assert [r["input"] for r in records] == [str(p) for p in sorted(SAMPLES.glob("*.*g"))]  # input order
    assert {r["status"] for r in records} == {"written"} and all(r["node"] for r in records)
    assert "7 written, 0 skipped, 0 failed" in done.stderr.decode()
    assert _outputs(remote / "masks") == _outputs(local / "masks") and len(_outputs(local / "masks")) == 7

    # apply, with the masks just made, to JPEG on white (the input's format kept where it can hold the result)
    for engine_out, runner in ((local, run_cli), (remote, lambda *a: _ray_cli(cluster, *a))):
        done = runner("apply", str(SAMPLES), "--masks", str(local / "masks"), "--mode", "color", "-b", "white",
                      "-o", str(engine_out / "cut"), "--unordered")
        assert done.returncode == 0, done.stderr.decode()
    assert _outputs(remote / "cut") == _outputs(local / "cut")
    assert {Path(name).suffix for name in _outputs(local / "cut")} == {".png", ".jpg"}


@needs_ray
@needs_u2netp
@pytest.mark.slow
def test_the_cnn_runs_in_model_actors_with_equal_masks(cluster, tmp_path):
    # Batches of 3 over 4 images: a full batch and a short last one, through one model actor.
    inputs = [str(SAMPLES / name) for name in ("coins.png", "chelsea.png", "retina.jpg", "cell.png")]
    args = ["--weights", str(U2NETP), "--batch-size", "3", "--json"]
    done = run_cli("segment", *inputs, "-o", str(tmp_path / "local"), *args)
    assert done.returncode == 0, done.stderr.decode()
    done = _ray_cli(cluster, "segment", *inputs, "-o", str(tmp_path / "ray"), *args)
    assert done.returncode == 0, done.stderr.decode()
    assert {r["device"] for r in _records(done)} == {"cpu"}
    assert "compute" in _records(done)[0]["timings_ms"]  # the model actor's timing reaches the record
    assert _outputs(tmp_path / "ray") == _outputs(tmp_path / "local")


@needs_ray
def test_a_bad_file_fails_alone_resume_and_fail_fast(cluster, tmp_path):
    folder = _folder_with_a_bad_file(tmp_path / "in")
    out = tmp_path / "out"
    done = _ray_cli(cluster, "segment", str(folder), "-o", str(out), "--json")
    assert done.returncode == 1
    records = _records(done)
    failed = [r for r in records if r["status"] == "failed"]
    assert [r["input"] for r in failed] == [str(folder / "d_bad.png")] and len(records) == 5
    errors = [line for line in done.stderr.decode().splitlines() if line.startswith("maskcli: error:")]
    assert errors == [f"maskcli: error: {folder / 'd_bad.png'}: {failed[0]['error']}"]
    assert sorted(p.name for p in out.iterdir()) == ["camera.png", "cell.png", "coins.png", "retina.png"]

    # Resume: only the missing output is made again; the others are not touched.
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    (out / "cell.png").unlink()
    done = _ray_cli(cluster, "segment", str(folder), "-o", str(out), "--skip-existing", "--json")
    assert done.returncode == 1
    statuses = {Path(r["input"]).name: r["status"] for r in _records(done)}
    assert statuses == {"camera.png": "skipped", "cell.png": "written", "coins.png": "skipped",
                        "d_bad.png": "failed", "retina.jpg": "skipped"}
    assert all((out / name).stat().st_mtime_ns == before[name] for name in before if name != "cell.png")

    # Fail fast: the first item is the bad one. Items already in flight finish and are reported (every file
    # written is named); the rest never start.
    from benchmarks.synth import make_discs

    many = make_discs(tmp_path / "many", count=40, size=(60, 80))
    (many / "0-bad.png").write_bytes(b"not an image")  # sorts first
    done = _ray_cli(cluster, "segment", str(many), "-o", str(tmp_path / "ff"), "--fail-fast", "--json")
    assert done.returncode == 1
    records = _records(done)
    assert records[0]["status"] == "failed" and {r["status"] for r in records[1:]} <= {"written"}
    assert len(records) < 41
    written = sorted(p.name for p in (tmp_path / "ff").iterdir())
    assert written == sorted(Path(r["output"]).name for r in records[1:])


@needs_ray
def test_eval_methods_ranks_the_same_on_ray(cluster, tmp_path):
    assert run_cli("segment", str(SAMPLES), "-o", str(tmp_path / "truth"), "-q").returncode == 0

    def untimed(document: dict) -> dict:
        for entry in document["ranking"]:
            entry.pop("ms_per_image")
            for image in entry["images"]:
                image.pop("ms")
        return document

    args = ["eval", "--methods", "otsu,li", str(SAMPLES), str(tmp_path / "truth"), "--json"]
    local, remote = run_cli(*args), _ray_cli(cluster, *args)
    assert local.returncode == remote.returncode == 0, remote.stderr.decode()
    assert untimed(json.loads(remote.stdout)) == untimed(json.loads(local.stdout))


@needs_ray
def test_the_library_streams_results_in_order_or_as_they_finish(cluster, tmp_path):
    from maskcli.engines.ray import RayExecutor
    from maskcli.io.sources import Destinations, expand_inputs
    from maskcli.jobs.segment import SegmentJob
    from maskcli.methods import methods
    from maskcli.pipeline import run

    job = SegmentJob(methods.create("otsu"))
    executor = RayExecutor()  # Ray is already initialised here: the executor uses that session, leaves it running
    for ordered, folder in ((True, "a"), (False, "b")):
        items = Destinations(tmp_path / folder, "{stem}.png", suffix=".png").plan(expand_inputs([str(SAMPLES)]))
        results = list(run(items, job, executor=executor, ordered=ordered))
        indices = [r.index for r in results]
        assert sorted(indices) == list(range(7)) and (indices == list(range(7)) or not ordered)
        assert {r.status for r in results} == {"written"}
    executor.close()
    import ray

    assert ray.is_initialized()
    assert _outputs(tmp_path / "a") == _outputs(tmp_path / "b")


# -- a private instance, interrupted --------------------------------------------------------------------------

@needs_ray
@pytest.mark.slow
def test_ctrl_c_cancels_the_cluster_work_and_leaves_nothing_behind(tmp_path, tmp_path_factory):
    from benchmarks.synth import make_discs

    folder = make_discs(tmp_path / "many", count=300, size=(700, 900))
    out = tmp_path / "out"
    temp = _short_temp(tmp_path_factory, "rayi")
    env = {**os.environ, **RAY_ENV, "RAY_TMPDIR": str(temp)}
    env.pop("RAY_ADDRESS", None)  # the default: a Ray instance started for the run
    process = subprocess.Popen([sys.executable, "-m", "maskcli", "segment", str(folder), "-o", str(out),
                                "--engine", "ray", "-m", "sauvola", "--quiet"], cwd=REPO, env=env,
                               stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and (not out.exists() or len(list(out.glob("*.png"))) < 5):
            time.sleep(0.05)
        family = _family({process.pid}, str(temp)) - {process.pid}
        assert family, "the run started no Ray processes"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr.decode()
    assert "(interrupted)" in stderr.decode()
    written = list(out.iterdir())
    assert 5 <= len(written) < 300
    assert not [p for p in written if p.name.startswith(".maskcli-tmp-")]
    for path in written:  # every file left is complete
        assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).shape == (700, 900)
    left = _wait_gone(family | _family(set(), str(temp)))
    _kill(left)
    assert not left, f"Ray processes left behind: {sorted(left)}"


# -- a two-node cluster on this machine -----------------------------------------------------------------------

@needs_ray
@pytest.mark.slow
def test_a_two_node_cluster_gives_the_same_results(tmp_path, tmp_path_factory):
    from benchmarks.synth import make_discs

    temp = _short_temp(tmp_path_factory, "ray2")
    env = {**os.environ, **RAY_ENV}
    env.pop("RAY_ADDRESS", None)
    ray_cli = [sys.executable, "-m", "ray.scripts.scripts", "start", "--temp-dir", str(temp),
               "--disable-usage-stats", "--num-cpus", "1"]
    port = str(20000 + os.getpid() % 20000)
    try:
        subprocess.run([*ray_cli, "--head", "--port", port, "--include-dashboard=false"], env=env, check=True,
                       capture_output=True, timeout=120)
        # The second node declares a GPU (a logical one: the model actor goes there, and runs on its CPU).
        subprocess.run([*ray_cli, "--address", f"127.0.0.1:{port}", "--num-gpus", "1", "--resources",
                        '{"second_node": 1}'], env=env, check=True, capture_output=True, timeout=120)
        address = f"127.0.0.1:{port}"
        folder = make_discs(tmp_path / "in", count=24, size=(240, 320))
        done = run_cli("segment", str(folder), "-o", str(tmp_path / "local"), "--min-size", "20")
        assert done.returncode == 0, done.stderr.decode()
        done = _ray_cli(address, "segment", str(folder), "-o", str(tmp_path / "ray"), "--min-size", "20", "--json")
        assert done.returncode == 0, done.stderr.decode()
        assert _outputs(tmp_path / "ray") == _outputs(tmp_path / "local")
        nodes = {r["node"] for r in _records(done)}
        # The CNN (the package's U²-Net-P weights) on the node with the GPU: its actor, and the decoding beside it.
        args = ["segment", str(SAMPLES / "coins.png"), str(SAMPLES / "chelsea.png"), "-m", "cnn"]
        done = run_cli(*args, "-o", str(tmp_path / "cnn_local"))
        assert done.returncode == 0, done.stderr.decode()
        done = _ray_cli(address, *args, "-o", str(tmp_path / "cnn_ray"), "--json")
        assert done.returncode == 0, done.stderr.decode()
        assert _outputs(tmp_path / "cnn_ray") == _outputs(tmp_path / "cnn_local")
        assert len(nodes | {r["node"] for r in _records(done)}) == 2  # both nodes did work
    finally:
        # `ray stop` would stop every Ray on the machine; stop exactly this cluster's processes.
        family = _family(set(), str(temp))
        for pid in family:
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        left = _wait_gone(family, seconds=10)
        _kill(left)
    assert not _wait_gone(family, seconds=5)


# -- without Ray, and before asking for it --------------------------------------------------------------------

def test_without_ray_the_engine_exits_3_with_the_install_line(tmp_path):
    fake = tmp_path / "noray" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(fake.parent), os.environ.get("PYTHONPATH", "")])}
    done = run_cli("segment", str(SAMPLES / "coins.png"), "-o", str(tmp_path / "out"), "--engine", "ray", env=env)
    assert done.returncode == 3
    assert done.stderr.decode().strip() == (
        "maskcli: error: the Ray engine needs Ray, an optional extra: pip install 'maskcli[ray]'")
    assert not (tmp_path / "out").exists()


def test_nothing_imports_ray_unless_asked(tmp_path):
    code = (
        "import sys\n"
        "from maskcli.cli.app import main\n"
        "import maskcli, maskcli.pipeline, maskcli.engines\n"
        f"status = main(['segment', {str(SAMPLES / 'coins.png')!r}, '-o', {str(tmp_path / 'out')!r}, '-q'])\n"
        "assert status == 0, status\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    assert (tmp_path / "out" / "coins.png").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--ray-address", "127.0.0.1:1"], "--ray-address: needs --engine ray"),
        (["--engine", "spark"], "--engine: expected local or ray, not 'spark'"),
        (["--engine", "ray", "--ray-address", "127.0.0.1:1", "--jobs", "2"], "has its own CPUs; drop --jobs"),
    ],
)
def test_engine_usage_errors(args, message, tmp_path):
    done = run_cli("segment", str(SAMPLES / "coins.png"), "-o", str(tmp_path / "out"), *args)
    assert done.returncode == 2, done.stderr.decode()
    assert message in done.stderr.decode()


@needs_ray
def test_a_cluster_that_cannot_be_reached_exits_3(tmp_path):
    done = run_cli("segment", str(SAMPLES / "coins.png"), "-o", str(tmp_path / "out"), "--engine", "ray",
                   "--ray-address", "127.0.0.1:1", env=RAY_ENV)
    assert done.returncode == 3
    assert done.stderr.decode().startswith("maskcli: error: cannot reach the Ray cluster at 127.0.0.1:1: ")
