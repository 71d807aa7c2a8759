"""Running a segmentation CNN over batches of images: pre-processing, inference, soft masks at full size.

A :class:`Segmenter` holds one loaded model. :func:`segmenter` keeps one per (model, weights, device,
precision) in this process, so a batch of thousands of images loads the weights once. Each call:

1. resizes every image to the model's input (U²-Net: 320×320 with Lanczos; torchvision models: shorter side 520,
   aspect kept, with ``cv2.INTER_AREA``), and normalises it as its spec says;
2. stacks images of equal input shape into one tensor (different shapes run as separate sub-batches, so a
   mask never depends on its batch neighbours);
3. runs the model under ``torch.inference_mode()`` (no autograd graph, nothing kept between calls: memory stays
   flat), with fp16 autocast and ``channels_last`` on GPU;
4. post-processes **at model resolution** into one probability channel (U²-Net: the fused map d0, min-max
   normalised; semantic models: softmax over the classes, summed over the chosen ones), and only then resizes that
   one channel to each image's full size.

>>> import numpy as np, torch
>>> from maskcli.cnn import specs
>>> stand_in = torch.nn.Conv2d(3, 1, 1)  # any module with U²-Net's output shape; see build_model for the real one
>>> seg = Segmenter(specs.get("u2netp"), stand_in)
>>> [m.shape for m in seg.predict([np.zeros((30, 40, 3), np.float32), np.ones((20, 10), np.float32)])]
[(30, 40), (20, 10)]
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional, Union

import cv2
import numpy as np
import torch
from torch import nn

from maskcli.cnn.device import DevicePlan, autocast_dtype
from maskcli.cnn.specs import ModelSpec
from maskcli.cores import cpu_count
from maskcli.imageops import to_rgb
from maskcli.errors import WeightsUnavailable


def _set_threads() -> None:
    # torch sizes its pool from the machine's cores, not the cores this process may use (cgroups, taskset);
    # more threads than cores only adds contention with the decode threads.
    usable = cpu_count()
    if torch.get_num_threads() > usable:
        torch.set_num_threads(usable)


def build_model(spec: ModelSpec, path: Union[str, Path]) -> nn.Module:
    """The spec's architecture with the weights of ``path`` loaded, on the CPU, in eval mode.

    Raises
    ------
    WeightsUnavailable
        The file cannot be read, or holds another architecture (missing, unexpected or mis-shaped tensors).
    """
    if spec.builder == "onnx-graph":
        from maskcli.cnn.models.onnx_graph import OnnxGraph

        return OnnxGraph(path, spec.name).eval()
    from maskcli.cnn.weights import load_state, read_checkpoint

    checkpoint = read_checkpoint(path)
    if checkpoint is not None:  # fine-tuned by `maskcli train`
        from maskcli.cnn.training import model_from_checkpoint

        return model_from_checkpoint(spec, checkpoint, path).eval()
    if spec.weights_format == "onnx":
        from maskcli.cnn.models import u2net

        model = getattr(u2net, spec.builder)()
        u2net.load_onnx_weights(model, path)
        return model.eval()
    from torchvision.models import segmentation

    # The auxiliary head only helps training; the published files carry it, random or custom ones may not.
    model = getattr(segmentation, spec.builder)(weights=None, weights_backbone=None,
                                                 num_classes=len(spec.categories), aux_loss=False)
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
    state = {k: v for k, v in state.items() if not k.startswith("aux_classifier.")}
    return load_state(model, state, path, f"{spec.name} ({spec.builder}, {len(spec.categories)} classes)").eval()


def _input_size(spec: ModelSpec, height: int, width: int) -> tuple[int, int]:
    """(height, width) the image is resized to."""
    if spec.kind == "salient":
        return spec.input_size, spec.input_size
    scale = spec.input_size / min(height, width)  # torchvision's resize_size: the shorter side
    return max(1, round(height * scale)), max(1, round(width * scale))


class Segmenter:
    """One loaded model and the pre- and post-processing of its spec.

    Parameters
    ----------
    spec : ModelSpec
        What the model is and how its input is prepared.
    model : torch.nn.Module
        The loaded model (see :func:`build_model`), on the CPU; it is moved to ``plan.device``.
    plan : DevicePlan, optional
        Device, precision and memory format; default the CPU in fp32, channels_last (see :mod:`.device`).
    classes : tuple of int
        Semantic models: the output channels summed into the foreground.
    """

    def __init__(self, spec: ModelSpec, model: nn.Module, plan: Optional[DevicePlan] = None,
                 classes: Sequence[int] = ()) -> None:
        self.spec = spec
        self.plan = plan or DevicePlan("cpu", "fp32", True)
        self.classes = list(classes) or [i for i, c in enumerate(spec.categories) if c != "__background__"]
        self.device = torch.device(self.plan.device)
        self.model = model.to(self.device)
        if self.plan.channels_last and spec.builder != "onnx-graph":
            self.model = self.model.to(memory_format=torch.channels_last)
        self._mean = np.asarray(spec.mean, np.float32)
        self._std = np.asarray(spec.std, np.float32)
        self._lock = threading.Lock()  # one batch at a time through the model (threads may share a segmenter)
        if self.plan.device == "cpu":
            _set_threads()

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """One image (float32 H×W or H×W×3 in [0, 1]) as the model's C×h×w float32 input."""
        rgb = to_rgb(image)
        height, width = _input_size(self.spec, *rgb.shape[:2])
        # The spec's resize (ModelSpec.interpolation): Lanczos for U²-Net, as its reference pre-processing;
        # INTER_AREA (an antialiased shrink, like torchvision's) for the torchvision models.
        flag = cv2.INTER_LANCZOS4 if self.spec.interpolation == "lanczos" else cv2.INTER_AREA
        resized = cv2.resize(rgb, (width, height), interpolation=flag)
        if self.spec.scale_by_max:
            resized = resized / max(float(resized.max()), 1e-6)
        normalised = (resized - self._mean) / self._std
        return np.ascontiguousarray(normalised.transpose(2, 0, 1), dtype=np.float32)

    def _forward(self, batch: torch.Tensor, labels: bool = False) -> torch.Tensor:
        """Model-resolution probability maps N×h×w (float32) for a normalised batch N×3×h×w; with ``labels``
        (semantic models), N×(1+k)×h×w: the rest (background and classes not chosen), then each chosen class."""
        batch = batch.to(self.device, non_blocking=True)
        if self.plan.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        dtype = autocast_dtype(self.plan)
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

    def probabilities(self, images: Sequence[np.ndarray], labels: bool = False) -> list[np.ndarray]:
        """Model-resolution probability maps, one per image, in order (float32 h×w; with ``labels``,
        (1+k)×h×w as :meth:`_forward` says)."""
        inputs = [self.preprocess(image) for image in images]
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, tensor in enumerate(inputs):
            groups.setdefault(tensor.shape, []).append(index)
        maps: list[Any] = [None] * len(inputs)
        with self._lock:
            for indices in groups.values():
                batch = torch.from_numpy(np.stack([inputs[i] for i in indices]))
                out = self._forward(batch, labels).cpu().numpy()
                for slot, index in enumerate(indices):
                    maps[index] = out[slot].copy()  # a view would keep the whole batch alive
        return maps

    def predict(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Soft masks (float32 H×W in [0, 1]) at each image's full size."""
        masks = []
        for image, small in zip(images, self.probabilities(images)):
            height, width = image.shape[:2]
            mask = small if small.shape == (height, width) else cv2.resize(
                small, (width, height), interpolation=cv2.INTER_LINEAR)
            masks.append(np.clip(mask, 0.0, 1.0, out=mask).astype(np.float32, copy=False))
        return masks


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


def segmenter(spec: ModelSpec, path: Union[str, Path], plan: DevicePlan, classes: Sequence[int] = ()) -> Segmenter:
    """The process's segmenter for this model, weights file, device and classes, loading it the first time."""
    key = (spec.name, str(Path(path).resolve()), plan, tuple(classes))
    with _LOADING:
        if key not in _LOADED:
            _LOADED[key] = Segmenter(spec, build_model(spec, path), plan, classes)
        return _LOADED[key]
