"""The default install's CPU path: onnxruntime is a core dependency, `segment --method cnn` never imports torch, the
bundled graph is prepared once (equal masks), and a fine-tuned checkpoint runs on onnxruntime with the torch
path's masks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskcli.cnn import device, onnxrt, prepare, specs, weights
from maskcli.methods import methods

from conftest import DATA, REPO, SAMPLES, U2NETP, needs_data, needs_u2netp

pytestmark = [needs_u2netp, pytest.mark.skipif(not onnxrt.available(), reason="onnxruntime is not installed")]
HORSES = DATA / "weizmann_horses"


def _horses(count: int, offset: int = 0) -> list[tuple[str, np.ndarray, np.ndarray]]:
    names = sorted(os.listdir(HORSES / "images"))[offset::17][:count]
    out = []
    for name in names:
        image = cv2.cvtColor(cv2.imread(str(HORSES / "images" / name)), cv2.COLOR_BGR2RGB)
        truth = cv2.imread(str(HORSES / "masks" / name), cv2.IMREAD_GRAYSCALE)
        out.append((name, image, truth))
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a >= 0.5, b >= 0.5
    return float((a & b).sum() / max((a | b).sum(), 1))


def _segment_without_torch(args: list[str], tmp_path: Path) -> tuple[str, list[dict]]:
    """Run ``maskcli ARGS --json`` in a fresh process with no GPU visible; whether it imported torch, and its
    records."""
    code = (
        "import sys\nfrom maskcli.cli.app import main\ncode = 0\n"
        f"try:\n    main({args + ['--json']!r})\nexcept SystemExit as e:\n    code = e.code\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', code, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=300, cwd=REPO,
                          env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    status = done.stderr.decode().strip().splitlines()[-1]
    return status, [json.loads(line) for line in done.stdout.decode().splitlines() if line.startswith("{")]


def test_onnxruntime_is_a_core_dependency_and_no_extra() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    core = [requirement.split(">")[0].split("=")[0].strip() for requirement in project["dependencies"]]
    assert "onnxruntime" in core and "torch" in core  # torch: the GPU, training and torchvision models
    assert "onnx" not in project["optional-dependencies"]


def test_segment_cnn_on_the_cpu_never_imports_torch(tmp_path: Path) -> None:
    # The README's first command: the bundled model, nothing named; twice, so that the prepared graph is made by
    # the first run and read by the second, neither importing torch.
    for attempt in range(2):
        status, records = _segment_without_torch(
            ["segment", str(SAMPLES / "coffee.png"), str(SAMPLES / "camera.png"), "-o", str(tmp_path / "out"),
             "--method", "cnn", "--overwrite"], tmp_path)
        assert status == "NO-TORCH 0", (attempt, status)
        assert [r["engine"] for r in records] == ["onnxruntime"] * 2 and {r["status"] for r in records} == {"written"}
    assert len(list(prepare.prepared_dir().glob("*.onnx"))) == 1


@needs_data
def test_the_prepared_bundled_graph_gives_the_published_graphs_masks() -> None:
    import onnx

    spec = specs.get("u2netp")
    path, same = prepare.runnable(spec, U2NETP, device.resolve("cpu"))
    assert same == spec and path.parent == prepare.prepared_dir() and path.name == weights.digest(U2NETP) + ".onnx"
    modes = {a.s for n in onnx.load(str(path)).graph.node if n.op_type == "Resize" for a in n.attribute
             if a.name == "coordinate_transformation_mode"}
    assert modes == {b"half_pixel"}
    assert prepare.runnable(spec, U2NETP, device.resolve("cpu"))[0] == path  # cached: made once
    published, prepared = onnxrt.OnnxModel(spec, U2NETP), onnxrt.OnnxModel(spec, path)
    from maskcli.cnn.infer import Segmenter

    for _, image, _ in _horses(4):
        a = Segmenter(spec, published).predict([image])[0]
        b = Segmenter(spec, prepared).predict([image])[0]
        assert np.abs(a - b).max() < 1e-4 and _iou(a, b) >= 0.999
    # The torch engine and the GPU keep the published file.
    assert prepare.runnable(spec, U2NETP, device.resolve("cpu"), "torch")[0] == U2NETP
    assert prepare.runnable(spec, U2NETP, device.DevicePlan("cuda:0", "fp32", True))[0] == U2NETP


def test_an_unwritable_cache_runs_the_published_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("MASKCLI_HOME", str(blocker))
    path, _ = prepare.runnable(specs.get("u2netp"), U2NETP, device.resolve("cpu"))
    assert path == U2NETP


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint of one tiny fine-tuning epoch on eight horses (160² inputs, 64² crops)."""
    pytest.importorskip("torch")
    if not HORSES.is_dir():
        pytest.skip("../shared/data is not beside this clone")
    from maskcli.train import TrainSettings, fine_tune

    root = tmp_path_factory.mktemp("tune")
    for folder in ("images", "masks"):
        (root / folder).mkdir()
    for name, image, truth in _horses(8, offset=5):
        cv2.imwrite(str(root / "images" / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(root / "masks" / name), truth)
    settings = TrainSettings(size=160, crop=64, batch_size=4, epochs=1, patience=1, weights=str(U2NETP), device="cpu")
    return fine_tune(root / "images", root / "masks", root / "model.pt", settings).checkpoint


@needs_data
@pytest.mark.slow
@pytest.mark.timeout(1200)  # a tiny run, but a busy machine can stretch it
def test_a_fine_tuned_checkpoint_runs_on_onnxruntime_with_the_torch_paths_masks(tuned: Path,
                                                                                tmp_path: Path) -> None:
    fast = methods.create("cnn", {"weights": str(tuned), "device": "cpu"})
    port = methods.create("cnn", {"weights": str(tuned), "device": "cpu", "engine": "torch"})
    assert fast._spec.input_size == 160 == port._spec.input_size  # the training size, from the checkpoint
    images = [image for _, image, _ in _horses(8)]
    a, b = fast.compute_batch(images), port.compute_batch(images)
    assert a[0].facts["engine"] == "onnxruntime" and b[0].facts["engine"] == "torch"
    assert min(_iou(x.mask, y.mask) for x, y in zip(a, b)) >= 0.995
    # Exported once, keyed by the checkpoint's digest: a later process runs it without importing torch.
    assert (prepare.prepared_dir() / f"{weights.digest(tuned)}.onnx").is_file()
    status, records = _segment_without_torch(
        ["segment", str(SAMPLES / "chelsea.png"), "-o", str(tmp_path / "out"), "--weights", str(tuned)], tmp_path)
    assert status == "NO-TORCH 0" and records[0]["engine"] == "onnxruntime"


@needs_data
@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_a_fine_tuned_checkpoint_of_another_architecture_is_still_refused(tuned: Path) -> None:
    from maskcli.errors import WeightsUnavailable

    for _attempt in range(2):  # before and after the export is cached
        with pytest.raises(WeightsUnavailable, match="fine-tuned from u2netp"):
            prepare.runnable(specs.get("u2net"), tuned, device.resolve("cpu"))
        prepare.runnable(specs.get("u2netp"), tuned, device.resolve("cpu"))
