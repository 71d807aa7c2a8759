"""Threshold levels as values: pure functions from a histogram (or a plane) to a level, as scikit-image's
``threshold_*`` functions are.

Every level is in image units ([0, 1]); the mask is made elsewhere (:mod:`maskcli.methods.global_threshold`).
A level function never reports through a side channel: where a method finds no level of its own it raises
:class:`NoLevel`, and its caller decides what to use instead (the threshold methods use Otsu's level and say so).

:data:`HISTOGRAM_LEVELS` is the table of the methods whose level depends on the histogram alone; each threshold
method of that kind is its entry there and nothing more.

>>> from maskcli.methods.histogram import histogram
>>> h = histogram(two_peaks(), bins=32)  # a bright peak at 0.75 beside a bigger dark one at 0.3
>>> {name: round(level(h), 4) for name, level in HISTOGRAM_LEVELS.items()}  # doctest: +NORMALIZE_WHITESPACE
{'otsu': 0.5156, 'li': 0.4924, 'triangle': 0.4844, 'yen': 0.3906, 'isodata': 0.5156, 'minimum': 0.5156}
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from maskcli.methods.histogram import Histogram, _between_class_variance, unit

__all__ = ["HISTOGRAM_LEVELS", "NoLevel", "fixed_level", "isodata_level", "li_level", "mean_level", "minimum_level",
           "multiotsu_levels", "otsu_level", "percentile_level", "relative_level", "triangle_level", "yen_level"]


def two_peaks() -> np.ndarray:
    """A 1×364 plane of 32 levels in two peaks (0.3, and a smaller one at 0.75): the examples' histogram."""
    x = np.linspace(0, 1, 32)
    counts = np.rint(40 * np.exp(-((x - 0.3) / 0.1) ** 2) + 20 * np.exp(-((x - 0.75) / 0.1) ** 2)).astype(int) + 1
    return np.repeat(x, counts).astype(np.float32)[None]


class NoLevel(ValueError):
    """A method found no level on this histogram; the message says why."""


def otsu_level(hist: Histogram) -> float:
    """Otsu's threshold: the bin centre that maximises the between-class variance.

    Parameters
    ----------
    hist : Histogram
        The plane's histogram (:func:`maskcli.methods.histogram.histogram`).

    Returns
    -------
    float
        The level; levels above it are the upper class. A constant histogram gives its one value.

    Examples
    --------
    >>> from maskcli.methods.histogram import histogram
    >>> h = histogram(np.array([[0.1, 0.2, 0.8, 0.9]], np.float32), bins=8)
    >>> round(otsu_level(h), 6)  # the first of the equally good splits
    0.25
    """
    if hist.constant or len(hist.counts) < 2:
        return hist.lo
    between, _ = _between_class_variance(hist)
    return float(hist.centers[int(np.argmax(between))])


def multiotsu_levels(hist: Histogram, classes: int) -> np.ndarray:
    """Multi-Otsu: the ``classes - 1`` levels that maximise the between-class variance of ``classes`` classes
    (``skimage.filters.threshold_multiotsu`` on the histogram); Otsu's level repeated where the histogram has
    fewer occupied bins than classes.

    Examples
    --------
    >>> from maskcli.methods.histogram import histogram
    >>> h = histogram(np.array([[0.0, 0.0, 0.5, 0.5, 1.0, 1.0]], np.float32))
    >>> [round(float(v), 4) for v in multiotsu_levels(h, 3)]
    [0.002, 0.502]
    >>> [round(float(v), 4) for v in multiotsu_levels(h, 4)]  # three occupied bins: Otsu's level thrice
    [0.002, 0.002, 0.002]
    """
    from skimage.filters import threshold_multiotsu

    if np.count_nonzero(hist.counts) < classes:
        return np.full(classes - 1, otsu_level(hist))
    return np.asarray(threshold_multiotsu(hist=(hist.counts, hist.centers), classes=classes))


def li_level(hist: Histogram) -> float:
    """Li's minimum cross-entropy threshold, iterated on the histogram (Li and Tam's iteration).

    References
    ----------
    .. [1] C. H. Li and C. K. Lee, "Minimum Cross Entropy Thresholding", Pattern Recognition 26(4), 617–625, 1993.
       https://doi.org/10.1016/0031-3203(93)90115-D
    .. [2] C. H. Li and P. K. S. Tam, "An Iterative Algorithm for Minimum Cross Entropy Thresholding", Pattern
       Recognition Letters 19(8), 771–776, 1998. https://doi.org/10.1016/S0167-8655(98)00057-9

    Examples
    --------
    >>> from maskcli.methods.histogram import histogram
    >>> round(li_level(histogram(np.array([[0.1, 0.2, 0.3, 0.8, 0.9]], np.float32))), 4)
    0.4255
    """
    counts = hist.counts
    # Work on levels offset to start at a positive value, as scikit-image does (logs of class means).
    values = hist.centers - hist.lo + (hist.centers[1] - hist.centers[0] if len(counts) > 1 else 1.0)
    offset = hist.centers[0] - values[0]
    tolerance = (values[1] - values[0]) / 2 if len(values) > 1 else 1e-6
    t = float((counts * values).sum() / counts.sum())
    for _ in range(1000):
        upper = values > t
        n1, n0 = counts[upper].sum(), counts[~upper].sum()
        if n1 == 0 or n0 == 0:
            break
        mean1 = (counts[upper] * values[upper]).sum() / n1
        mean0 = (counts[~upper] * values[~upper]).sum() / n0
        t_next = (mean0 - mean1) / (np.log(mean0) - np.log(mean1))
        if abs(t_next - t) < tolerance:
            t = float(t_next)
            break
        t = float(t_next)
    return float(t + offset)


def triangle_level(hist: Histogram) -> float:
    """Zack's triangle method: the bin farthest below the line from the histogram's peak to its far end (the
    longer tail).

    Examples
    --------
    >>> from maskcli.methods.histogram import histogram
    >>> plane = np.concatenate([np.full(50, 0.1), np.linspace(0.2, 1, 20)]).astype(np.float32)[None]
    >>> round(triangle_level(histogram(plane, bins=64)), 4)
    0.1211
    """
    counts = hist.counts
    nonzero = np.flatnonzero(counts)
    low, high = int(nonzero[0]), int(nonzero[-1])
    peak = int(np.argmax(counts))
    if low == high:
        return float(hist.centers[low])
    flip = peak - low < high - peak  # walk towards the longer tail
    if flip:
        counts = counts[::-1]
        low, peak = len(counts) - high - 1, len(counts) - peak - 1
    width = peak - low
    if width <= 0:
        return float(hist.centers[peak if not flip else len(counts) - peak - 1])
    x = np.arange(width)
    y = counts[x + low]
    norm = np.hypot(counts[peak], width)
    distance = counts[peak] / norm * x - width / norm * y
    index = int(np.argmax(distance)) + low
    if flip:
        index = len(counts) - index - 1
    return float(hist.centers[index])


def _skimage_level(function: str, hist: Histogram) -> float:
    """scikit-image's ``function`` on the histogram; Otsu's level with fewer than two occupied bins.

    Raises
    ------
    NoLevel
        scikit-image found none (e.g. a histogram that never becomes bimodal, for ``threshold_minimum``).
    """
    if np.count_nonzero(hist.counts) < 2:
        return otsu_level(hist)
    from skimage import filters

    try:
        return float(getattr(filters, function)(hist=(hist.counts, hist.centers)))
    except (RuntimeError, ValueError) as error:
        raise NoLevel(str(error).split("\n")[0].rstrip(".")) from None


def yen_level(hist: Histogram) -> float:
    """Yen's maximum correlation criterion (``skimage.filters.threshold_yen`` on the histogram).

    References
    ----------
    .. [1] J.-C. Yen, F.-J. Chang and S. Chang, "A New Criterion for Automatic Multilevel Thresholding", IEEE
       Transactions on Image Processing 4(3), 370–378, 1995. https://doi.org/10.1109/83.366472

    Examples
    --------
    >>> from skimage.filters import threshold_yen
    >>> from maskcli.methods.histogram import histogram
    >>> round(yen_level(histogram(two_peaks(), bins=32)), 4), round(float(threshold_yen(two_peaks(), nbins=32)), 4)
    (0.3906, 0.3906)
    """
    return _skimage_level("threshold_yen", hist)


def isodata_level(hist: Histogram) -> float:
    """Ridler–Calvard ISODATA: the level midway between the two class means it separates
    (``skimage.filters.threshold_isodata`` on the histogram).

    Examples
    --------
    >>> from skimage.filters import threshold_isodata
    >>> from maskcli.methods.histogram import histogram
    >>> round(isodata_level(histogram(two_peaks(), bins=32)), 4), round(float(threshold_isodata(two_peaks(), 32)), 4)
    (0.5156, 0.5156)
    """
    return _skimage_level("threshold_isodata", hist)


def minimum_level(hist: Histogram) -> float:
    """The valley between the two peaks of the histogram, smoothed until it has two
    (``skimage.filters.threshold_minimum`` on the histogram).

    Raises
    ------
    NoLevel
        The histogram never becomes bimodal.

    Examples
    --------
    >>> from maskcli.methods.histogram import histogram
    >>> round(minimum_level(histogram(two_peaks(), bins=32)), 4)
    0.5156
    >>> minimum_level(histogram(np.linspace(0, 1, 100, dtype=np.float32)[None], bins=16))
    Traceback (most recent call last):
    ...
    maskcli.methods.thresholding.NoLevel: Unable to find two maxima in histogram
    """
    return _skimage_level("threshold_minimum", hist)


def fixed_level(level: float) -> float:
    """An absolute level given in [0, 1], or in 8-bit units when above 1.

    >>> fixed_level(128), fixed_level(0.25)
    (0.5019607843137255, 0.25)
    """
    return level / 255.0 if level > 1 else level


def relative_level(hist: Histogram, fraction: float) -> float:
    """The level at ``fraction`` of the histogram's range [lo, hi].

    >>> from maskcli.methods.histogram import histogram
    >>> round(relative_level(histogram(np.array([[0.2, 0.4, 0.6]], np.float32)), 0.25), 6)
    0.3
    """
    return hist.lo + fraction * (hist.hi - hist.lo)


def mean_level(plane: np.ndarray) -> float:
    """The plane's mean level, in image units (an integer plane's mean level over its maximum).

    >>> mean_level(np.array([[0.0, 0.2, 1.0]], np.float32)), mean_level(np.array([[0, 255]], np.uint8))
    (0.4000000009934107, 0.5)
    """
    return float(cv2.mean(plane)[0]) * unit(plane)


def percentile_level(plane: np.ndarray, q: float) -> float:
    """The ``q``-th percentile of the plane's levels, in image units.

    >>> percentile_level(np.arange(8, dtype=np.float32)[None] / 7, 75)
    0.75
    """
    return float(np.percentile(plane, q)) * unit(plane)


#: The methods whose level depends on the histogram alone, by method name.
HISTOGRAM_LEVELS: dict[str, Callable[[Histogram], float]] = {
    "otsu": otsu_level, "li": li_level, "triangle": triangle_level,
    "yen": yen_level, "isodata": isodata_level, "minimum": minimum_level,
}
