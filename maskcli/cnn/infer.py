"""Running a segmentation CNN over batches of images: the run policy, inference, soft masks at full size.

A :class:`Segmenter` holds one loaded model: a torch module, or an :class:`~maskcli.cnn.onnxrt.OnnxModel` for
ONNX-format weights under onnxruntime (:mod:`.loading` picks and loads it). A :class:`ModelCache`, held by its
caller (the ``cnn`` method holds one), keeps one per (model, weights, device, classes, engine) for as long as the
caller keeps it, so a batch of thousands of images loads the weights once. This module imports torch only where a
torch model runs, so the onnxruntime path never loads it.

**On the CPU** each image goes its own way through the model, as many at once as there are usable cores, each on
one thread; with torch, a lone image spreads over the cores free now instead
(:func:`maskcli.cnn.device.free_cores`, asked again every few seconds; onnxruntime keeps to one thread, see
:mod:`.onnxrt`). Per image:

1. resize to the model's input and normalise as the spec's transforms say (:mod:`.preprocess`);
2. run the model (torch: ``inference_mode``, fp32, ``channels_last``; or onnxruntime);
3. post-process **at model resolution** into one probability channel (U²-Net: the fused map d0, min-max
   normalised; semantic models: softmax over the classes, summed over the chosen ones), and only then resize that
   one channel to the image's full size.

The library threads of OpenCV and torch are the caller's to set, once (:func:`maskcli.cnn.device.limit_threads`:
the local executor sets one each, the images running side by side).

**On a GPU** (torch) the whole batch goes at once and the device does the work: each image's decoded samples
(uint8 as read: a quarter of the bytes of float pixels, and no float copy made on the host) are copied from pinned
memory without blocking, turned into floats, resized and normalised on the device (the spec's transforms as
tensor operations, :class:`~maskcli.cnn.preprocess.DeviceTransforms`: OpenCV's Lanczos or area resize as two
matrix products, so the GPU sees the CPU's inputs), run in fp32 with ``channels_last`` (the precision policy in
:mod:`.device`), post-processed and resized back to full size there; only the final masks come back. The host
thread that feeds the GPU does little per image, so the CPU cores stay free for decoding and encoding. Images of
equal input shape share a forward pass; a mask never depends on its batch neighbours. The batch size is measured
on the device (:meth:`Segmenter.probe_batch_size`).

>>> import numpy as np, torch
>>> from maskcli.cnn import specs
>>> stand_in = torch.nn.Conv2d(3, 1, 1)  # any module with U²-Net's output shape; see loading.build_model
>>> seg = Segmenter(specs.get("u2netp"), stand_in)
>>> [m.shape for m in seg.predict([np.zeros((30, 40, 3), np.float32), np.ones((20, 10), np.float32)])]
[(30, 40), (20, 10)]
"""

from __future__ import annotations

import concurrent.futures as futures
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

import cv2
import numpy as np

from maskcli.cnn import device as devices
from maskcli.cnn import loading, onnxrt
from maskcli.cnn.device import DevicePlan
from maskcli.cnn.preprocess import unit_floats
from maskcli.cnn.specs import ModelSpec

if TYPE_CHECKING:
    import torch

#: How often (seconds) the CPU path asks again how many cores are free.
REPROBE_SECONDS = 2.0


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
        The loaded model (:func:`maskcli.cnn.loading.load`). A torch module is moved to ``plan.device``.
    plan : DevicePlan, optional
        Device, precision and memory format; default the CPU in fp32, channels_last (see :mod:`.device`).
    classes : tuple of int
        Semantic models: the output channels summed into the foreground.
    """

    def __init__(self, spec: ModelSpec, model: Any, plan: Optional[DevicePlan] = None,
                 classes: Sequence[int] = ()) -> None:
        self.spec = spec
        self.transforms = spec.transforms()
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
            self._on_device = self.transforms.to(self.device)
        self._lock = threading.Lock()  # one batch at a time through the model (threads may share a segmenter)
        self._workers: Optional[futures.ThreadPoolExecutor] = None
        self._worker_count = 0
        self._free = (0.0, 1)  # (when asked, free cores)

    # --- pre- and post-processing on the host -------------------------------------------------------------

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """One image (float32 H×W or H×W×3 in [0, 1], or its uint8/uint16 samples) as the model's C×h×w float32
        input (the spec's transforms)."""
        return self.transforms(image)

    # --- the model ----------------------------------------------------------------------------------------

    def _forward(self, batch: torch.Tensor, labels: bool = False) -> torch.Tensor:
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
            host = torch.from_numpy(np.ascontiguousarray(image if image.dtype == np.uint8 else unit_floats(image)))
            if self.device.type == "cuda":
                host = host.pin_memory()  # lets the copy below overlap the previous image's work
            on_device.append(host.to(self.device, non_blocking=True))
        inputs = [self._on_device(t) for t in on_device]
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


class ModelCache:
    """Loaded models, one :class:`Segmenter` per (model, weights file, device, classes, engine), kept for as long
    as the holder keeps this cache: a method holds one for its runs, and dropping it frees the models. Threads may
    share a cache; a model loads once.

    >>> from maskcli.cnn import specs, weights
    >>> spec, cpu = specs.get("u2netp"), DevicePlan("cpu", "fp32", True)
    >>> cache = ModelCache()
    >>> first = cache.segmenter(spec, weights.resolve(spec, None), cpu)
    >>> first is cache.segmenter(spec, weights.resolve(spec, None), cpu), len(cache)
    (True, 1)
    """

    def __init__(self) -> None:
        self._segmenters: dict[tuple[Any, ...], Segmenter] = {}
        self._lock = threading.Lock()

    def segmenter(self, spec: ModelSpec, path: Union[str, Path], plan: DevicePlan, classes: Sequence[int] = (),
                  engine: str = "auto") -> Segmenter:
        """The segmenter for this model, weights file, device, classes and engine, loading it the first time
        (``engine``: see :func:`maskcli.cnn.loading.engine_for`)."""
        chosen = loading.engine_for(spec, path, plan, engine)
        key = (spec.name, str(Path(path).resolve()), plan, tuple(classes), chosen)
        with self._lock:
            if key not in self._segmenters:
                model = loading.load(spec, path, plan, classes, chosen)
                self._segmenters[key] = Segmenter(spec, model, plan, classes)
            return self._segmenters[key]

    def __len__(self) -> int:
        return len(self._segmenters)

    def clear(self) -> None:
        """Forget every model (each is freed once nothing else holds it)."""
        with self._lock:
            self._segmenters.clear()


__all__ = ["ModelCache", "REPROBE_SECONDS", "Segmenter", "choose_batch_size"]
