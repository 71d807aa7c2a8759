"""``cnn``: a pretrained segmentation CNN (U²-Net-P by default) as a mask method; a thin adapter over
:mod:`maskcli.cnn`.

The mask is soft: each pixel holds the model's foreground probability (``--hard LEVEL`` binarises it). The
device and the weights are resolved when the method is created, so a missing file or a missing GPU stops the run
before any image is read; the model itself is loaded on the first batch, once per method (each method holds its
own :class:`~maskcli.cnn.infer.ModelCache`; a copy sent to another process loads it again there). On the CPU a
U²-Net, ISNet or BiRefNet runs on onnxruntime (a fine-tuned U²-Net exported once, :mod:`maskcli.cnn.prepare`) and
torch is never imported; a GPU, ``engine="torch"`` and the torchvision models import it when the model loads.

>>> from maskcli.methods import methods
>>> cls = methods.get("cnn")
>>> cls.batched, cls.hard
(True, False)
>>> methods.create("cnn", {"model": "u2netp", "classes": "horse"})
Traceback (most recent call last):
...
maskcli.errors.OptionError: classes: u2netp is a salient-object model with no classes; ...
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from maskcli.cnn import specs
from maskcli.errors import OptionError
from maskcli.methods.base import Method, Segmentation, methods
from maskcli.registry import option

# Images per batch when ``batch_size`` is 0 (automatic):
#
# * **CPU:** as many as this process may use cores; the segmenter runs one image per free core at once, each
#   on one thread (batching images into one tensor was slower per image on the CPU: U²-Net-P 0.294 s per image in
#   batches of 1 against 0.342 s in batches of 4, torch 2.14.1 on 2 cores).
# * **GPU:** measured on the device when the method is made (:meth:`maskcli.cnn.infer.Segmenter.probe_batch_size`:
#   one-megapixel images at batches 1, 2, 4 ... until the throughput stops growing).

#: A pixel whose probability lies in this open interval counts as uncertain.
UNCERTAIN = (0.2, 0.8)


def _model_cache() -> Any:
    from maskcli.cnn.infer import ModelCache

    return ModelCache()


@methods.register("cnn")
@dataclasses.dataclass
class CNN(Method):
    """A pretrained segmentation CNN; `maskcli models` lists the models and whether their weights are cached."""

    summary: ClassVar[str] = ("Pretrained CNN (U²-Net-P salient object by default, or torchvision VOC models): a "
                              "soft foreground probability; runs on the GPU when there is one.")
    example: ClassVar[str] = "maskcli segment photos/ -o masks/ --model u2netp --refine guided"
    hard: ClassVar[bool] = False
    batched: ClassVar[bool] = True
    # The decoded samples go to the model's pre-processing as they are: the float copy is made by the model's
    # worker threads (CPU) or on the device (GPU), not by the thread that feeds the batch.
    integer_samples: ClassVar[bool] = True

    model: str = option(specs.DEFAULT_MODEL, "The model (`maskcli models`).", choices=tuple(specs.names()))
    weights: str | None = option(None, "A local weights file; default: the cache, else a download.")
    device: str = option("auto", "auto | cpu | cuda | cuda:N (auto: CUDA when available).")
    batch_size: int = option(0, "Images per batch; 0: automatic (the usable cores on the CPU, measured on a "
                                   "GPU); at most 64: larger is clamped.")
    engine: str = option("auto", "auto | torch | onnxruntime (auto: onnxruntime on the CPU for ONNX weights and "
                                 "fine-tuned U²-Nets, exported once; torch on a GPU and for torchvision models).",
                         choices=("auto", "torch", "onnxruntime"))
    classes: str | None = option(None, "Semantic models: comma-separated class names kept as foreground "
                                          "(default: every class but the background).")

    def __post_init__(self) -> None:
        from maskcli.cnn import device, weights

        self._spec = specs.get(self.model)
        if self.batch_size < 0:
            raise OptionError("batch_size", f"must be at least 1 (or 0: automatic), not {self.batch_size}")
        self._channels = specs.parse_classes(self._spec, self.classes)
        self._auto_batch = self.batch_size == 0
        self._models = _model_cache()
        # Eager, so that setup errors (no weights, no CUDA) stop the run before the first item.
        self._plan = device.resolve(self.device)
        self._weights = weights.resolve(self._spec, self.weights)
        self._choose_engine_and_batch()

    def _choose_engine_and_batch(self) -> None:
        from maskcli.cnn import device, prepare
        from maskcli.cnn.loading import engine_for

        # The file that runs: for onnxruntime a U²-Net's prepared ONNX graph (a fine-tuned checkpoint exported);
        # a checkpoint brings its training size and normalisation, and another architecture stops here.
        self._path, self._spec = prepare.runnable(specs.get(self.model), self._weights, self._plan, self.engine)
        self._engine = engine_for(self._spec, self._path, self._plan, self.engine)
        if self._auto_batch:
            # On a GPU the model loads now, to measure the batch on the device before the first item.
            self.batch_size = self._segmenter().probe_batch_size() if self._plan.is_cuda else device.usable_cores()

    def __getstate__(self) -> dict[str, Any]:
        # The loaded models stay with this process; a copy loads its own where it runs.
        return {key: value for key, value in self.__dict__.items() if key != "_models"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # "auto" means the machine the model runs on: a method sent to another machine (a Ray actor on a GPU node)
        # chooses again there, with the batch size that goes with its device; weights found in the cache or the
        # package are found again there when that machine keeps them elsewhere.
        self.__dict__.update(state)
        self._models = _model_cache()
        if self.device == "auto":
            from maskcli.cnn import device

            self._plan = device.resolve(self.device)
        if self.weights is None and not os.path.isfile(self._weights):
            from maskcli.cnn import weights

            self._weights = weights.resolve(specs.get(self.model), None)
        self._choose_engine_and_batch()  # onnxruntime, the cores, the GPU and the prepared files are that machine's

    def _segmenter(self) -> Any:
        return self._models.segmenter(self._spec, self._path, self._plan, self._channels, self._engine)

    def compute(self, image: np.ndarray) -> Segmentation:
        (segmentation,) = self.compute_batch([image])
        return segmentation

    def compute_batch(self, images: Sequence[np.ndarray]) -> list[Segmentation]:
        segmenter = self._segmenter()
        images = list(images)
        masks: list[np.ndarray] = []
        for start in range(0, len(images), self.batch_size):  # a long list from a library caller: bounded memory
            masks.extend(segmenter.predict(images[start:start + self.batch_size]))
        results = []
        for mask in masks:
            uncertain = float(np.count_nonzero((mask > UNCERTAIN[0]) & (mask < UNCERTAIN[1]))) / max(mask.size, 1)
            facts = {"model": self.model, "engine": self._engine, "device": self._plan.device,
                     "precision": self._plan.precision,
                     "uncertain_fraction": round(uncertain, 6), "confidence": round(1.0 - uncertain, 6)}
            results.append(Segmentation(mask, facts))
        return results

    @property
    def class_names(self) -> list[str]:
        """Semantic models: the chosen classes, in the order of their labels (1, 2 ...)."""
        if self._spec.kind != "semantic":
            raise OptionError("labels", f"{self.model} is a salient-object model with no classes; label maps come "
                                        "from a semantic model (`maskcli models`)")
        return [self._spec.categories[index] for index in self._channels]

    def compute_labels(self, images: Sequence[np.ndarray]) -> list[Segmentation]:
        """Semantic models: each image's label map (0 background, k the k-th of :attr:`class_names`) in
        ``labels``, with the mask of every chosen class as ``mask``."""
        names = self.class_names
        segmenter = self._segmenter()
        images = list(images)
        results = []
        for start in range(0, len(images), self.batch_size):
            for labels in segmenter.predict_labels(images[start:start + self.batch_size]):
                present = sorted(int(v) for v in np.unique(labels) if v)
                facts = {"model": self.model, "device": self._plan.device, "classes": names,
                         "classes_found": [names[v - 1] for v in present]}
                results.append(Segmentation((labels > 0).astype(np.float32), facts, labels))
        return results
