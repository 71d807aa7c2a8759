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

from collections.abc import Sequence
from typing import Any, ClassVar

import cv2
import numpy as np

from maskcli.registry import Registry


class Segmentation:
    """A mask and the facts about how it was made.

    ``facts`` holds JSON-friendly values: ``threshold`` (in [0, 1] image units), ``confidence`` (higher is
    surer), ``warnings`` (a list of strings, e.g. an empty or full mask), and anything method-specific.

    A method that makes a hard mask as bytes may give it as ``binary`` (uint8, 0 or 255): the float ``mask`` is
    then made from it on first use, and a writer that only needs the bytes (a 1-bit PNG) never makes it. A 1-MP
    threshold saves about a millisecond (the float copy, its page faults, and quantising it back).

    >>> Segmentation(binary=np.array([[0, 255]], np.uint8)).mask
    array([[0., 1.]], dtype=float32)
    """

    def __init__(self, mask: np.ndarray | None = None, facts: dict[str, Any] | None = None,
                 labels: np.ndarray | None = None, *, binary: np.ndarray | None = None) -> None:
        if mask is None and binary is None:
            raise ValueError("a Segmentation needs a mask or a binary mask")
        self._mask = mask
        self.binary = binary
        self.facts: dict[str, Any] = {} if facts is None else facts
        #: Multi-class methods asked for labels: uint8 H×W, 0 background, k the k-th of ``facts["classes"]``.
        self.labels = labels

    @property
    def mask(self) -> np.ndarray:
        if self._mask is None:
            assert self.binary is not None
            self._mask = self.binary.astype(np.float32)
            self._mask *= np.float32(1 / 255)
        return self._mask

    @mask.setter
    def mask(self, value: np.ndarray) -> None:
        self._mask = value
        self.binary = None

    @property
    def fraction(self) -> float:
        """The foreground fraction (the soft area for a soft mask)."""
        if self.binary is not None:
            return cv2.countNonZero(self.binary) / self.binary.size if self.binary.size else 0.0
        return float(self.mask.mean()) if self.mask.size else 0.0

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
    #: True when ``compute`` spends its time in OpenCV or NumPy calls that release the GIL and may run in several
    #: threads at once: ``--jobs`` then runs threads in one process, which overlap decoding, the method and
    #: encoding with no worker start-up (:func:`maskcli.engines.local.choose`).
    releases_gil: ClassVar[bool] = False
    #: True when ``compute`` also takes the image's integer samples (uint8/uint16 as decoded, grey H×W or RGB
    #: H×W×3) and works on them directly; others get float32 pixels.
    integer_samples: ClassVar[bool] = False

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
