"""What a compositing mode is, and the registry that holds them.

A mode is a small dataclass: its fields are its options (declared with :func:`maskcli.registry.option`), and
calling it with an image and its mask returns the composite::

    @modes.register("mine")
    @dataclasses.dataclass
    class Mine(Mode):
        summary: ClassVar[str] = "One line for `maskcli modes`."
        amount: float = option(0.5, "What it does.")

        def __call__(self, pixels, mask):
            return blend(pixels, pixels * self.amount, mask)

Images follow the one image convention (float32 H×W grey or H×W×3 RGB in [0, 1]); the mask is float32 H×W in
[0, 1], already fitted to the image. A mode returns float32 in [0, 1]: H×W×4 RGBA (straight alpha) when
``output_alpha`` is true, else H×W×3 or H×W. Modes are pickled to worker processes, so anything cached (a
background image) lives in a field that ``__getstate__`` drops.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from maskcli.composite.blend import estimate_foreground
from maskcli.registry import Registry

#: The subject's colour in a soft edge, from the image and its alpha: (pixels, mask) -> pixels.
ForegroundEstimator = Callable[[np.ndarray, np.ndarray], np.ndarray]


class Mode:
    """Base class of compositing modes. Subclasses are dataclasses whose fields are their options."""

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    #: One example command line, shown by ``maskcli modes NAME``.
    example: ClassVar[str] = ""

    @property
    def output_alpha(self) -> bool:
        """True when the result is RGBA (the CLI then refuses formats without transparency)."""
        return False

    def __call__(self, pixels: np.ndarray, mask: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def on_samples(self, samples: np.ndarray, inside: np.ndarray) -> np.ndarray | None:
        """The result as 8-bit samples, from the image's 8-bit ``samples`` and a hard mask (``inside``: H×W, bool or
        uint8, nonzero where the image is kept),
        where the mode has a way that gives exactly what the float path would after rounding; None: it has none.

        A pixel-by-pixel mode on a hard mask only picks between values: no float copy of the image is needed (a
        video's frames through ``--mode color`` spend their time in the codec, not in the composite).
        """
        return None

    def halo(self, mask: np.ndarray) -> int | None:
        """How many rows of context above and below a band of rows the mode needs to compute that band exactly as
        it would on the whole image (0 for a pixel-by-pixel mode); None when it needs the whole image.

        Runners composite large images band by band where this is not None, so that only the input's samples,
        the mask and the output are held whole (about 8 bytes per RGB pixel instead of 45). ``mask`` is the
        mask the mode will see (float, or integer levels), for modes whose needs depend on it.
        """
        return None

    def subject(self, pixels: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The subject's colour: the pixels, or with the mode's ``decontaminate`` option the colour estimated in
        the soft edge with the old background's share removed (blur-fusion by default; the estimator of
        :meth:`with_foreground` when one was given).

        >>> from maskcli.composite.isolate import Cutout
        >>> image = np.array([[0.8, 0.4, 0.0]], np.float32); alpha = np.array([[1.0, 0.5, 0.0]], np.float32)
        >>> Cutout(decontaminate=False).subject(image, alpha) is image
        True
        >>> Cutout().with_foreground(lambda pixels, mask: pixels * 0).subject(image, alpha).tolist()
        [[0.0, 0.0, 0.0]]
        """
        if not getattr(self, "decontaminate", False):
            return pixels
        estimator: ForegroundEstimator = self.__dict__.get("_foreground") or estimate_foreground
        return estimator(pixels, mask)

    def with_foreground(self, estimator: ForegroundEstimator | None) -> Mode:
        """A copy of this mode whose soft-edge colour comes from ``estimator`` (None: the default), as apply does
        with pymatting's estimate when the mask is an alpha matte (``refine="matting"``)."""
        mode = copy.copy(self)
        mode.__dict__["_foreground"] = estimator
        return mode

    def window(self, mask: np.ndarray) -> tuple[int, int, int, int] | None:
        """The part of the image the result shows, ``(top, left, bottom, right)`` (ends exclusive; it may reach past
        the image, where :meth:`band` is not called and the result holds :attr:`padding`), or None for the whole
        image. Runners composite only that window, band by band."""
        return None

    #: The value (a grey level or a colour, float in [0, 1]) of a window's part outside the image.
    padding: Any = 0.0

    def survey(self, pixels: np.ndarray, mask: np.ndarray, rows: slice,
               surveys: list[np.ndarray]) -> np.ndarray | None:
        """Per-row figures (an array with one row per row of ``pixels``, rows ``rows`` of the window) that the mode
        needs from the whole image before any band is composited, such as the sums behind a mean; None when it
        needs no more. ``surveys`` holds the passes so far: a runner going band by band stacks each pass's rows,
        hands them to :meth:`surveyed`, and asks again with one more pass, until the mode answers None."""
        return None

    def surveyed(self, figures: np.ndarray, index: int) -> np.ndarray:
        """The stacked figures of survey pass ``index`` (the whole window's rows) as later passes and bands read
        them (enhance equalises its stacked lightness here); as they are by default."""
        return figures

    def band(self, pixels: np.ndarray, mask: np.ndarray, rows: slice, size: tuple[int, int],
             surveys: list[np.ndarray]) -> np.ndarray:
        """The composite of a band: ``pixels`` and ``mask`` are rows ``rows`` of the window (with the context
        :meth:`halo` asked for), ``size`` the whole image's (height, width), ``surveys`` the passes of
        :meth:`survey` over the whole window. A pixel-by-pixel mode needs none of these: the default is the
        mode's own call."""
        return self(pixels, mask)

    def whole(self, pixels: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """:meth:`band` over the whole image, after the survey passes over it: what a mode that surveys computes
        when called, so that the whole image and its bands take the same steps."""
        surveys: list[np.ndarray] = []
        everything = slice(0, pixels.shape[0])
        while (figures := self.survey(pixels, mask, everything, surveys)) is not None:
            surveys.append(self.surveyed(figures, len(surveys)))
        return self.band(pixels, mask, everything, pixels.shape[:2], surveys)

    def __getstate__(self) -> dict[str, Any]:
        # Caches (fields whose names start with "_cache") are rebuilt in each worker process.
        return {key: (None if key.startswith("_cache") else value) for key, value in self.__dict__.items()}


#: One module per family registers its modes; naming one mode imports only its module.
modes: Registry[Mode] = Registry("mode", package="maskcli.composite", skip=("base", "blend", "colors"))
