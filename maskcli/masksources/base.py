"""What every mask source is: the :class:`MaskSource` protocol, the :data:`mask_sources` registry, and
:func:`paired`, which gives the planned items their mask files."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from maskcli.errors import InputError
from maskcli.io.decode import Image
from maskcli.io.sources import Item, Source
from maskcli.registry import Registry

#: Every kind registers itself when its module is imported; the package imports them all, so the registry is whole
#: as soon as :mod:`maskcli.masksources` is.
mask_sources: Registry[Any] = Registry("mask source")


class MaskSource(Protocol):
    """Pairs inputs with masks (see :mod:`maskcli.masksources`)."""

    name: ClassVar[str]
    #: The method that makes the masks, for sources that run one (else None).
    method: Any

    def pair(self, source: Source) -> Path | None: ...

    def load(self, item: Item, image: Image, *, max_pixels: int) -> np.ndarray | None: ...


def paired(items: Iterable[Item], masks: MaskSource) -> Iterator[Item]:
    """The items with their mask files (``item.mask``); an input without a mask fails with the reason."""
    for item in items:
        if not item.error and not item.skip:
            try:
                item.mask = masks.pair(item.source)
            except InputError as error:
                item.error = str(error)
        yield item
