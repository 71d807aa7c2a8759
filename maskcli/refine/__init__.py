"""The refinement chain: one set of small steps, in one documented order, built the same way by every verb.

:class:`Refinement` holds the settings (one field per refinement option of ``maskcli segment``; ``maskcli apply``
uses ``hard``, ``feather`` and ``invert``, and presets any of them); :func:`refinement` builds one from settings,
and :meth:`Refinement.apply` runs the steps it turns on in this order, whatever order the options were given in:

1. **open → close → erode → dilate** (:mod:`maskcli.refine.morphology`), each with an elliptical structuring
   element of the given radius. On a soft mask these are grey-level morphology (min/max filters), so a CNN's
   probabilities stay soft.
2. **fill holes** (:mod:`maskcli.refine.regions`): background regions not touching the image border; with
   ``max_hole`` only those up to that many pixels (giving ``max_hole`` turns hole filling on).
3. **min size**: foreground regions (8-connected) smaller than ``min_size`` pixels are removed.
4. **keep largest**: only the ``keep_largest`` largest regions stay.
5. **refine**: ``grabcut`` re-segments the image seeded by the mask (a hard result; :mod:`maskcli.refine.grabcut`, the
   routine the ``grabcut`` method runs too); ``guided`` snaps a soft mask's edges to
   the image's edges with He et al.'s guided filter (:mod:`maskcli.refine.guided`; a soft result; radius = long
   side / 100, at least 2 px, ε = 10⁻⁴). Measured on 30 weizmann_horses images with the truth at 1/8 resolution
   upsampled as a stand-in for a coarse probability map: IoU at 0.5 rose from 0.933 to 0.939; from a
   1/4-resolution map (already close) it fell from 0.980 to 0.969, and larger radii or ε lowered it further. Use
   it on coarse maps. ``matting`` computes a real alpha matte in a band around the edge with pymatting
   (:mod:`maskcli.matting`: trimap, solver, size guard; an optional extra), for hair, fur and other fine,
   semi-transparent edges.
6. **binarise**: ``hard LEVEL`` binarises at LEVEL; ``soft=False`` at 0.5; otherwise the mask stays as it is
   (hard methods stay hard, soft masks such as CNN probabilities stay soft).
7. **invert**.
8. **feather** (:mod:`maskcli.refine.feather`): soft edges ``feather`` pixels wide. It comes after binarising, so
   ``hard`` then ``feather`` gives a clean edge made soft, never a feather thrown away.

Steps 2–4 find regions on the mask binarised at 0.5 (or at ``hard`` when given) and then clear or fill those regions
in the mask itself, so they also keep soft values soft.

>>> import numpy as np
>>> mask = np.zeros((8, 8), np.float32); mask[1:6, 1:6] = 1; mask[3, 3] = 0; mask[7, 7] = 1
>>> out = Refinement(fill_holes=True, min_size=2).apply(mask, np.zeros((8, 8), np.float32))
>>> int(out.sum()), out[3, 3], out[7, 7]
(25, np.float32(1.0), np.float32(0.0))
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from maskcli import matting
from maskcli.errors import OptionError
from maskcli.masks import fill_binary_holes, invert, to_hard
from maskcli.refine.feather import feather
from maskcli.refine.grabcut import grabcut_refine
from maskcli.refine.guided import guided_filter
from maskcli.refine.morphology import morphology
from maskcli.refine.regions import fill_holes, keep_largest, remove_small

__all__ = ["REFINERS", "Refinement", "feather", "fill_binary_holes", "fill_holes", "grabcut_refine",
           "guided_filter", "keep_largest", "morphology", "refinement", "remove_small"]

#: Values of ``refine``.
REFINERS = ("grabcut", "guided", "matting")


@dataclasses.dataclass
class Refinement:
    """The refinement settings of ``maskcli segment``; :meth:`apply` runs them in the fixed order of this module.

    Parameters
    ----------
    open, close, erode, dilate : int or None
        Radii in pixels of the morphology steps (0 or None: off).
    fill_holes : bool
        Fill holes inside regions.
    max_hole : int or None
        Fill only holes up to this many pixels (implies ``fill_holes``).
    min_size : int or None
        Remove regions smaller than this many pixels.
    keep_largest : int or None
        Keep only the k largest regions.
    refine : {None, "grabcut", "guided", "matting"}
        Re-segment with GrabCut seeded by the mask, snap soft edges to the image with the guided filter, or
        compute an alpha matte around the edge (:func:`maskcli.matting.matte`).
    matting_solver, matting_band, matting_max_side : str, float, int
        With ``refine="matting"``: pymatting's solver, the unknown band's half-width (fraction of the long side)
        and the largest side solved at full resolution (see :mod:`maskcli.matting`).
    invert : bool
        Swap foreground and background.
    feather : float or None
        Width in pixels of soft edges.
    hard : float or None
        Binarise the result at this level in (0, 1].
    soft : bool or None
        True: keep soft values; False: binarise at 0.5; None: leave the mask as it comes.

    >>> Refinement(open=-1)
    Traceback (most recent call last):
    ...
    maskcli.errors.OptionError: open: must be a whole number of pixels ≥ 0, got -1
    """

    open: int | None = None
    close: int | None = None
    erode: int | None = None
    dilate: int | None = None
    fill_holes: bool = False
    max_hole: int | None = None
    min_size: int | None = None
    keep_largest: int | None = None
    refine: str | None = None
    matting_solver: str = matting.DEFAULT_SOLVER
    matting_band: float = matting.DEFAULT_BAND
    matting_max_side: int = matting.DEFAULT_MAX_SIDE
    invert: bool = False
    feather: float | None = None
    hard: float | None = None
    soft: bool | None = None

    def __post_init__(self) -> None:
        for name in ("open", "close", "erode", "dilate", "min_size"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not float(value).is_integer() or value < 0):
                raise OptionError(name, f"must be a whole number of pixels ≥ 0, got {value}")
            setattr(self, name, None if value is None else int(value))
        for name in ("max_hole", "keep_largest"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not float(value).is_integer() or value < 1):
                raise OptionError(name, f"must be a whole number ≥ 1, got {value}")
            setattr(self, name, None if value is None else int(value))
        if self.max_hole is not None:
            self.fill_holes = True
        if self.refine is not None:
            self.refine = str(self.refine).lower()
            if self.refine in ("", "none"):
                self.refine = None
            elif self.refine not in REFINERS:
                raise OptionError("refine", f"must be one of {', '.join(REFINERS)}, not {self.refine!r}")
        matting.check_settings(self.matting_solver, self.matting_band, self.matting_max_side)
        changed = [name for name, default in (("matting_solver", matting.DEFAULT_SOLVER),
                                              ("matting_band", matting.DEFAULT_BAND),
                                              ("matting_max_side", matting.DEFAULT_MAX_SIDE))
                   if getattr(self, name) != default]
        if changed and self.refine != "matting":
            raise OptionError(changed[0], "works with `refine='matting'` only")
        if self.refine == "matting":
            matting.require()  # a missing optional extra stops the run before the first image
        if self.feather is not None and not (math.isfinite(self.feather) and self.feather >= 0):
            raise OptionError("feather", f"must be a width in pixels ≥ 0, got {self.feather}")
        if self.hard is not None and not (0 < self.hard <= 1):
            raise OptionError("hard", f"level must be in (0, 1], got {self.hard}")
        if self.hard is not None and self.soft:
            raise OptionError("hard", "cannot be combined with `soft=True`")
        if self.soft is False and self.feather:
            raise OptionError("feather", "gives soft edges; it cannot be combined with `soft=False`")

    @property
    def level(self) -> float:
        """The level at which regions are found (and the output binarised): ``hard`` or 0.5."""
        return self.hard if self.hard is not None else 0.5

    @property
    def needs_color(self) -> bool:
        """Only the GrabCut, guided and matting refinements look at the image; the rest work on the mask alone."""
        return self.refine is not None

    @property
    def foreground_estimator(self) -> Callable[[np.ndarray, np.ndarray], np.ndarray] | None:
        """How a cut-out should estimate the subject's colour in the soft edge of masks refined here: pymatting's
        multi-level estimate for an alpha matte (``refine="matting"``; in the matte's soft band it had less colour
        error than blur-fusion, ``benchmarks/results/matting.md``), else None (the compositing mode's default).

        >>> Refinement(refine="guided").foreground_estimator is None
        True
        """
        return matting.estimate_foreground if self.refine == "matting" else None

    def steps(self) -> list[tuple[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]]:
        """The steps these settings turn on, in the chain's one order (see the module), as (name, step) pairs;
        each step takes the mask and the image and returns the new mask."""
        level = self.level
        chain: list[tuple[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]] = []
        for operation in ("open", "close", "erode", "dilate"):
            radius = getattr(self, operation)
            if radius:
                chain.append((operation, functools.partial(_morphology_step, operation=operation, radius=radius)))
        if self.fill_holes:
            chain.append(("fill_holes", lambda m, _: fill_holes(m, self.max_hole, level)))
        if self.min_size:
            chain.append(("min_size", lambda m, _: remove_small(m, self.min_size or 0, level)))
        if self.keep_largest:
            chain.append(("keep_largest", lambda m, _: keep_largest(m, self.keep_largest or 0, level)))
        if self.refine == "grabcut":
            chain.append(("grabcut", lambda m, image: _grabcut(m, image, level)))
        elif self.refine == "guided":
            chain.append(("guided", _guided))
        elif self.refine == "matting":
            chain.append(("matting", self._matte))
        if self.hard is not None or self.soft is False:
            chain.append(("binarise", lambda m, _: to_hard(m, level)))
        if self.invert:
            chain.append(("invert", lambda m, _: invert(m)))
        if self.feather:
            chain.append(("feather", lambda m, _: feather(m, self.feather or 0.0)))
        return chain

    def _matte(self, mask: np.ndarray, image: np.ndarray) -> np.ndarray:
        alpha, _ = matting.matte(image, mask, solver=self.matting_solver, band=self.matting_band,
                                 max_side=self.matting_max_side)
        return alpha

    def apply(self, mask: np.ndarray, image: np.ndarray) -> np.ndarray:
        """The refined mask (float32 H×W in [0, 1]); ``image`` guides GrabCut and the guided filter."""
        out = np.asarray(mask, dtype=np.float32)
        for _, step in self.steps():
            out = step(out, image)
        return np.ascontiguousarray(out, dtype=np.float32)


def _morphology_step(mask: np.ndarray, image: np.ndarray, *, operation: str, radius: int) -> np.ndarray:
    return morphology(mask, operation, radius)


def _grabcut(mask: np.ndarray, image: np.ndarray, level: float) -> np.ndarray:
    return grabcut_refine(mask, image, level=level)


def _guided(mask: np.ndarray, image: np.ndarray) -> np.ndarray:
    # Radius = long side / 100, at least 2 px, eps = 1e-4: measured in the module's notes.
    return guided_filter(mask, image, radius=max(2, round(max(mask.shape) / 100)), eps=1e-4)


def refinement(settings: Mapping[str, Any] | None) -> Refinement | None:
    """The one way every verb builds its refinement from settings (field names of :class:`Refinement`).

    Nothing asked gives None: the method's mask (hard, or a CNN's probabilities) passes through untouched.

    >>> refinement({}) is None, [name for name, _ in refinement({"feather": 2, "hard": 0.5}).steps()]
    (True, ['binarise', 'feather'])
    >>> refinement({"blur": 1})
    Traceback (most recent call last):
    ...
    maskcli.errors.OptionError: refinement: no setting 'blur' (settings: open, close, erode, dilate, ...)
    """
    if not settings:
        return None
    known = [field.name for field in dataclasses.fields(Refinement)]
    for key in settings:
        if key not in known:
            raise OptionError("refinement", f"no setting {key!r} (settings: {', '.join(known)})")
    return Refinement(**settings)

