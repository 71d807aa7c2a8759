"""Alpha matting: a soft alpha for hair, fur and lace from any mask, with pymatting.

A segmentation mask says *where* the subject is; a matte says *how much* of each edge pixel belongs to it. The
step has three parts:

1. :func:`trimap`: sure foreground, sure background, and an unknown band. The band is ``band`` × the image's long
   side wide on each side of the 0.5 level (so it follows the image's size) *and* around every pixel the mask
   itself is unsure of (values strictly between ``uncertain`` and ``1 − uncertain``, such as a CNN's soft edge),
   so a blurry mask gets a wider band where it is blurry; what the mask is sure of stays sure.
2. :func:`estimate_alpha`: pymatting solves for alpha in the band (closed-form, KNN, large-kernel, random-walk
   or shared matting: ``solver``), and the sure regions keep 0 and 1. Where the mask is confident (at most
   ``KEEP`` or at least ``1 − KEEP``) the solved alpha stays on the mask's side of 0.5: the matte adds the soft
   edge the mask lacks without moving its outline, so its IoU at 0.5 does not drop (the solvers misread
   low-contrast edges, which cost the horses' IoU 0.05 when they could flip them).
3. :func:`estimate_foreground`: pymatting's multi-level foreground estimation (Germer et al. 2020), the subject's
   colour without the old background's share, for cut-outs with clean edges.

:func:`matte` runs the three on the band's bounding box only, and scales that box down to ``max_side`` pixels
(long side) when it is larger, then upsamples alpha inside the band: the time and memory guard, since the solvers'
cost grows with the number of pixels in the box (see ``benchmarks/bench_matting.py`` for measured times).

pymatting is an optional extra (``pip install 'maskcli[matting]'``; it brings numba and llvmlite, about 200 MB).
Without it :func:`require` raises :class:`~maskcli.errors.SetupError` with the install command.

>>> import numpy as np
>>> mask = np.zeros((40, 40), np.float32); mask[10:30, 10:30] = 1
>>> t = trimap(mask, band=0.05)
>>> sorted(np.unique(t).tolist()), float(t[20, 20]), float(t[0, 0]), float(t[10, 20])
([0.0, 0.5, 1.0], 1.0, 0.0, 0.5)
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
import time
from typing import Any

import cv2
import numpy as np

from maskcli.errors import OptionError, SetupError

__all__ = ["SOLVERS", "DEFAULT_SOLVER", "DEFAULT_BAND", "DEFAULT_MAX_SIDE", "available", "require", "trimap",
           "keep_side", "estimate_alpha", "estimate_foreground", "matte"]

#: pymatting's alpha solvers by short name (``--matting-solver``).
SOLVERS = ("cf", "knn", "lkm", "rw", "sm")
#: The default solver, chosen by ``benchmarks/bench_matting.py`` (``benchmarks/results/matting.md``): on 6
#: composites with known alpha, shared matting (sm) had the lowest SAD, MSE and gradient error (4.40, 8.38, 0.05
#: against 4.72, 8.65, 0.05 for large-kernel, 5.12, 10.70, 0.06 for closed-form) in the least time (about 1.4 s
#: of solving per image, against 3 s for closed-form and 38 s for large-kernel).
DEFAULT_SOLVER = "sm"
#: Half-width of the unknown band as a fraction of the image's long side (``--matting-band``).
DEFAULT_BAND = 0.03
#: Values strictly between this and 1 − this count as the mask's own uncertainty (the band grows around them).
#: Measured on the matting set of ``benchmarks/bench_matting.py`` (U²-Net-P masks, band 0.02): 0.02 rather than
#: 0.05 took SAD from 4.80 to 4.54.
UNCERTAIN = 0.02
#: Where the mask is at most this or at least 1 − this, the matte keeps the mask's side of 0.5. Measured on the
#: same set and 25 of its horse photos (raw mask IoU 0.897): 0.3 gave SAD 4.41 and the horses' IoU 0.900; 0.2
#: gave SAD 4.39 but IoU 0.896.
KEEP = 0.3
#: The long side (px) the band's bounding box is scaled down to before solving (``--matting-max-side``).
DEFAULT_MAX_SIDE = 800

INSTALL_HINT = "pip install 'maskcli[matting]'"


def available() -> bool:
    """True when pymatting can be imported (without importing it).

    >>> isinstance(available(), bool)
    True
    """
    if "pymatting" in sys.modules:  # imported already, or blocked (None)
        return sys.modules["pymatting"] is not None
    return importlib.util.find_spec("pymatting") is not None


def require() -> None:
    """Raise :class:`SetupError` with the install command when pymatting is missing."""
    if not available():
        raise SetupError(f"alpha matting needs pymatting, which is not installed: {INSTALL_HINT}")


def check_settings(solver: str = DEFAULT_SOLVER, band: float = DEFAULT_BAND,
                   max_side: int = DEFAULT_MAX_SIDE) -> None:
    """Validate matting settings; each error names its parameter.

    >>> check_settings(solver="cff")
    Traceback (most recent call last):
    ...
    maskcli.errors.OptionError: matting_solver: unknown solver 'cff'; valid: cf, knn, lkm, rw, sm
    """
    if solver not in SOLVERS:
        raise OptionError("matting_solver", f"unknown solver {solver!r}; valid: {', '.join(SOLVERS)}")
    if not (isinstance(band, (int, float)) and 0 < band <= 0.25):
        raise OptionError("matting_band", f"must be a fraction of the long side in (0, 0.25], got {band}")
    if not (isinstance(max_side, int) and max_side >= 32):
        raise OptionError("matting_max_side", f"must be a whole number of pixels ≥ 32, got {max_side}")


def _disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def trimap(mask: np.ndarray, band: float = DEFAULT_BAND, uncertain: float = UNCERTAIN,
           level: float = 0.5) -> np.ndarray:
    """A trimap (float32: 0 background, 0.5 unknown, 1 foreground) from a soft or hard mask.

    Parameters
    ----------
    mask : ndarray
        float32 H×W in [0, 1].
    band : float
        Half-width of the unknown band around the edge (the ``level`` contour), as a fraction of the long side;
        at least 1 px.
    uncertain : float
        Mask values in (uncertain, 1 − uncertain) are unknown too, with ``band`` around them.
    level : float
        Where the edge lies.

    Examples
    --------
    >>> mask = np.zeros((1, 9), np.float32); mask[0, 4:] = 1; mask[0, 1] = 0.3
    >>> trimap(mask, band=0.12).tolist()  # 1 px each side of the edge, and around the unsure pixel at 1
    [[0.5, 0.5, 0.5, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0]]
    """
    mask = np.asarray(mask, np.float32)
    return _trimap(mask, max(1, round(band * max(mask.shape))), uncertain, level)


def _trimap(mask: np.ndarray, radius: int, uncertain: float = UNCERTAIN, level: float = 0.5) -> np.ndarray:
    binary = (mask >= level).astype(np.uint8)
    disc = _disc(max(1, int(radius)))
    edge = cv2.dilate(binary, disc, borderType=cv2.BORDER_REPLICATE) - cv2.erode(binary, disc,
                                                                                 borderType=cv2.BORDER_REPLICATE)
    unsure = ((mask > uncertain) & (mask < 1 - uncertain)).astype(np.uint8)
    unknown = (edge > 0) | (cv2.dilate(unsure, disc, borderType=cv2.BORDER_REPLICATE) > 0)
    out = binary.astype(np.float32)
    out[unknown] = 0.5
    return out


def keep_side(alpha: np.ndarray, mask: np.ndarray, keep: float = KEEP, level: float = 0.5) -> np.ndarray:
    """``alpha`` kept on ``mask``'s side of ``level`` wherever the mask is confident (≤ ``keep`` or ≥ 1 − ``keep``).

    >>> keep_side(np.array([[0.2, 0.9, 0.2]], np.float32), np.array([[0.9, 0.1, 0.6]], np.float32)).tolist()
    [[0.5, 0.49609375, 0.20000000298023224]]
    """
    alpha = np.asarray(alpha, np.float32)
    mask = np.asarray(mask, np.float32)
    inside, outside = mask >= max(1 - keep, level), mask <= min(keep, level)
    # Just under the level, and still under it once written with 8 bits (127/255).
    below = np.float32(level - 1 / 256)
    out = np.where(inside, np.maximum(alpha, np.float32(level)), alpha)
    return np.where(outside & (out >= level), np.minimum(out, below), out).astype(np.float32)


def _rgb64(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(np.clip(image[..., :3], 0, 1), dtype=np.float64)


def estimate_alpha(image: np.ndarray, tri: np.ndarray, solver: str = DEFAULT_SOLVER) -> np.ndarray:
    """Alpha (float32 H×W in [0, 1]) for an image and a trimap, with one of pymatting's solvers.

    A trimap without both sure foreground and sure background has nothing to propagate from: its unknown pixels
    take the one known side's value (or 0.5 when nothing is known).

    >>> if available():
    ...     image = np.zeros((20, 20, 3), np.float32); image[:, 10:] = 1
    ...     tri = np.full((20, 20), 0.5, np.float32); tri[:, :5] = 0; tri[:, 15:] = 1
    ...     alpha = estimate_alpha(image, tri, "cf")
    ...     print(bool(alpha[:, :10].max() < 0.1 and alpha[:, 10:].min() > 0.9))
    ... else:
    ...     print(True)
    True
    """
    check_settings(solver=solver)
    require()
    tri = np.asarray(tri, np.float32)
    known_fg, known_bg = tri >= 1.0, tri <= 0.0
    if not (tri == 0.5).any():
        return tri.astype(np.float32)
    if not known_fg.any() or not known_bg.any():
        fill = 1.0 if known_fg.any() else 0.0 if known_bg.any() else 0.5
        return np.where(tri == 0.5, np.float32(fill), tri).astype(np.float32)
    import pymatting

    function = getattr(pymatting, f"estimate_alpha_{solver}")
    # pymatting prints its preconditioner's retries; stdout may carry an image (``segment - > mask.png``).
    with contextlib.redirect_stdout(io.StringIO()):
        alpha = function(_rgb64(image), tri.astype(np.float64))
    alpha = np.clip(np.nan_to_num(alpha), 0, 1).astype(np.float32)
    alpha[known_fg] = 1.0  # the solvers leave known pixels close to, not exactly, their value
    alpha[known_bg] = 0.0
    return alpha


def estimate_foreground(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The subject's colour (float32, the image's shape, in [0, 1]) given alpha: pymatting's multi-level estimate.

    Where alpha is 0 or 1 the result is the image; in the soft band it is the colour the subject would have over
    any background, so a cut-out shows no halo of the old one. Only the band's bounding box (and a margin) is
    solved, so the cost follows the edge, not the image.

    >>> if available():
    ...     image = np.zeros((8, 8, 3), np.float32); image[:, 4:] = 0.8; image[:, 3] = 0.4
    ...     alpha = np.zeros((8, 8), np.float32); alpha[:, 4:] = 1; alpha[:, 3] = 0.5
    ...     print(round(float(estimate_foreground(image, alpha)[4, 3, 0]), 1))
    ... else:
    ...     print(0.8)
    0.8
    """
    require()
    from pymatting import estimate_foreground_ml

    alpha = np.asarray(alpha, np.float32)
    out = np.array(image, np.float32)  # the input's shape (grey stays grey), a copy
    soft = (alpha > 0) & (alpha < 1)
    # Only the soft band's box (with a margin of known colour around it) is solved: the rest is the image.
    box = _box(soft, max(16, round(0.02 * max(alpha.shape))))
    if box is None:
        return out
    rows, cols = box
    with contextlib.redirect_stdout(io.StringIO()):
        foreground = estimate_foreground_ml(_rgb64(out[rows, cols]), alpha[rows, cols].astype(np.float64))
    foreground = np.clip(foreground, 0, 1).astype(np.float32)
    if out.ndim == 2:
        foreground = foreground.mean(axis=2)
    region = out[rows, cols]
    crop_soft = soft[rows, cols]
    region[crop_soft] = foreground[crop_soft]
    return out


def _box(unknown: np.ndarray, margin: int) -> tuple[slice, slice] | None:
    rows = np.flatnonzero(unknown.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(unknown[rows[0]:rows[-1] + 1].any(axis=0))
    height, width = unknown.shape
    return (slice(max(rows[0] - margin, 0), min(rows[-1] + margin + 1, height)),
            slice(max(cols[0] - margin, 0), min(cols[-1] + margin + 1, width)))


def matte(image: np.ndarray, mask: np.ndarray, *, solver: str = DEFAULT_SOLVER, band: float = DEFAULT_BAND,
          max_side: int = DEFAULT_MAX_SIDE, foreground: bool = False,
          facts: dict[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Alpha (and optionally the foreground colour) for ``image`` from a rough ``mask``.

    Parameters
    ----------
    image : ndarray
        float32 H×W×3 (or H×W grey) in [0, 1].
    mask : ndarray
        float32 H×W in [0, 1], soft or hard: where the subject roughly is.
    solver : {"cf", "knn", "lkm", "rw", "sm"}
        pymatting's alpha solver: closed-form, KNN, large-kernel, random-walk, shared matting.
    band : float
        Half-width of the unknown band, a fraction of the long side (see :func:`trimap`).
    max_side : int
        The band's bounding box is solved at most this many pixels on its long side, then alpha is upsampled.
    foreground : bool
        Also estimate the subject's colour (:func:`estimate_foreground`).
    facts : dict, optional
        Filled with what was done: the solver, the working size, the unknown fraction and the seconds taken.

    Returns
    -------
    alpha : ndarray
        float32 H×W in [0, 1].
    foreground : ndarray or None
        float32 H×W×3 in [0, 1] when ``foreground`` is true.

    Examples
    --------
    A soft, blurry mask of a sharp square is snapped to the square's edge:

    >>> image = np.zeros((48, 48, 3), np.float32); image[12:36, 12:36] = (0.9, 0.6, 0.2)
    >>> blurry = cv2.GaussianBlur((image[..., 0] > 0).astype(np.float32), (0, 0), 3)
    >>> if available():
    ...     alpha, _ = matte(image, blurry, band=0.05)
    ...     print(bool(np.abs(alpha - (image[..., 0] > 0)).mean() < np.abs(blurry - (image[..., 0] > 0)).mean()))
    ... else:
    ...     print(True)
    True
    """
    check_settings(solver=solver, band=band, max_side=max_side)
    require()
    started = time.perf_counter()
    mask = np.asarray(mask, np.float32)
    height, width = mask.shape
    tri = trimap(mask, band)
    alpha = tri.copy()
    unknown = tri == 0.5
    radius = max(1, round(band * max(height, width)))
    box = _box(unknown, 2 * radius + 2)  # a margin of known pixels around the band feeds the solver
    work = (0, 0)
    if box is not None:
        rows, cols = box
        crop_image = np.asarray(image)[rows, cols]
        crop_mask = mask[rows, cols]
        crop_h, crop_w = crop_mask.shape
        scale = min(1.0, max_side / max(crop_h, crop_w))
        if scale < 1.0:
            size = (max(2, round(crop_w * scale)), max(2, round(crop_h * scale)))
            small_image = cv2.resize(np.ascontiguousarray(crop_image, np.float32), size, interpolation=cv2.INTER_AREA)
            small_mask = cv2.resize(crop_mask, size, interpolation=cv2.INTER_AREA)
            small_tri = _trimap(small_mask, round(radius * scale))  # the same band, in the small image's pixels
            small_alpha = estimate_alpha(small_image, small_tri, solver)
            solved = cv2.resize(small_alpha, (crop_w, crop_h), interpolation=cv2.INTER_LINEAR)
            work = (size[1], size[0])
        else:
            tri_crop = tri[rows, cols]
            solved = estimate_alpha(crop_image, tri_crop, solver)
            work = (crop_h, crop_w)
        region = alpha[rows, cols]
        crop_unknown = unknown[rows, cols]
        region[crop_unknown] = solved[crop_unknown]
    alpha = keep_side(np.clip(alpha, 0, 1), mask)
    colour = estimate_foreground(image, alpha) if foreground else None
    if facts is not None:
        facts.update({"matting_solver": solver, "matting_unknown_fraction": round(float(unknown.mean()), 6),
                      "matting_work_size": list(work), "matting_seconds": round(time.perf_counter() - started, 3)})
    return alpha, colour
