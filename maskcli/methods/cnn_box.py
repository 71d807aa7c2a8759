"""``cnn-box``: the CNN inside each prompt's box: the model on the box's crop (with a margin), pasted back.

A salient model (U²-Net-P) then looks for the salient object of the crop, which is the boxed object even where
it is not the salient object of the whole photo; a semantic model keeps its chosen classes inside the box. torch
or onnxruntime load when the first crop runs, as for ``cnn``.

>>> from maskcli.methods import methods
>>> methods.get("cnn-box").hard, methods.get("cnn-box").batched
(False, True)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from maskcli.cnn import specs
from maskcli.errors import OptionError
from maskcli.methods.base import Segmentation, methods
from maskcli.methods.cnn import CNN, UNCERTAIN
from maskcli.methods.prompted import (
    PromptedMethod,
    crop_box,
    keep_pointed,
    paste,
    settle_overlaps,
)
from maskcli.prompts import Prompt
from maskcli.registry import option


@methods.register("cnn-box")
@dataclasses.dataclass
class CNNBox(PromptedMethod):
    """The CNN on each prompt's box, widened by ``margin`` for context, its mask kept inside the box.

    Points choose among the regions found: those under a positive point are kept, one under a negative point
    dropped. The score is the share of the box's pixels the model is sure of (probability outside 0.2–0.8).
    """

    summary: ClassVar[str] = "The CNN on each prompt's box crop, pasted back (one soft mask per prompt)."
    example: ClassVar[str] = "maskcli segment photos/ -o labels/ -m cnn-box --boxes detections.json"
    hard: ClassVar[bool] = False
    batched: ClassVar[bool] = True
    model: str = option(specs.DEFAULT_MODEL, "The model (`maskcli models`).", choices=tuple(specs.names()))
    weights: str | None = option(None, "A local weights file; default: the cache, else a download.")
    device: str = option("auto", "auto | cpu | cuda | cuda:N (auto: CUDA when available).")
    batch_size: int = option(0, "Crops per batch; 0: automatic (as the cnn method).")
    classes: str | None = option(None, "Semantic models: comma-separated class names kept inside the box.")
    margin: float = option(0.1, "Context around the box given to the model, as a fraction of its size per side.")
    overlap: str = option("smaller", "Where boxes overlap, a pixel both masks claim goes to the smaller box's object "
                                     "(usually the one in front), the higher score's, or to both (none).",
                          choices=("smaller", "score", "none"))

    def __post_init__(self) -> None:
        if not 0 <= self.margin <= 2:
            raise OptionError("margin", f"must be in [0, 2], got {self.margin}")
        self._cnn = CNN(model=self.model, weights=self.weights, device=self.device, batch_size=self.batch_size,
                        classes=self.classes)
        if self.batch_size == 0:
            self.batch_size = self._cnn.batch_size

    def compute_prompts(self, image: np.ndarray, prompts: Sequence[Prompt]) -> list[Segmentation]:
        height, width = image.shape[:2]
        windows, crops = [], []
        for prompt in prompts:
            if prompt.box is None:
                raise OptionError("method", "cnn-box needs a box with each prompt (points alone: the sam method)")
            window = crop_box(prompt, width, height, self.margin)
            windows.append(window)
            crops.append(image[window[1]:window[3], window[0]:window[2]])
        results = []
        for prompt, window, found in zip(prompts, windows, self._cnn.compute_batch(crops) if crops else []):
            mask = paste(found.mask, window, height, width)
            x, y, w, h = prompt.rect()
            inside = np.zeros_like(mask)
            inside[y:y + h, x:x + w] = mask[y:y + h, x:x + w]
            inside = keep_pointed(inside, prompt.points)
            box = mask[y:y + h, x:x + w]
            sure = 1.0 - np.count_nonzero((box > UNCERTAIN[0]) & (box < UNCERTAIN[1])) / max(box.size, 1)
            facts = {k: v for k, v in found.facts.items() if k in ("model", "engine", "device")}
            results.append(Segmentation(inside, {**facts, "score": round(sure, 4), "confidence": round(sure, 4)}))
        settle_overlaps([s.mask for s in results], [p.rect() for p in prompts], self.overlap,
                        [s.facts["score"] for s in results])
        return results
