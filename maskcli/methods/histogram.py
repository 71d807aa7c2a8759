"""Planes and their histograms: what every global threshold looks at, computed once per image.

A threshold looks at one plane of the image (:func:`prepare`: a channel, optionally smoothed) and finds its level
on the plane's histogram (:func:`histogram`), computed over the plane's own range [min, max] in ``bins`` bins (256
by default), as scikit-image's ``exposure.histogram(source_range='image')`` bins a float image: a narrow-range
16-bit image gets all its bins across the levels it actually uses instead of the few 8-bit levels it would
collapse to. Integer planes (8- and 16-bit samples, as decoded) are counted per level and folded into the bins, so
no float copy of the image is made. :func:`separability` scores a split of the histogram (Otsu's η).

>>> plane = prepare(np.array([[0, 100, 160, 255]], np.uint8), integer=True)
>>> h = histogram(plane, bins=4)
>>> h.counts.tolist(), round(separability(h, 0.5), 4)  # two even classes, each spread over two bins
([1.0, 1.0, 1.0, 1.0], 0.8)
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from maskcli.color import channel as extract_channel
from maskcli.imageops import to_unit_float

__all__ = ["Histogram", "histogram", "prepare", "separability", "unit"]


@dataclasses.dataclass(frozen=True)
class Histogram:
    """Counts of an image's levels in ``bins`` equal bins spanning [lo, hi]; ``centers`` in image units.

    ``index`` maps the plane to bins: for a float plane, the bin of every pixel (an image); for an integer plane,
    the bin of every possible level (a look-up table). The maximum maps one past the last bin.
    """

    counts: np.ndarray
    centers: np.ndarray
    lo: float
    hi: float
    index: np.ndarray | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def constant(self) -> bool:
        return not self.hi > self.lo


def unit(plane: np.ndarray) -> float:
    """The value of one level of ``plane`` in image units: 1/255 for uint8, 1/65535 for uint16, 1 for floats."""
    return 1.0 / np.iinfo(plane.dtype).max if plane.dtype in (np.uint8, np.uint16) else 1.0


def prepare(image: np.ndarray, channel: str = "gray", sigma: float = 0.0, *, integer: bool = False) -> np.ndarray:
    """The H×W plane a threshold looks at: the chosen channel, smoothed by a Gaussian of ``sigma`` px.

    An integer image (uint8/uint16 samples) stays integer when ``integer`` is true and the plane is its grey level
    (the caller works on levels; see :func:`unit`); otherwise the plane is float32 in [0, 1].

    >>> prepare(np.ones((2, 2, 3), np.float32)).shape
    (2, 2)
    >>> prepare(np.full((2, 2), 255, np.uint8), integer=True).dtype, prepare(np.full((2, 2), 255, np.uint8)).max()
    (dtype('uint8'), np.float32(1.0))
    """
    if image.dtype in (np.uint8, np.uint16):
        if integer and channel == "gray":
            plane = image if image.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
            if sigma and sigma > 0 and plane.size > 1:
                plane = _smooth(plane, float(sigma))
            return plane
        image = to_unit_float(image)
    plane = extract_channel(image, channel)
    if sigma and sigma > 0 and plane.size > 1:
        plane = _smooth(plane, float(sigma))
    return plane


def _smooth(plane: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian pre-smoothing in the plane's own sample type; a sigma beyond a few pixels through
    :func:`maskcli.composite.blend.gaussian_blur`, whose time and memory follow the image whatever the sigma (a
    sigma of 1e6 once took 9 GB).

    >>> _smooth(np.full((4, 4), 7, np.uint8), 1e9).tolist()[0]
    [7, 7, 7, 7]
    """
    if sigma <= 6:
        return cv2.GaussianBlur(plane, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    from maskcli.composite.blend import gaussian_blur

    smooth = gaussian_blur(plane, sigma)
    if plane.dtype in (np.uint8, np.uint16):
        return np.clip(np.rint(smooth), 0, np.iinfo(plane.dtype).max).astype(plane.dtype)
    return smooth


def _bin_index(values: np.ndarray, lo: float, hi: float, bins: int) -> np.ndarray:
    """The bin of each value (float32, image units); the maximum lands one past the last bin."""
    scale = bins / (hi - lo)
    if bins <= 256:
        # Fast path (about 10× cv2.calcHist on float32): quantise to the bin index in one saturating OpenCV pass
        # (round(y − ½ + 10⁻⁴) = floor(y) except within 10⁻⁴ of a bin's upper edge).
        return cv2.convertScaleAbs(values, alpha=scale, beta=-lo * scale - 0.4999)
    return np.clip(values * np.float32(scale) - np.float32(lo * scale), 0, bins).astype(np.uint32)


def histogram(plane: np.ndarray, bins: int = 256) -> Histogram:
    """The histogram of ``plane`` over its own range, as ``skimage.exposure.histogram(source_range='image')`` bins a
    float image.

    An integer plane (uint8, uint16) is counted per level: with no more levels than ``bins``, one bin per level
    centred on it (as scikit-image counts integer images), else each level goes whole into the bin its value falls
    in, exactly as the same image in float would be binned.

    >>> h = histogram(np.array([[0, 0.5, 1, 1]], np.float32), bins=4)
    >>> h.counts.tolist(), h.centers.tolist()
    ([1.0, 0.0, 1.0, 2.0], [0.125, 0.375, 0.625, 0.875])
    >>> histogram(np.array([[0, 128, 255, 255]], np.uint8), bins=4).counts.tolist()
    [1.0, 0.0, 1.0, 2.0]
    >>> h = histogram(np.array([[1000, 1001, 1003]], np.uint16))
    >>> h.counts.tolist(), [round(c * 65535) for c in h.centers]
    ([1.0, 1.0, 0.0, 1.0], [1000, 1001, 1002, 1003])
    """
    integer = plane.dtype in (np.uint8, np.uint16)
    if integer:
        top = int(np.iinfo(plane.dtype).max)
        levels = cv2.calcHist([plane], [0], None, [top + 1], [0, top + 1]).ravel().astype(np.float64)
        used = np.flatnonzero(levels)
        values = to_unit_float(np.arange(top + 1, dtype=plane.dtype)[None])  # every level, as the float image has it
        lo, hi = float(values[0, used[0]]), float(values[0, used[-1]])
    else:
        lo, hi, _, _ = cv2.minMaxLoc(plane)
    if not hi > lo:
        return Histogram(np.array([float(plane.size)]), np.array([lo]), lo, hi)
    if integer and used[-1] - used[0] < bins:
        # No more levels than bins: one bin per level, centred on it, as scikit-image counts integer images.
        first, count = int(used[0]), int(used[-1] - used[0]) + 1
        index = np.clip(np.arange(top + 1, dtype=np.int64) - first, 0, count)
        return Histogram(levels[first:first + count], values[0, first:first + count].astype(np.float64), lo, hi,
                         index)
    counts: np.ndarray
    if integer:
        index = _bin_index(values, lo, hi, bins).ravel()
        counts = np.bincount(index, weights=levels, minlength=bins + 1)
    else:
        index = _bin_index(plane, lo, hi, bins)
        if bins <= 256:
            counts = cv2.calcHist([index], [0], None, [256], [0, 256], accumulate=False).ravel()[: bins + 1]
        else:
            counts = np.bincount(index.ravel(), minlength=bins + 1)
    # The maximum lands one past the last bin (numpy's last bin is closed): fold it back.
    counts = np.asarray(counts, dtype=np.float64)
    counts[bins - 1] += counts[bins:].sum()
    counts = counts[:bins]
    centers = lo + (hi - lo) / bins * (np.arange(bins) + 0.5)
    return Histogram(counts, centers, lo, hi, index)


def _between_class_variance(hist: Histogram) -> tuple[np.ndarray, float]:
    """σ_B² for every split "bins 0..i | bins i+1..", and the total variance σ_T²."""
    counts, centers = hist.counts, hist.centers
    total = counts.sum()
    weight0 = np.cumsum(counts)[:-1] / total
    weight1 = 1.0 - weight0
    cumulative_mean = np.cumsum(counts * centers)[:-1] / total
    mean = float((counts * centers).sum() / total)
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mean * weight0 - cumulative_mean) ** 2 / (weight0 * weight1)
    between[~np.isfinite(between)] = 0.0
    variance = float((counts * (centers - mean) ** 2).sum() / total)
    return between, variance


def separability(hist: Histogram, threshold: float) -> float:
    """Otsu's η = σ_B² / σ_T² of the histogram split at ``threshold`` (levels above it in the upper class).

    >>> h = histogram(np.array([[0, 0, 1, 1]], np.float32))
    >>> separability(h, 0.5), separability(h, 1.0)
    (1.0, 0.0)
    """
    if hist.constant:
        return 0.0
    between, variance = _between_class_variance(hist)
    split = int(np.searchsorted(hist.centers, threshold, side="right")) - 1  # last bin of the lower class
    if variance <= 0 or split < 0 or split >= len(between):
        return 0.0
    return float(np.clip(between[split] / variance, 0.0, 1.0))
