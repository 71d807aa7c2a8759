"""Running a segmentation CNN over batches of images: pre-processing, inference, soft masks at full size.

A :class:`Segmenter` holds one loaded model: a torch module, or an :class:`~maskcli.cnn.onnxrt.OnnxModel` for
ONNX-format weights under onnxruntime (:func:`engine_for` picks). :func:`segmenter` keeps one per (model, weights,
device, precision, engine) in this process, so a batch of thousands of images loads the weights once. This module
imports torch only where a torch model runs, so the onnxruntime path never loads it.

**On the CPU** each image goes its own way through the model, as many at once as there are usable cores, each on
one thread; with torch, a lone image spreads over the cores free now instead
(:func:`maskcli.cnn.device.free_cores`, asked again every few seconds; onnxruntime keeps to one thread, see
:mod:`.onnxrt`). Per image:

1. resize to the model's input with OpenCV (U²-Net: 320×320 with Lanczos; torchvision models: shorter side 520,
   aspect kept, ``cv2.INTER_AREA``) and normalise as the spec says;
2. run the model (torch: ``inference_mode``, fp32, ``channels_last``; or onnxruntime);
3. post-process **at model resolution** into one probability channel (U²-Net: the fused map d0, min-max
   normalised; semantic models: softmax over the classes, summed over the chosen ones), and only then resize that
   one channel to the image's full size.

**On a GPU** (torch) the whole batch goes at once and the device does the work: each image's decoded samples
(uint8 as read: a quarter of the bytes of float pixels, and no float copy made on the host) are copied from pinned
memory without blocking, turned into floats, resized and normalised on the device (:func:`prepare_on_device`:
OpenCV's Lanczos or area resize as two matrix products, so the GPU sees the CPU's inputs), run in fp32 with
``channels_last`` (the precision policy in :mod:`.device`), post-processed and resized back to full size there;
only the final masks come back. The host thread that feeds the GPU does little per image, so the CPU cores stay
free for decoding and encoding. Images of equal input shape share a forward pass; a mask never depends on its
batch neighbours. The batch size is measured on the device (:meth:`Segmenter.probe_batch_size`).

>>> import numpy as np, torch
>>> from maskcli.cnn import specs
>>> stand_in = torch.nn.Conv2d(3, 1, 1)  # any module with U²-Net's output shape; see build_model for the real one
>>> seg = Segmenter(specs.get("u2netp"), stand_in)
>>> [m.shape for m in seg.predict([np.zeros((30, 40, 3), np.float32), np.ones((20, 10), np.float32)])]
[(30, 40), (20, 10)]
"""

from __future__ import annotations

import concurrent.futures as futures
import functools
import math
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Optional, Union

import cv2
import numpy as np

from maskcli.cnn import device as devices
from maskcli.cnn import onnxrt
from maskcli.cnn.device import DevicePlan
from maskcli.cnn.specs import ModelSpec
from maskcli.errors import OptionError, SetupError, WeightsUnavailable
from maskcli.imageops import to_rgb, to_unit_float

if TYPE_CHECKING:
    import torch
    from torch import nn

Engine = Literal["auto", "torch", "onnxruntime"]
ENGINES: tuple[str, ...] = ("auto", "torch", "onnxruntime")

#: How often (seconds) the CPU path asks again how many cores are free.
REPROBE_SECONDS = 2.0


def engine_for(spec: ModelSpec, path: Union[str, Path], plan: DevicePlan, engine: str = "auto") -> str:
    """The engine that runs this model: ``auto`` takes onnxruntime for an ONNX weights file on the CPU when it
    is installed (no torch to import, and faster: ``benchmarks/results/rembg.md``), torch otherwise.

    Raises
    ------
    OptionError
        Not an engine name, or onnxruntime asked for weights that are not an ONNX file.
    SetupError
        onnxruntime asked for and not installed.

    >>> from maskcli.cnn import specs
    >>> engine_for(specs.get("lraspp-mobilenet-v3"), "x.pth", DevicePlan("cpu", "fp32", True))
    'torch'
    """
    if engine not in ENGINES:
        raise OptionError("engine", f"expected one of {', '.join(ENGINES)}, not {engine!r}")
    is_onnx = spec.weights_format == "onnx" and Path(path).suffix.lower() == ".onnx"
    if engine == "onnxruntime" and not is_onnx:
        raise OptionError("engine", f"onnxruntime runs ONNX files; {Path(path).name} is not one (use torch)")
    if engine == "onnxruntime" and not onnxrt.available():
        raise SetupError(f"engine onnxruntime: onnxruntime is not installed ({onnxrt.INSTALL_HINT})")
    if engine == "auto":
        return "onnxruntime" if is_onnx and not plan.is_cuda and onnxrt.available() else "torch"
    return engine


def build_model(spec: ModelSpec, path: Union[str, Path]) -> "nn.Module":
    """The spec's architecture with the weights of ``path`` loaded, on the CPU, in eval mode.

    Raises
    ------
    WeightsUnavailable
        The file cannot be read, or holds another architecture (missing, unexpected or mis-shaped tensors).
    """
    if spec.builder == "onnx-graph":
        from maskcli.cnn.models.onnx_graph import OnnxGraph

        return OnnxGraph(path, spec.name).eval()
    import torch

    from maskcli.cnn.weights import load_state, read_checkpoint

    checkpoint = read_checkpoint(path)
    if checkpoint is not None:  # fine-tuned by `maskcli train`
        from maskcli.cnn.training import model_from_checkpoint

        return model_from_checkpoint(spec, checkpoint, path).eval()
    from maskcli.cnn.models import new_module

    model = new_module(spec)
    if spec.weights_format == "onnx":
        from maskcli.cnn.models import u2net

        u2net.load_onnx_weights(model, path)
        return model.eval()
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception:  # pickle, zip and OS errors alike mean "not a torch state dict"; torch's own text is
        # many lines about weights_only that say nothing about the cause
        hint = " (an ONNX file, the format of the u2net models)" if str(path).lower().endswith(".onnx") else ""
        raise WeightsUnavailable(f"{path} is not a weights file for model {spec.name!r}: it cannot be read as a "
                                 f"torch state dict{hint}") from None
    if isinstance(state, dict) and isinstance(state.get("model", state.get("state_dict")), dict):
        state = state.get("model", state.get("state_dict"))  # training checkpoints wrap the weights
    if not isinstance(state, dict):
        raise WeightsUnavailable(f"{path} is not a state dict (it holds a {type(state).__name__})")
    # The auxiliary head only helps training; the published files carry it, random or custom ones may not.
    state = {k: v for k, v in state.items() if not k.startswith("aux_classifier.")}
    return load_state(model, state, path, f"{spec.name} ({spec.builder}, {len(spec.categories)} classes)").eval()


def input_shape(spec: ModelSpec, height: int, width: int) -> tuple[int, int]:
    """(height, width) an image of that size is resized to: ``spec.input_size`` square (U²-Net), or that on the
    shorter side (torchvision's semantic models)."""
    if spec.kind == "salient":
        return spec.input_size, spec.input_size
    scale = spec.input_size / min(height, width)  # torchvision's resize_size: the shorter side
    return max(1, round(height * scale)), max(1, round(width * scale))


def _unit_floats(image: np.ndarray) -> np.ndarray:
    """Pixels as float32 in [0, 1]: integer samples scaled as decoding does (:func:`to_unit_float`), floats kept."""
    return to_unit_float(image) if image.dtype.kind == "u" else np.asarray(image, np.float32)


@functools.lru_cache(maxsize=64)
def resample_matrix(source: int, target: int, interpolation: str) -> np.ndarray:
    """The target×source matrix that resizes one axis exactly as OpenCV does on the host: ``lanczos`` as
    ``cv2.INTER_LANCZOS4`` (8 taps, edges replicated), ``area`` as ``cv2.INTER_AREA`` (pixel-area averages when
    shrinking, OpenCV's own linear variant when enlarging). Resizing is then two matrix products, which a GPU does
    in microseconds, with the host's result to float rounding (``tests/test_cnn_speed.py``).

    >>> resample_matrix(4, 2, "area").tolist()
    [[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5]]
    """
    inverse = target / source  # OpenCV's own arithmetic, so that ties round the same way
    scale = 1.0 / inverse
    matrix = np.zeros((target, source), np.float64)
    for row in range(target):
        if interpolation == "lanczos":
            position = (row + 0.5) * scale - 0.5
            start = math.floor(position)
            taps = np.arange(start - 3, start + 5)
            distance = position - taps
            weights = np.sinc(distance) * np.sinc(distance / 4)
            np.add.at(matrix[row], np.clip(taps, 0, source - 1), weights / weights.sum())
        elif scale >= 1:
            low, high = row * scale, min((row + 1) * scale, source)
            taps = np.arange(math.floor(low), math.ceil(high))
            matrix[row, taps] = (np.minimum(taps + 1, high) - np.maximum(taps, low)) / (high - low)
        else:
            start = math.floor(row * scale)
            fraction = float(np.float32((row + 1) - (start + 1) * inverse))
            fraction = 0.0 if fraction <= 0 else fraction - math.floor(fraction)
            np.add.at(matrix[row], np.clip([start, start + 1], 0, source - 1), [1 - fraction, fraction])
    return matrix.astype(np.float32)


def prepare_on_device(image: "torch.Tensor", spec: ModelSpec, mean: "torch.Tensor",
                      std: "torch.Tensor") -> "torch.Tensor":
    """One image (H×W×3 or H×W: a float tensor in [0, 1], or uint8 samples, on any device) as the model's
    normalised 3×h×w input, computed where the tensor lives, with the host's resize (:func:`resample_matrix`): on
    a GPU the CPU only decodes. The same code runs on CPU tensors in tests.

    >>> import torch
    >>> from maskcli.cnn import specs
    >>> spec = specs.get("u2netp")
    >>> mean, std = torch.tensor(spec.mean).view(3, 1, 1), torch.tensor(spec.std).view(3, 1, 1)
    >>> tuple(prepare_on_device(torch.rand(40, 30, 3), spec, mean, std).shape)
    (3, 320, 320)
    """
    chw = image[None].expand(3, -1, -1) if image.ndim == 2 else image[..., :3].permute(2, 0, 1)
    height, width = input_shape(spec, chw.shape[1], chw.shape[2])
    rows = _device_matrix(chw.shape[1], height, spec.interpolation, image.device)
    columns = _device_matrix(chw.shape[2], width, spec.interpolation, image.device)
    # 8-bit samples scale into [0, 1] as the host's to_unit_float does (a float32 multiply by 1/255).
    scale = 1.0 if image.is_floating_point() else 1.0 / 255.0
    samples = chw.float() if scale == 1.0 else chw.float() * scale
    resized = rows @ samples @ columns.T
    if spec.scale_by_max:
        resized = resized / resized.max().clamp(min=1e-6)
    return (resized - mean) / std


_DEVICE_MATRICES: dict[tuple[int, int, str, str], "torch.Tensor"] = {}


def _device_matrix(source: int, target: int, interpolation: str, device: "torch.device") -> "torch.Tensor":
    """:func:`resample_matrix` on ``device``, kept there: a fresh copy from pageable host memory per image would
    make the host wait for the GPU's queue every time."""
    import torch

    key = (source, target, interpolation, str(device))
    matrix = _DEVICE_MATRICES.get(key)
    if matrix is None:
        if len(_DEVICE_MATRICES) > 256:  # a folder of many sizes: bounded
            _DEVICE_MATRICES.clear()
        matrix = _DEVICE_MATRICES[key] = torch.from_numpy(resample_matrix(source, target, interpolation)).to(device)
    return matrix


def choose_batch_size(rates: dict[int, float], tolerance: float = 0.05) -> int:
    """The smallest batch whose throughput (images per second) is within ``tolerance`` of the best measured:
    beyond it a bigger batch only holds more memory and makes the first results wait.

    >>> choose_batch_size({1: 100.0, 2: 180.0, 4: 300.0, 8: 310.0, 16: 312.0})
    4
    """
    if not rates:
        return 1
    best = max(rates.values())
    return min(batch for batch, rate in rates.items() if rate >= best * (1 - tolerance))


class Segmenter:
    """One loaded model and the pre- and post-processing of its spec.

    Parameters
    ----------
    spec : ModelSpec
        What the model is and how its input is prepared.
    model : torch.nn.Module or onnxrt.OnnxModel
        The loaded model (see :func:`build_model`, or an :class:`~maskcli.cnn.onnxrt.OnnxModel`). A torch
        module is moved to ``plan.device``.
    plan : DevicePlan, optional
        Device, precision and memory format; default the CPU in fp32, channels_last (see :mod:`.device`).
    classes : tuple of int
        Semantic models: the output channels summed into the foreground.
    """

    def __init__(self, spec: ModelSpec, model: Any, plan: Optional[DevicePlan] = None,
                 classes: Sequence[int] = ()) -> None:
        self.spec = spec
        self.plan = plan or DevicePlan("cpu", "fp32", True)
        self.classes = list(classes) or [i for i, c in enumerate(spec.categories) if c != "__background__"]
        self.engine = "onnxruntime" if isinstance(model, onnxrt.OnnxModel) else "torch"
        self.model = model
        if self.engine == "torch":
            import torch

            self.device = torch.device(self.plan.device)
            self.model = model.to(self.device)
            if self.plan.channels_last and spec.builder != "onnx-graph":
                self.model = self.model.to(memory_format=torch.channels_last)
            self._mean_t = torch.tensor(spec.mean, device=self.device).view(3, 1, 1)
            self._std_t = torch.tensor(spec.std, device=self.device).view(3, 1, 1)
        self._mean = np.asarray(spec.mean, np.float32)
        self._std = np.asarray(spec.std, np.float32)
        self._lock = threading.Lock()  # one batch at a time through the model (threads may share a segmenter)
        self._workers: Optional[futures.ThreadPoolExecutor] = None
        self._worker_count = 0
        self._free = (0.0, 1)  # (when asked, free cores)
        if not self.plan.is_cuda:
            devices.limit_library_threads()

    # --- pre- and post-processing on the host -------------------------------------------------------------

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """One image (float32 H×W or H×W×3 in [0, 1], or its uint8/uint16 samples) as the model's C×h×w float32
        input."""
        rgb = to_rgb(_unit_floats(image))
        height, width = input_shape(self.spec, *rgb.shape[:2])
        # The spec's resize (ModelSpec.interpolation): Lanczos for U²-Net, as its reference pre-processing;
        # INTER_AREA (an antialiased shrink, like torchvision's) for the torchvision models.
        flag = cv2.INTER_LANCZOS4 if self.spec.interpolation == "lanczos" else cv2.INTER_AREA
        resized = cv2.resize(rgb, (width, height), interpolation=flag)
        if self.spec.scale_by_max:
            resized = resized / max(float(resized.max()), 1e-6)
        normalised = (resized - self._mean) / self._std
        return np.ascontiguousarray(normalised.transpose(2, 0, 1), dtype=np.float32)

    # --- the model ----------------------------------------------------------------------------------------

    def _forward(self, batch: "torch.Tensor", labels: bool = False) -> "torch.Tensor":
        """torch: model-resolution probability maps N×h×w (float32) for a normalised batch N×3×h×w; with
        ``labels`` (semantic models), N×(1+k)×h×w: the rest (background and classes not chosen), then each chosen
        class."""
        import torch

        batch = batch.to(self.device, non_blocking=True)
        if self.plan.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        dtype = devices.autocast_dtype(self.plan)
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
            out = self.model(batch)
            if self.spec.kind == "salient":
                fused = out[:, 0].float()
                if self.spec.logits:
                    fused = torch.sigmoid(fused)
                low = fused.amin(dim=(1, 2), keepdim=True)
                high = fused.amax(dim=(1, 2), keepdim=True)
                # The reference post-processing: the fused map stretched to [0, 1] per image.
                return (fused - low) / (high - low).clamp_min(1e-8)
            logits = out["out"].float()
            chosen = torch.softmax(logits, dim=1)[:, self.classes]
            if labels:
                return torch.cat([(1.0 - chosen.sum(dim=1, keepdim=True)).clamp_(0.0, 1.0), chosen], dim=1)
            return chosen.sum(dim=1).clamp_(0.0, 1.0)

    def _run_host(self, batch: np.ndarray, labels: bool = False) -> np.ndarray:
        """Model-resolution maps N×h×w (N×(1+k)×h×w with ``labels``) for a normalised host batch (CPU)."""
        if self.engine == "onnxruntime":
            return self.model.run(batch, labels)  # one thread per call, always (see maskcli.cnn.onnxrt)
        import torch

        return self._forward(torch.from_numpy(batch), labels).cpu().numpy()

    def probabilities(self, images: Sequence[np.ndarray], labels: bool = False) -> list[np.ndarray]:
        """Model-resolution probability maps, one per image, in order (float32 h×w; with ``labels``,
        (1+k)×h×w as :meth:`_forward` says)."""
        return self._map(images, full_size=False, labels=labels)

    def predict(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Soft masks (float32 H×W in [0, 1]) at each image's full size."""
        if not images:
            return []
        if self.plan.is_cuda:
            with self._lock:
                return self._predict_on_device(list(images))
        return self._map(images, full_size=True)

    # --- CPU: one image per free core -----------------------------------------------------------------------

    def free_cores(self) -> int:
        """Cores free for the model now (asked again at most every ``REPROBE_SECONDS``)."""
        asked, free = self._free
        if time.monotonic() - asked > REPROBE_SECONDS:
            free = devices.free_cores()
            self._free = (time.monotonic(), free)
        return free

    def _one(self, image: np.ndarray, full_size: bool, labels: bool = False) -> np.ndarray:
        small = self._run_host(self.preprocess(image)[None], labels)[0]
        if not full_size:
            return small.copy()
        height, width = image.shape[:2]
        mask = small if small.shape == (height, width) else cv2.resize(
            small, (width, height), interpolation=cv2.INTER_LINEAR)
        return np.clip(mask, 0.0, 1.0, out=mask).astype(np.float32, copy=False)

    def _map(self, images: Sequence[np.ndarray], full_size: bool, labels: bool = False) -> list[np.ndarray]:
        images = list(images)
        with self._lock:
            # One image per usable core, busy or not: images share nothing, so a core that another process also
            # wants only splits its time, and nothing waits on a barrier. Measured on 2 cores beside one CPU-bound
            # process, 24 horses: 8.1 s on two images at once against 10.5 s on one.
            workers = min(len(images), devices.usable_cores())
            if workers <= 1:
                # A lone image: this thread; torch spreads it over the free cores only (its threads meet at
                # barriers after every layer, and one descheduled thread stalls the others).
                self._set_torch_threads(self.free_cores() if len(images) == 1 else 1)
                return [self._one(image, full_size, labels) for image in images]
            self._set_torch_threads(1)
            if self._workers is None or self._worker_count < workers:  # grows, never shrinks: threads are cheap
                if self._workers is not None:
                    self._workers.shutdown(wait=True)
                self._workers = futures.ThreadPoolExecutor(workers, thread_name_prefix="maskcli-model")
                self._worker_count = workers
            # Interleaved shares, one per worker: `workers` images in flight at once, never more.
            shares = [list(range(start, len(images), workers)) for start in range(workers)]
            done = self._workers.map(lambda share: [self._one(images[i], full_size, labels) for i in share], shares)
            out: list[Any] = [None] * len(images)
            for share, masks in zip(shares, done):
                for index, mask in zip(share, masks):
                    out[index] = mask
            return out

    def _set_torch_threads(self, threads: int) -> None:
        if self.engine == "torch":
            import torch

            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)

    # --- GPU: the whole batch on the device ---------------------------------------------------------------------

    def _predict_on_device(self, images: list[np.ndarray]) -> list[np.ndarray]:
        import torch
        from torch.nn import functional

        on_device = []
        for image in images:
            # 8-bit samples cross as they are (a quarter of float32's bytes); deeper samples as floats.
            host = torch.from_numpy(np.ascontiguousarray(image if image.dtype == np.uint8 else _unit_floats(image)))
            if self.device.type == "cuda":
                host = host.pin_memory()  # lets the copy below overlap the previous image's work
            on_device.append(host.to(self.device, non_blocking=True))
        inputs = [prepare_on_device(t, self.spec, self._mean_t, self._std_t) for t in on_device]
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, tensor in enumerate(inputs):
            groups.setdefault(tuple(tensor.shape), []).append(index)
        small: list[Any] = [None] * len(images)
        for indices in groups.values():
            maps = self._forward(torch.stack([inputs[i] for i in indices]))
            for slot, index in enumerate(indices):
                small[index] = maps[slot]
        outputs = []
        for image, probability in zip(images, small):
            full = functional.interpolate(probability[None, None], size=image.shape[:2], mode="bilinear",
                                          align_corners=False)[0, 0].clamp_(0.0, 1.0)
            outputs.append(full.to("cpu", non_blocking=True))
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return [out.numpy() for out in outputs]

    def probe_batch_size(self, budget_seconds: float = 4.0, largest: int = 64,
                         image_shape: tuple[int, int] = (1000, 1000)) -> int:
        """Measure the batch size for this device: full-size images (``image_shape``, a one-megapixel photo by
        default) through :meth:`predict` at batches 1, 2, 4 ... ``largest``, until the throughput stops growing,
        memory runs out or ``budget_seconds`` is spent; see :func:`choose_batch_size`.

        >>> import torch
        >>> from maskcli.cnn import specs
        >>> seg = Segmenter(specs.get("u2netp"), torch.nn.Conv2d(3, 1, 1))
        >>> seg.probe_batch_size(budget_seconds=0.5, largest=4, image_shape=(40, 30)) in (1, 2, 4)
        True
        """
        import torch

        rng = np.random.default_rng(0)
        rates: dict[int, float] = {}
        started = time.perf_counter()
        batch = 1
        while batch <= largest and time.perf_counter() - started < budget_seconds:
            images = [rng.random((*image_shape, 3), dtype=np.float32) for _ in range(batch)]
            try:
                self.predict(images)  # the first call at a size builds kernels (cuDNN benchmark): not timed
                clock = time.perf_counter()
                self.predict(images)
                rates[batch] = batch / max(time.perf_counter() - clock, 1e-9)
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                break
            if len(rates) >= 2 and rates[batch] < 1.05 * max(r for b, r in rates.items() if b < batch):
                break  # no longer growing
            batch *= 2
        return choose_batch_size(rates)


    def predict_labels(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Label maps (uint8 H×W) at each image's full size: ``k`` where the k-th chosen class is the most
        probable, 0 where the background or a class not chosen is. Each class's probability is resized to the
        image before the choice, so that edges are as smooth as the soft masks'."""
        if self.spec.kind != "semantic":
            raise ValueError(f"{self.spec.name} has no classes")
        maps = []
        for image, small in zip(images, self.probabilities(images, labels=True)):
            height, width = image.shape[:2]
            channels = np.ascontiguousarray(small.transpose(1, 2, 0))
            if channels.shape[:2] != (height, width):
                channels = cv2.resize(channels, (width, height), interpolation=cv2.INTER_LINEAR)
            maps.append(channels.reshape(height, width, -1).argmax(axis=2).astype(np.uint8))
        return maps


_LOADED: dict[tuple[Any, ...], Segmenter] = {}
_LOADING = threading.Lock()


def segmenter(spec: ModelSpec, path: Union[str, Path], plan: DevicePlan, classes: Sequence[int] = (),
              engine: str = "auto") -> Segmenter:
    """The process's segmenter for this model, weights file, device, classes and engine, loading it the first
    time (``engine``: see :func:`engine_for`)."""
    chosen = engine_for(spec, path, plan, engine)
    key = (spec.name, str(Path(path).resolve()), plan, tuple(classes), chosen)
    with _LOADING:
        if key not in _LOADED:
            if chosen == "onnxruntime":
                channels = list(classes) or [i for i, c in enumerate(spec.categories) if c != "__background__"]
                model: Any = onnxrt.OnnxModel(spec, path, plan.device, channels)
            else:
                model = build_model(spec, path)
            _LOADED[key] = Segmenter(spec, model, plan, classes)
        return _LOADED[key]
