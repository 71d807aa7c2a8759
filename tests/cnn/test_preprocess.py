"""The model's pre-processing as its spec carries it, and the model cache its holder owns.

The reference functions below are the resizes inference and fine-tuning each wrote for themselves before the
spec carried one: the spec's transforms must give their bytes exactly, on real photographs."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from maskcli.cnn import specs
from maskcli.cnn.device import DevicePlan
from maskcli.cnn.infer import ModelCache, Segmenter
from maskcli.imageops import to_rgb, to_unit_float

from conftest import SAMPLES, U2NETP, needs_u2netp

MODELS = ("u2netp", "isnet-general-use", "lraspp-mobilenet-v3")  # Lanczos square + max scaling; area, aspect kept
PICTURES = ("astronaut.png", "camera.png", "coffee.png")  # colour and grey, portrait and landscape crops below


def _reference_shape(spec: specs.ModelSpec, height: int, width: int) -> tuple[int, int]:
    if spec.kind == "salient":
        return spec.input_size, spec.input_size
    scale = spec.input_size / min(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def _reference_inference(spec: specs.ModelSpec, image: np.ndarray) -> np.ndarray:
    rgb = to_rgb(to_unit_float(image) if image.dtype.kind == "u" else np.asarray(image, np.float32))
    height, width = _reference_shape(spec, *rgb.shape[:2])
    flag = cv2.INTER_LANCZOS4 if spec.interpolation == "lanczos" else cv2.INTER_AREA
    resized = cv2.resize(rgb, (width, height), interpolation=flag)
    if spec.scale_by_max:
        resized = resized / max(float(resized.max()), 1e-6)
    normalised = (resized - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    return np.ascontiguousarray(normalised.transpose(2, 0, 1), dtype=np.float32)


def _reference_training(spec: specs.ModelSpec, image: np.ndarray, size: int) -> np.ndarray:
    rgb = np.ascontiguousarray(to_rgb(image))
    flag = cv2.INTER_LANCZOS4 if spec.interpolation == "lanczos" else cv2.INTER_AREA
    height, width = _reference_shape(dataclasses.replace(spec, input_size=size), *rgb.shape[:2])
    resized = np.clip(cv2.resize(rgb, (width, height), interpolation=flag), 0.0, 1.0)
    if spec.scale_by_max:
        resized = resized / max(float(resized.max()), 1e-6)
    return resized


def _pictures() -> list[np.ndarray]:
    found = []
    for name in PICTURES:
        samples = cv2.imread(str(SAMPLES / name), cv2.IMREAD_UNCHANGED)
        assert samples is not None, name
        if samples.ndim == 3:
            samples = cv2.cvtColor(samples, cv2.COLOR_BGR2RGB)
        found += [samples, samples[:, : samples.shape[1] // 3]]  # and a tall crop: the shorter side changes
    return found


@pytest.mark.parametrize("name", MODELS)
def test_the_specs_transforms_give_the_inference_input_of_before_exactly(name: str) -> None:
    spec = specs.get(name)
    transforms = spec.transforms()
    for samples in _pictures():
        for image in (samples, to_unit_float(samples)):  # decoded samples and float pixels alike
            expected = _reference_inference(spec, image)
            got = transforms(image)
            assert got.dtype == np.float32 and got.flags.c_contiguous
            assert got.shape == expected.shape and np.array_equal(got, expected)


@pytest.mark.parametrize("name", MODELS)
def test_the_specs_transforms_give_the_training_input_of_before_exactly(name: str) -> None:
    from maskcli.cnn.training import _resize

    spec = specs.get(name)
    for samples in _pictures():
        image = to_unit_float(samples)
        for size in (spec.input_size, 96):
            expected = _reference_training(spec, image, size)
            got = _resize(spec, image, size)
            assert got.shape == expected.shape and np.array_equal(got, expected)


def test_clipping_only_changes_the_lanczos_overshoot() -> None:
    spec = specs.get("u2netp")
    image = np.zeros((50, 50), np.float32)
    image[20:30, 20:30] = 1.0  # hard edges: Lanczos rings past 0 and 1
    loose, clipped = spec.transforms().resize(image), spec.transforms().resize(image, clip=True)
    assert loose.max() > 1.0 or loose.min() < 0.0
    assert clipped.min() >= 0.0 and clipped.max() <= 1.0


def test_the_device_transforms_match_the_host_on_cpu_tensors() -> None:
    torch = pytest.importorskip("torch")
    for name in MODELS:
        transforms = specs.get(name).transforms()
        on_device = transforms.to("cpu")
        for samples in _pictures()[:2]:
            host = transforms(samples)
            tensor = on_device(torch.from_numpy(np.ascontiguousarray(samples)))
            assert tuple(tensor.shape) == host.shape
            assert float((tensor.numpy() - host).__abs__().max()) < 2e-3


@needs_u2netp
def test_two_caches_hold_separate_models_and_each_loads_once() -> None:
    spec, cpu = specs.get("u2netp"), DevicePlan("cpu", "fp32", True)
    first, second = ModelCache(), ModelCache()
    a = first.segmenter(spec, U2NETP, cpu)
    assert first.segmenter(spec, U2NETP, cpu) is a  # loaded once per cache
    b = second.segmenter(spec, U2NETP, cpu)
    assert b is not a and b.model is not a.model
    assert len(first) == len(second) == 1
    image = to_unit_float(cv2.cvtColor(cv2.imread(str(SAMPLES / "chelsea.png")), cv2.COLOR_BGR2RGB))
    (mask_a,), (mask_b,) = a.predict([image]), b.predict([image])
    assert mask_a.shape == image.shape[:2] and np.array_equal(mask_a, mask_b)  # separate, the same weights
    first.clear()
    assert len(first) == 0 and len(second) == 1
    assert first.segmenter(spec, U2NETP, cpu) is not a  # loaded again after clearing


@needs_u2netp
def test_a_cnn_method_holds_its_own_models_and_a_copy_loads_its_own() -> None:
    import pickle

    from maskcli.methods import methods

    method = methods.create("cnn", {"device": "cpu", "weights": str(U2NETP)})
    other = methods.create("cnn", {"device": "cpu", "weights": str(U2NETP)})
    image = np.zeros((40, 30, 3), np.float32)
    method.compute(image)
    assert len(method._models) == 1 and len(other._models) == 0  # nothing shared through the process
    copy = pickle.loads(pickle.dumps(method))
    assert len(copy._models) == 0 and copy._models is not method._models
    assert np.array_equal(copy.compute(image).mask, method.compute(image).mask)


def test_a_segmenter_leaves_the_process_threads_alone() -> None:
    torch = pytest.importorskip("torch")
    before = cv2.getNumThreads(), torch.get_num_threads()
    cv2.setNumThreads(2)
    try:
        Segmenter(specs.get("u2netp"), torch.nn.Conv2d(3, 1, 1), DevicePlan("cpu", "fp32", True))
        assert cv2.getNumThreads() == 2  # the runner sets them, once (maskcli.cnn.device.limit_threads)
    finally:
        cv2.setNumThreads(before[0])
        torch.set_num_threads(before[1])
