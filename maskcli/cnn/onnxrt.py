"""The onnxruntime engine: ONNX-format weights (U²-Net-P) run as they are published, without torch.

A dependency of maskcli: the CPU path of a model whose weights are an ONNX file, and of a fine-tuned U²-Net
(exported once, :mod:`.prepare`), runs here by default: the graph is the same file the torch port loads its
weights from, so the masks agree (IoU ≥ 0.999 on the horses, ``tests/cnn/test_speed.py``), a run never imports
torch (2.5 s of a one-image run), and it costs less per image than torch (below). Against rembg on the same
weights: ``benchmarks/results/rembg.md``.

The interface the segmenter uses is small: :meth:`OnnxModel.run` takes a normalised batch N×3×h×w (float32)
and returns the model-resolution foreground probability N×h×w, post-processed as its spec says.

Threads: the session has one intra-op thread, so it runs on the thread that calls it, and several threads
share it, one image each (one per usable core). Measured on 2 shared cores
(U²-Net-P, 320×320, CPU seconds per image, interleaved): onnxruntime 0.46 on one thread, torch with
channels_last 0.56, a frozen TorchScript graph 0.71; and independent images scale over cores where one image's
many small layers split over threads do not. A lone image runs on one thread too: a second, wider session costs
more to create (0.1 s of CPU) than it saves. Spinning is off: a waiting thread sleeps instead of burning a core
another process (or our own decoder) needs.

>>> available() in (True, False)
True
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np

from maskcli.cnn.specs import ModelSpec
from maskcli.errors import DeviceUnavailable, SetupError, WeightsUnavailable

#: What to install when the engine is asked for and missing.
INSTALL_HINT = "it is a dependency of maskcli: pip install onnxruntime, or reinstall maskcli"


def available() -> bool:
    """Whether onnxruntime is installed (checked without importing it)."""
    return importlib.util.find_spec("onnxruntime") is not None


def session(path: Union[str, Path], name: str, device: str = "cpu", *, cpu_fallback: bool = False) -> Any:
    """An onnxruntime session for an ONNX file, with the one thread policy (see the module): one intra-op thread,
    sequential, no spinning.

    Parameters
    ----------
    path : str or Path
        The ONNX file.
    name : str
        The model's name, for messages.
    device : str
        ``"cpu"`` or ``"cuda:N"`` (onnxruntime's CUDA provider, from ``onnxruntime-gpu``).
    cpu_fallback : bool
        On a CUDA device without the CUDA provider: run on the CPU instead of raising.

    Raises
    ------
    SetupError
        onnxruntime is not installed.
    DeviceUnavailable
        A CUDA device was asked for, this onnxruntime has no CUDA provider and ``cpu_fallback`` is false.
    WeightsUnavailable
        The file is not an ONNX model onnxruntime can load.
    """
    if not available():
        raise SetupError(f"model {name!r} needs onnxruntime, which is not installed: {INSTALL_HINT}")
    import onnxruntime

    providers: list[Any] = ["CPUExecutionProvider"]
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": int(device.partition(":")[2] or 0)}))
        elif not cpu_fallback:
            raise DeviceUnavailable(f"device {device}: this onnxruntime {onnxruntime.__version__} has no CUDA "
                                    "provider (install onnxruntime-gpu, or use the torch engine)")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # warnings about unused initialisers are not the user's concern
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # A memory pattern pre-plans one block per concurrent run, kept for the session's life: with two images
    # at once U²-Net-P peaked at 1.38 GiB with it and 0.70 GiB without, at the same CPU time per image.
    options.enable_mem_pattern = False
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=providers)
    except Exception as error:  # onnxruntime raises its own Fail/InvalidGraph/NoSuchFile kinds
        raise WeightsUnavailable(f"onnxruntime cannot load {path} for model {name!r}: "
                                 f"{type(error).__name__}: {error}") from None


def run_graph(session: Any, batch: np.ndarray) -> np.ndarray:
    """The session's first output for a batch N×C×h×w, on the calling thread (several threads may call at once).
    Many exports (U²-Net-P's among them) fix the batch at 1: a batch runs image by image."""
    name = session.get_inputs()[0].name
    batch = np.ascontiguousarray(batch, dtype=np.float32)
    return np.concatenate([session.run(None, {name: batch[i:i + 1]})[0] for i in range(batch.shape[0])])


def salient_map(fused: np.ndarray) -> np.ndarray:
    """U²-Net's reference post-processing: the fused map (N×h×w) stretched to [0, 1] per image.

    >>> salient_map(np.array([[[1.0, 3.0]]], np.float32)).tolist()
    [[[0.0, 1.0]]]
    """
    low = fused.min(axis=(1, 2), keepdims=True)
    high = fused.max(axis=(1, 2), keepdims=True)
    return ((fused - low) / np.maximum(high - low, 1e-8)).astype(np.float32, copy=False)


def class_probability(logits: np.ndarray, classes: Sequence[int], labels: bool = False) -> np.ndarray:
    """Semantic models: softmax over the classes (N×C×h×w), summed over ``classes``, in [0, 1]; with ``labels``,
    N×(1+k)×h×w: the rest (background and classes not chosen), then each chosen class.

    >>> class_probability(np.zeros((1, 4, 1, 1), np.float32), [1, 2]).tolist()
    [[[0.5]]]
    >>> class_probability(np.zeros((1, 4, 1, 1), np.float32), [1, 2], labels=True).ravel().tolist()
    [0.5, 0.25, 0.25]
    """
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    chosen = shifted[:, list(classes)] / shifted.sum(axis=1, keepdims=True)
    if labels:
        rest = np.clip(1.0 - chosen.sum(axis=1, keepdims=True), 0.0, 1.0)
        return np.concatenate([rest, chosen], axis=1).astype(np.float32, copy=False)
    return np.clip(chosen.sum(axis=1), 0.0, 1.0).astype(np.float32, copy=False)


class OnnxModel:
    """One ONNX model file under onnxruntime.

    Parameters
    ----------
    spec : ModelSpec
        The model (its ``kind`` says how the first output is post-processed).
    path : str or Path
        The ONNX file.
    device : str
        ``"cpu"`` or ``"cuda:N"`` (the latter needs onnxruntime's CUDA provider, ``onnxruntime-gpu``).
    classes : sequence of int
        Semantic models: the output channels summed into the foreground.

    Raises
    ------
    SetupError
        onnxruntime is not installed.
    DeviceUnavailable
        A CUDA device was asked for and this onnxruntime has no CUDA provider.
    WeightsUnavailable
        The file is not an ONNX model onnxruntime can load.
    """

    def __init__(self, spec: ModelSpec, path: Union[str, Path], device: str = "cpu",
                 classes: Sequence[int] = ()) -> None:
        self.spec = spec
        self.path = str(path)
        self.classes = list(classes)
        self.session = session(self.path, spec.name, device)

    def run(self, batch: np.ndarray, labels: bool = False) -> np.ndarray:
        """Foreground probability N×h×w (float32) for a normalised batch N×3×h×w, on the calling thread (several
        threads may call at once); ``labels``: see :func:`class_probability`."""
        out = run_graph(self.session, batch)
        if self.spec.kind != "salient":
            return class_probability(out, self.classes, labels)
        fused = out[:, 0].astype(np.float32)
        # Exports that end in logits (BiRefNet, ISNet's specs say so) need the sigmoid U²-Net has inside.
        return salient_map(1.0 / (1.0 + np.exp(-fused)) if self.spec.logits else fused)


__all__ = ["INSTALL_HINT", "OnnxModel", "available", "class_probability", "run_graph", "salient_map", "session"]
