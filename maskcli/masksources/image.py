"""Masks that come with the image or from it: its own alpha channel (``alpha``), or a mask method run on the fly
(``method``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from maskcli.errors import InputError
from maskcli.io.decode import Image
from maskcli.io.sources import Item, Source
from maskcli.masksources.base import mask_sources


@mask_sources.register("alpha")
@dataclasses.dataclass
class AlphaMasks:
    """Each image's own alpha channel."""

    method: ClassVar[Any] = None

    def pair(self, source: Source) -> Path | None:
        return None

    def load(self, item: Item, image: Image, *, max_pixels: int) -> np.ndarray | None:
        if image.alpha is None:
            raise InputError("image has no alpha channel to use as its mask")
        return image.alpha


@mask_sources.register("method")
@dataclasses.dataclass
class MethodMasks:
    """Masks made on the fly by a mask method (any registered method, the CNN included)."""

    method: Any

    def pair(self, source: Source) -> Path | None:
        return None

    def load(self, item: Item, image: Image, *, max_pixels: int) -> np.ndarray | None:
        return None  # made from the decoded image, in the job's compute stage (batched for a CNN)
