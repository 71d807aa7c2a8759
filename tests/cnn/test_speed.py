"""The CNN's fast paths: the onnxruntime engine against the torch port, images spread over free cores, the thread
policy, the device-side pre-processing (run here on CPU tensors), the measured GPU batch, and a CPU run that
never imports torch."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskcli.cnn import device, onnxrt, specs
from maskcli.errors import OptionError, SetupError
from maskcli.methods import methods

from conftest import DATA, REPO, U2NETP, needs_data, needs_u2netp

HORSES = DATA / "weizmann_horses"
needs_ort = pytest.mark.skipif(not onnxrt.available(), reason="onnxruntime (a dependency) is not installed")


def _horses(count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    names = sorted(os.listdir(HORSES / "images"))
    pairs = []
    for name in names[:: max(1, len(names) // count)][:count]:
        image = cv2.cvtColor(cv2.imread(str(HORSES / "images" / name)), cv2.COLOR_BGR2RGB)
        truth = cv2.imread(str(HORSES / "masks" / name), cv2.IMREAD_GRAYSCALE) > 127
        pairs.append((image.astype(np.float32) / 255, truth))
    return pairs


def _iou(mask: np.ndarray, truth: np.ndarray) -> float:
    pred, truth = mask >= 0.5, truth >= 0.5
    return float((pred & truth).sum() / max((pred | truth).sum(), 1))


def _fixed_cores(monkeypatch: pytest.MonkeyPatch, free: int) -> None:
    monkeypatch.setattr(device, "free_cores", lambda busy=None: free)


# --- the onnxruntime engine ---------------------------------------------------------------------------------------


@needs_ort
@needs_data
@needs_u2netp
def test_onnxruntime_engine_matches_the_torch_port(monkeypatch: pytest.MonkeyPatch) -> None:
    _fixed_cores(monkeypatch, 2)
    pairs = _horses(6)
    images = [image for image, _ in pairs]
    ort = methods.create("cnn", {"weights": str(U2NETP), "device": "cpu"})
    port = methods.create("cnn", {"weights": str(U2NETP), "device": "cpu", "engine": "torch"})
    fast, reference = ort.compute_batch(images), port.compute_batch(images)
    assert fast[0].facts["engine"] == "onnxruntime" and reference[0].facts["engine"] == "torch"
    for a, b, (image, _truth) in zip(fast, reference, pairs):
        assert a.mask.shape == image.shape[:2] and a.mask.dtype == np.float32
        assert np.abs(a.mask - b.mask).max() < 1e-3  # the same graph: float rounding only
        assert _iou(a.mask, b.mask) >= 0.999
    assert np.mean([_iou(a.mask, t) for a, (_, t) in zip(fast, pairs)]) >= 0.85


@needs_ort
def test_engine_choice_and_its_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from maskcli.cnn.loading import engine_for

    spec = specs.get("u2netp")
    cpu, gpu = device.DevicePlan("cpu", "fp32", True), device.DevicePlan("cuda:0", "fp32", True)
    assert engine_for(spec, "w.onnx", cpu) == "onnxruntime"
    assert engine_for(spec, "w.onnx", gpu) == "torch"  # the GPU path (device-side pre-processing) is torch's
    assert engine_for(spec, "w.onnx", cpu, "torch") == "torch"
    with pytest.raises(OptionError, match="engine: onnxruntime runs ONNX files; w.pth is not one"):
        engine_for(spec, "w.pth", cpu, "onnxruntime")
    with pytest.raises(OptionError, match="engine: expected one of auto, torch, onnxruntime, not 'tf'"):
        engine_for(spec, "w.onnx", cpu, "tf")
    monkeypatch.setattr(onnxrt, "available", lambda: False)
    assert engine_for(spec, "w.onnx", cpu) == "torch"
    with pytest.raises(SetupError, match=r"dependency of maskcli: pip install onnxruntime"):
        engine_for(spec, "w.onnx", cpu, "onnxruntime")


@needs_ort
def test_onnx_file_that_is_not_a_model_is_a_weights_error(tmp_path: Path) -> None:
    from maskcli.errors import WeightsUnavailable

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(WeightsUnavailable, match="onnxruntime cannot load .*bad.onnx for model 'u2netp'"):
        onnxrt.OnnxModel(specs.get("u2netp"), bad)


@needs_ort
@needs_u2netp
def test_one_image_on_the_cpu_never_imports_torch(tmp_path: Path) -> None:
    image = tmp_path / "in.png"
    cv2.imwrite(str(image), (np.random.default_rng(0).random((60, 80, 3)) * 255).astype(np.uint8))
    code = (
        "import sys\nfrom maskcli.cli.app import main\ncode = 0\n"
        f"try:\n    main(['segment', {str(image)!r}, '-o', {str(tmp_path / 'out')!r}, '--model', 'u2netp', "
        f"'--weights', {str(U2NETP)!r}, '--device', 'auto', '--json'])\nexcept SystemExit as e:\n    code = e.code\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', code, file=sys.stderr)\n"
    )
    # No GPU visible (as on a machine without one), so `auto` means the CPU.
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120, cwd=REPO,
                          env={**os.environ, "MASKCLI_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""})
    assert done.stderr.decode().strip().endswith("NO-TORCH 0"), done.stderr.decode()
    assert b'"engine": "onnxruntime"' in done.stdout
    assert (tmp_path / "out" / "in.png").is_file()


# --- images spread over the usable cores --------------------------------------------------------------------------


@needs_data
@needs_u2netp
@pytest.mark.parametrize("engine", ["torch", pytest.param("onnxruntime", marks=needs_ort)])
def test_images_in_parallel_equal_one_at_a_time(engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from maskcli.cnn.infer import ModelCache

    images = [image for image, _ in _horses(3)]
    seg = ModelCache().segmenter(specs.get("u2netp"), U2NETP, device.resolve("cpu"), (), engine)
    threads = []
    one = seg._one

    def noting_thread(*args):
        threads.append(threading.current_thread().name)
        return one(*args)

    monkeypatch.setattr(seg, "_one", noting_thread)
    monkeypatch.setattr(device, "usable_cores", lambda: 1)
    serial = seg.predict(images)
    assert set(threads) == {threading.current_thread().name}
    threads.clear()
    monkeypatch.setattr(device, "usable_cores", lambda: 2)
    parallel = seg.predict(images)
    assert len(set(threads)) == 2 and all(name.startswith("maskcli-model") for name in threads)
    for a, b in zip(serial, parallel):
        np.testing.assert_allclose(a, b, atol=1e-5)
    # Parallelism is one image per core: torch keeps to one thread (OpenCV's are the runner's, set once: below).
    assert engine != "torch" or torch.get_num_threads() == 1


@pytest.mark.parametrize("batched", [True, False])
def test_the_local_executor_sets_a_models_library_threads_once(batched: bool) -> None:
    from maskcli.engines.local import InProcess

    class Job:  # the executor only asks a job that gets no items whether it is batched
        batch_size = 2

    Job.batched = batched  # type: ignore[attr-defined]
    before = cv2.getNumThreads()
    cv2.setNumThreads(2)
    try:
        assert list(InProcess(threads=2).execute(Job(), [], ordered=True)) == []
        # A model's images run side by side, one thread each; a per-item job's OpenCV is left as it is.
        assert cv2.getNumThreads() == (1 if batched else 2)
    finally:
        cv2.setNumThreads(before)


def test_busy_cores_come_from_the_runnable_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loadavg = tmp_path / "loadavg"
    loadavg.write_text("3.10 2.00 1.50 4/612 12345\n")
    monkeypatch.setattr(device, "_own_running_threads", lambda: 1)
    assert device.busy_elsewhere(samples=2, interval=0, loadavg=str(loadavg)) == 3
    loadavg.write_text("garbage")
    assert device.busy_elsewhere(samples=1, loadavg=str(loadavg)) == 0
    monkeypatch.setattr(device, "usable_cores", lambda: 4)
    assert [device.free_cores(busy) for busy in (0, 1, 3, 9)] == [4, 3, 1, 1]
    assert device._own_running_threads() >= 1


def test_auto_batch_on_the_cpu_is_the_usable_cores() -> None:
    method = methods.create("cnn", {"model": "lraspp-mobilenet-v3", "weights": __file__, "device": "cpu"})
    assert method.batch_size == device.usable_cores()


# --- the device path, exercised on CPU tensors ------------------------------------------------------------------


@needs_data
@needs_u2netp
def test_device_side_preprocessing_agrees_with_the_host_path() -> None:
    from maskcli.cnn.infer import Segmenter
    from maskcli.cnn.loading import build_model

    spec = specs.get("u2netp")
    seg = Segmenter(spec, build_model(spec, U2NETP), device.resolve("cpu"))
    pairs = _horses(4)
    images = [image for image, _ in pairs]
    host = seg.predict(images)
    on_device = seg._predict_on_device(images)  # the GPU code path, on CPU tensors
    for a, b, (image, _truth) in zip(on_device, host, pairs):
        assert a.shape == image.shape[:2] and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
        assert np.abs(a - b).max() < 1e-3  # the same resize as OpenCV's, as matrix products
        assert _iou(a, b) >= 0.999
    # The decoded samples (what `maskcli segment` hands the model) give the float pixels' masks, on both paths.
    samples = [np.round(image * 255).astype(np.uint8) for image in images]
    for a, b in zip(seg.predict(samples), host):
        assert np.abs(a - b).max() < 1e-5
    for a, b in zip(seg._predict_on_device(samples), on_device):
        assert np.abs(a - b).max() < 1e-4
    deep = [image.astype(np.uint16) * 257 for image in samples]  # 16-bit samples of the same picture
    for a, b in zip(seg._predict_on_device(deep), on_device):
        assert np.abs(a - b).max() < 1e-4


def test_device_path_with_a_semantic_model_and_mixed_shapes() -> None:
    import torch

    from maskcli.cnn.infer import Segmenter

    class Stand(torch.nn.Module):  # torchvision's output: a dict holding N×C×h×w logits
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 21, 1)

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"out": self.conv(x)}

    torch.manual_seed(0)
    seg = Segmenter(specs.get("lraspp-mobilenet-v3"), Stand(), device.resolve("cpu"), classes=[13])
    rng = np.random.default_rng(0)
    images = [rng.random((60, 80, 3), dtype=np.float32), rng.random((50, 40), dtype=np.float32),
              rng.random((60, 80, 3), dtype=np.float32)]
    masks = seg._predict_on_device(images)
    assert [m.shape for m in masks] == [(60, 80), (50, 40), (60, 80)]
    alone = seg._predict_on_device(images[2:])[0]
    np.testing.assert_allclose(masks[2], alone, atol=1e-5)  # a mask never depends on its batch neighbours


@pytest.mark.parametrize("shape, target, kind", [((232, 315), (320, 320), "lanczos"), ((9, 7), (320, 320), "lanczos"),
                                                 ((300, 400), (520, 693), "area"), ((1040, 1387), (520, 693), "area")])
def test_resample_matrices_are_opencvs_resize(shape: tuple[int, int], target: tuple[int, int], kind: str) -> None:
    from maskcli.cnn.preprocess import resample_matrix

    image = np.random.default_rng(0).random((*shape, 3), dtype=np.float32)
    flag = cv2.INTER_LANCZOS4 if kind == "lanczos" else cv2.INTER_AREA
    expected = cv2.resize(image, target[::-1], interpolation=flag)
    rows, columns = resample_matrix(shape[0], target[0], kind), resample_matrix(shape[1], target[1], kind)
    ours = np.einsum("ij,jkc,lk->ilc", rows, image, columns, optimize=True)
    np.testing.assert_allclose(ours, expected, atol=2e-4)


def test_batch_size_choice() -> None:
    from maskcli.cnn.infer import choose_batch_size

    assert choose_batch_size({}) == 1
    assert choose_batch_size({1: 50.0, 2: 99.0, 4: 100.0}) == 2
    assert choose_batch_size({1: 50.0, 2: 60.0, 4: 100.0}, tolerance=0.0) == 4


# --- GPU ------------------------------------------------------------------------------------------------------


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


cuda = pytest.mark.skipif(not _cuda(), reason="needs CUDA")


@cuda
@pytest.mark.gpu
@needs_data
@needs_u2netp
def test_gpu_path_agrees_with_the_cpu_and_measures_its_batch() -> None:
    cpu = methods.create("cnn", {"weights": str(U2NETP), "device": "cpu"})
    gpu = methods.create("cnn", {"weights": str(U2NETP), "device": "cuda"})
    assert 1 <= gpu.batch_size <= 64
    pairs = _horses(8)
    images = [image for image, _ in pairs]
    for a, b in zip(gpu.compute_batch(images), cpu.compute_batch(images)):
        assert _iou(a.mask, b.mask) >= 0.97
