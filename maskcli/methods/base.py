"""What a mask method is, and the registry that holds them.

A method is a small dataclass: its fields are its options (declared with :func:`maskcli.registry.option`), and
calling it on an image returns a mask. ``compute`` returns the mask together with facts worth reporting (the
threshold used, a confidence score, warnings), which the CLI prints in ``--json`` records.

Images follow the one image convention: float32 H×W (grey) or H×W×3 (RGB) in [0, 1]. Masks follow the one mask
convention of :mod:`maskcli.masks`.

Adding a method is adding one file to ``maskcli/methods/`` that registers a class::

    @methods.register("mine")
    @dataclasses.dataclass
    class Mine(Method):
        summary: ClassVar[str] = "One line for `maskcli methods`."
        level: float = option(0.5, "What it does.")

        def compute(self, image):
            return Segmentation((gray(image) > self.level).astype(np.float32))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from maskcli.registry import Registry


@dataclasses.dataclass
class Segmentation:
    """A mask and the facts about how it was made.

    ``facts`` holds JSON-friendly values: ``threshold`` (in [0, 1] image units), ``confidence`` (higher is
    surer), ``warnings`` (a list of strings, e.g. an empty or full mask), and anything method-specific.
    """

    mask: np.ndarray
    facts: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: Multi-class methods asked for labels: uint8 H×W, 0 background, k the k-th of ``facts["classes"]``.
    labels: np.ndarray | None = None

    def warn(self, message: str) -> None:
        self.facts.setdefault("warnings", []).append(message)


class Method:
    """Base class of mask methods. Subclasses are dataclasses whose fields are their options."""

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    #: One example command line, shown by ``maskcli methods NAME``.
    example: ClassVar[str] = ""
    #: True when the method always returns a hard mask (the contract test holds it to {0, 1}).
    hard: ClassVar[bool] = True
    #: True for methods that run a model best fed in batches in one process (the CNN); others run in
    #: ``--jobs`` worker processes, one image at a time.
    batched: ClassVar[bool] = False
    batch_size: int = 1

    @property
    def needs_color(self) -> bool:
        """False when the method only ever looks at the grey plane, so images may be decoded straight to grey.

        Methods with a ``channel`` option look at that one channel; on ``gray`` a colour decode is wasted work
        (a JPEG decoded to grey skips the chroma planes: about twice as fast, which is most of a threshold's cost).
        """
        return getattr(self, "channel", None) != "gray"

    def compute(self, image: np.ndarray) -> Segmentation:
        raise NotImplementedError

    def compute_batch(self, images: Sequence[np.ndarray]) -> list[Segmentation]:
        """Masks for several images at once; batched methods override this."""
        return [self.compute(image) for image in images]

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self.compute(image).mask


#: One module per family registers its methods; naming one method imports only its module.
methods: Registry[Method] = Registry("method", package="maskcli.methods", skip=("base",))
