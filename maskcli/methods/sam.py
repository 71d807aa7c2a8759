"""``sam``: Segment Anything from ONNX files (:mod:`maskcli.cnn.sam`): one mask per prompt, boxes and points.

The image is encoded once for all its prompts; each prompt is decoded on its own, and of the candidate masks the
one with the best predicted IoU is kept (its score). onnxruntime loads with the first image.

>>> from maskcli.methods import methods
>>> methods.create("sam", {"weights": "encoder.onnx"})
Traceback (most recent call last):
...
maskcli.errors.OptionError: weights: a Segment Anything model is two files: give them as ENCODER,DECODER, not ...
>>> methods.create("sam", {"weights": "no-encoder.onnx,no-decoder.onnx"})
Traceback (most recent call last):
...
maskcli.errors.WeightsUnavailable: `weights='no-encoder.onnx'`: no such file (weights for model 'sam-vit-b encoder')
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from maskcli.cnn import sam as zoo
from maskcli.errors import OptionError
from maskcli.methods.base import Segmentation, methods
from maskcli.methods.prompted import PromptedMethod
from maskcli.prompts import Prompt
from maskcli.registry import option


@methods.register("sam")
@dataclasses.dataclass
class Sam(PromptedMethod):
    """Segment Anything (ONNX encoder and decoder under onnxruntime) from each prompt's box and points.

    The mask is the decoder's probability (the sigmoid of its logits); the score its predicted IoU. With
    ``multimask``, every candidate of a prompt is an object, best first (each says its ``prompt``).
    ``weights=ENCODER,DECODER`` runs local exports (segment-anything, MobileSAM, SAM 2, EfficientSAM with the
    official input and output names; EfficientSAM's whole graph is one file); the models' files are otherwise
    fetched into the cache and checked by their checksums.
    """

    summary: ClassVar[str] = "Segment Anything (ONNX) from boxes and points: one soft mask per prompt."
    example: ClassVar[str] = "maskcli segment photos/ -o labels/ -m sam --boxes detections.json"
    hard: ClassVar[bool] = False
    batched: ClassVar[bool] = True  # one process keeps the model; images go one at a time
    takes_points_alone: ClassVar[bool] = True
    model: str = option(zoo.DEFAULT, "The Segment Anything model.", choices=tuple(zoo.names()))
    weights: str | None = option(None, "Local files ENCODER,DECODER (ONNX; efficient-sam also takes its one-graph "
                                            "export); default: the cache, else a download.")
    device: str = option("cpu", "cpu | cuda | cuda:N (onnxruntime's CUDA provider, from onnxruntime-gpu).")
    batch_size: int = option(1, "Images per batch (each image is encoded on its own).")
    multimask: bool = option(False, "Keep every candidate mask of a prompt as an object of its own (each with "
                                    "its predicted IoU), not only the best.")

    def __post_init__(self) -> None:
        self._spec = zoo.get(self.model)
        if self.batch_size < 1:
            raise OptionError("batch_size", f"must be at least 1, not {self.batch_size}")
        self._paths = zoo.resolve(self._spec, self.weights)  # eager: missing weights stop the run first
        self._model: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_model": None}  # each process opens its own sessions

    def __eq__(self, other: object) -> bool:
        fields = ("model", "weights", "device", "batch_size", "multimask")
        return isinstance(other, Sam) and all(getattr(self, f) == getattr(other, f) for f in fields)

    def _sessions(self) -> Any:
        if self._model is None:
            self._model = zoo.open_model(*self._paths, name=self.model, device=self.device)
        return self._model

    def compute_prompts(self, image: np.ndarray, prompts: Sequence[Prompt]) -> list[Segmentation]:
        model = self._sessions()
        embedding = model.embed(image)
        results = []
        answers = model.decode_many(embedding, [(prompt.box, prompt.points) for prompt in prompts])
        for number, (logits, scores) in enumerate(answers, start=1):
            best = int(np.argmax(scores)) if scores.size else 0
            kept = sorted(range(len(logits)), key=lambda k: -float(scores[k])) if self.multimask else [best]
            for candidate in kept:
                mask = (1.0 / (1.0 + np.exp(-np.clip(logits[candidate], -50, 50)))).astype(np.float32)
                score = round(float(scores[candidate]), 4) if scores.size else 0.0
                results.append(Segmentation(mask, {"model": self.model, "score": score, "confidence": score,
                                                   "candidates": int(logits.shape[0]), "prompt": number}))
        return results
