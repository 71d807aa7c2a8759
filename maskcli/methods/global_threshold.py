"""Global thresholds: one level for the whole image, then one comparison.

Every method here computes a *value* from the image's histogram (as scikit-image's ``threshold_*`` functions do);
:func:`compare` turns image and value into the mask, with the polarity chosen in one place
(:func:`choose_polarity`). The histogram is computed once per image, over the image's own range
[min, max] in ``bins`` bins (256 by default), so a narrow-range 16-bit image gets all its bins across the levels it
actually uses instead of the few 8-bit levels it would collapse to.

Facts reported per image: ``threshold`` (in [0, 1] image units), ``polarity`` (the one used), and ``confidence``:
Otsu's separability η = σ_B² / σ_T² of the histogram split at the threshold used (1 for two spikes, near 0 when the
threshold separates nothing).

>>> import numpy as np
>>> from maskcli.methods import methods
>>> image = np.zeros((4, 4), np.float32); image[1:3, 1:3] = 0.8
>>> result = methods.create("otsu").compute(image)
>>> result.mask.sum(), result.facts["polarity"], result.facts["confidence"]
(np.float32(4.0), 'bright', 1.0)
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import cv2
import numpy as np

from maskcli.color import CHANNELS, channel as extract_channel, check_channel
from maskcli.errors import OptionError
from maskcli.methods.base import Method, Segmentation, methods
from maskcli.registry import option

__all__ = ["Histogram", "histogram", "prepare", "compare", "choose_polarity", "separability", "ThresholdMethod",
           "otsu_level", "POLARITIES"]

POLARITIES = ("bright", "dark", "auto")

# Auto polarity rule (see ``choose_polarity``): each side of the threshold scores its share of the image plus ¾ of its
# share of the image border; the side with the smaller score is the foreground (an object is the smaller part and
# stands inside its background, which runs off the frame). Mean IoU on ../shared/data, reproduced by
# ``python benchmarks/quality_classical.py --polarity``:
#
#   rule (weight of the border share)    Otsu: nuclei  horses     Li: nuclei  horses
#   bright (fixed)                             0.443    0.150         0.573    0.162
#   dark (fixed)                               0.078    0.336         0.039    0.338
#   minority side only (0)                     0.443    0.307         0.573    0.334
#   area + ½ border                            0.443    0.332         0.573    0.341
#   area + ¾ border (this rule)                0.443    0.337         0.573    0.351
#   area + 1 × border                          0.443    0.340         0.559    0.351
#   border side only (∞)                       0.428    0.349         0.559    0.365
#
# ¾ is the only weight tried that is at least as good as the better fixed polarity on both sets for both methods.
AUTO_BORDER_WEIGHT = 0.75


@dataclasses.dataclass(frozen=True)
class Histogram:
    """Counts of an image's levels in ``bins`` equal bins spanning [lo, hi]; ``centers`` in image units."""

    counts: np.ndarray
    centers: np.ndarray
    lo: float
    hi: float

    @property
    def constant(self) -> bool:
        return not self.hi > self.lo


def prepare(image: np.ndarray, channel: str = "gray", sigma: float = 0.0) -> np.ndarray:
    """The float32 H×W plane a threshold looks at: the chosen channel, smoothed by a Gaussian of ``sigma`` px.

    >>> prepare(np.ones((2, 2, 3), np.float32)).shape
    (2, 2)
    """
    plane = extract_channel(image, channel)
    if sigma and sigma > 0 and plane.size > 1:
        plane = cv2.GaussianBlur(plane, (0, 0), float(sigma), borderType=cv2.BORDER_REFLECT)
    return plane


def histogram(plane: np.ndarray, bins: int = 256) -> Histogram:
    """The histogram of ``plane`` over its own range, as ``skimage.exposure.histogram(source_range='image')``.

    >>> h = histogram(np.array([[0, 0.5, 1, 1]], np.float32), bins=4)
    >>> h.counts.tolist(), h.centers.tolist()
    ([1.0, 0.0, 1.0, 2.0], [0.125, 0.375, 0.625, 0.875])
    """
    lo, hi, _, _ = cv2.minMaxLoc(plane)
    if not hi > lo:
        return Histogram(np.array([float(plane.size)]), np.array([lo]), lo, hi)
    width = (hi - lo) / bins
    scale = bins / (hi - lo)
    if bins <= 256:
        # Fast path (about 10× cv2.calcHist on float32): quantise to the bin index in one saturating OpenCV pass
        # (round(y − ½ + 10⁻⁴) = floor(y) except within 10⁻⁴ of a bin's upper edge), then count bytes.
        index = cv2.convertScaleAbs(plane, alpha=scale, beta=-lo * scale - 0.4999)
        counts = cv2.calcHist([index], [0], None, [256], [0, 256], accumulate=False).ravel()[: bins + 1]
    else:
        index = np.clip(plane * np.float32(scale) - np.float32(lo * scale), 0, bins).astype(np.uint32)
        counts = np.bincount(index.ravel(), minlength=bins + 1).astype(np.float64)
    # The maximum lands one past the last bin (numpy's last bin is closed): fold it back.
    counts = np.asarray(counts, dtype=np.float64)
    counts[bins - 1] += counts[bins:].sum()
    counts = counts[:bins]
    centers = lo + width * (np.arange(bins) + 0.5)
    return Histogram(counts.astype(np.float64), centers, lo, hi)


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


def choose_polarity(plane: np.ndarray, threshold: float | np.ndarray, polarity: str) -> str:
    """Which side of ``threshold`` is foreground: ``bright`` (above) or ``dark`` (at or below).

    ``threshold`` is a level, or a threshold image of the plane's shape (local thresholds). ``auto`` scores each
    side by its share of the image plus ¾ of its share of the image border and picks the side with the smaller
    score (ties go to bright): the object is the smaller part, and the background runs off the frame. See
    ``AUTO_BORDER_WEIGHT`` for the measurement behind the rule.

    >>> plane = np.zeros((5, 5), np.float32); plane[1:4, 1:4] = 1
    >>> choose_polarity(plane, 0.5, "auto"), choose_polarity(1 - plane, 0.5, "auto")
    ('bright', 'dark')
    """
    if polarity != "auto":
        return polarity
    if plane.shape[0] < 3 or plane.shape[1] < 3:
        return "bright"
    above = compare(plane, threshold, "bright")
    bright_share = cv2.countNonZero(above) / plane.size
    border = np.concatenate([above[0], above[-1], above[1:-1, 0], above[1:-1, -1]])
    border_share = float(np.count_nonzero(border)) / border.size
    # score(bright) = a + w·b, score(dark) = (1 − a) + w·(1 − b); bright wins when a + w·b ≤ (1 + w) / 2.
    weight = AUTO_BORDER_WEIGHT
    return "bright" if bright_share + weight * border_share <= (1 + weight) / 2 else "dark"


def compare(plane: np.ndarray, threshold: float | np.ndarray, polarity: str) -> np.ndarray:
    """The one comparison every threshold shares: bright ⇒ ``plane > threshold``; dark is its exact complement.

    ``threshold`` is a level or a threshold image (local methods).

    >>> compare(np.array([[0.2, 0.5, 0.7]], np.float32), 0.5, "bright")
    array([[0., 0., 1.]], dtype=float32)
    >>> compare(np.array([[0.2, 0.5, 0.7]], np.float32), 0.5, "dark")
    array([[1., 1., 0.]], dtype=float32)
    >>> compare(np.array([[0.2, 0.5]], np.float32), np.array([[0.1, 0.6]], np.float32), "bright")
    array([[1., 0.]], dtype=float32)
    """
    if isinstance(threshold, np.ndarray) and threshold.ndim:
        above = cv2.compare(plane, threshold.astype(np.float32, copy=False), cv2.CMP_GT)
        if polarity != "bright":
            above = cv2.bitwise_not(above)
        return cv2.multiply(above, 1 / 255, dtype=cv2.CV_32F)
    kind = cv2.THRESH_BINARY if polarity == "bright" else cv2.THRESH_BINARY_INV
    if threshold != threshold:  # NaN: nothing passes
        threshold = np.inf
    _, mask = cv2.threshold(plane, float(threshold), 1.0, kind)
    return mask


@dataclasses.dataclass
class PlaneMethod(Method):
    """The options every threshold shares, global or local: which side, which channel, how much smoothing."""

    polarity: str = option("bright", "Which side is foreground: bright (above), dark (at or below), auto (the "
                           "smaller side that touches the border less; see choose_polarity).", choices=POLARITIES)
    channel: str = option("gray", "Channel thresholded: " + " | ".join(CHANNELS) + ".")
    sigma: float = option(0.0, "Gaussian pre-smoothing in pixels (0: none).")

    def __post_init__(self) -> None:
        if self.polarity not in POLARITIES:
            raise OptionError("polarity", f"must be one of {', '.join(POLARITIES)}, not {self.polarity!r}")
        self.channel = check_channel(self.channel)
        if not self.sigma >= 0 or not np.isfinite(self.sigma):
            raise OptionError("sigma", f"must be ≥ 0 pixels, got {self.sigma}")


@dataclasses.dataclass
class ThresholdMethod(PlaneMethod):
    """Shared options and the shared compute of the global thresholds; subclasses only compute a value."""

    bins: int = option(256, "Histogram bins over the image's own range (more, e.g. 4096, for 16-bit detail).")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 2 <= self.bins <= 65536:
            raise OptionError("bins", f"must be between 2 and 65536, got {self.bins}")

    def threshold(self, plane: np.ndarray, hist: Histogram) -> float:
        """The level (image units) for this plane; subclasses implement it."""
        raise NotImplementedError

    def compute(self, image: np.ndarray) -> Segmentation:
        plane = prepare(image, self.channel, self.sigma)
        hist = histogram(plane, self.bins)
        facts: dict[str, Any] = {}
        self._facts = facts
        if hist.constant:
            level = hist.lo
            facts.setdefault("warnings", []).append("constant image: no threshold separates anything")
        else:
            level = float(self.threshold(plane, hist))
        polarity = choose_polarity(plane, level, self.polarity)
        mask = compare(plane, level, polarity)
        facts.update(threshold=round(float(level), 6), polarity=polarity,
                     confidence=round(separability(hist, level), 4))
        return Segmentation(mask, facts)

    def _fallback(self, hist: Histogram, why: str) -> float:
        """Otsu's level, used when a method finds no level of its own (noted in the facts)."""
        self._facts.setdefault("warnings", []).append(f"{self.name}: {why}; used Otsu's level instead")
        return otsu_level(hist)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_facts", None)
        return state


def otsu_level(hist: Histogram) -> float:
    """Otsu's threshold from a histogram: the bin centre that maximises the between-class variance.

    >>> h = histogram(np.array([[0.1, 0.2, 0.8, 0.9]], np.float32), bins=8)
    >>> round(otsu_level(h), 6)  # the first of the equally good splits
    0.25
    """
    if hist.constant or len(hist.counts) < 2:
        return hist.lo
    between, _ = _between_class_variance(hist)
    return float(hist.centers[int(np.argmax(between))])


@methods.register("fixed")
@dataclasses.dataclass
class Fixed(ThresholdMethod):
    """A fixed level: absolute (``level`` in [0, 1], or 8-bit units when above 1) or a fraction of the range.

    >>> image = np.array([[0.2, 0.4, 0.6]], np.float32)
    >>> Fixed(level=0.5).compute(image).mask.tolist()
    [[0.0, 0.0, 1.0]]
    >>> Fixed(level=0.25, relative=True).compute(image).facts["threshold"]  # 0.2 + 0.25 × 0.4
    0.3
    """

    summary: ClassVar[str] = "A fixed level: absolute, 8-bit units, or a fraction of the image's range."
    example: ClassVar[str] = "maskcli segment scans/ -o masks/ -m fixed -p level=128"
    level: float = option(0.5, "The level: in [0, 1], or in 8-bit units (1, 255]; with relative, a fraction "
                          "of [min, max].")
    relative: bool = option(False, "Read level as a fraction of the image's own range [min, max].")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.level <= 255 or (self.relative and self.level > 1):
            raise OptionError("level", f"must be in [0, 1] (or 8-bit units up to 255 when absolute), "
                              f"got {self.level}")

    def threshold(self, plane: np.ndarray, hist: Histogram) -> float:
        if self.relative:
            return hist.lo + self.level * (hist.hi - hist.lo)
        return self.level / 255.0 if self.level > 1 else self.level

    def compute(self, image: np.ndarray) -> Segmentation:
        if not self.relative:  # a constant image still has a meaningful comparison with an absolute level
            plane = prepare(image, self.channel, self.sigma)
            hist = histogram(plane, self.bins)
            self._facts = {}
            level = self.threshold(plane, hist)
            polarity = choose_polarity(plane, level, self.polarity)
            return Segmentation(compare(plane, level, polarity),
                                {"threshold": round(level, 6), "polarity": polarity,
                                 "confidence": round(separability(hist, level), 4)})
        return super().compute(image)


@methods.register("otsu")
@dataclasses.dataclass
class Otsu(ThresholdMethod):
    """Otsu's method: the level that maximises the between-class variance of the histogram.

    >>> Otsu().compute(np.array([[0.1, 0.2, 0.8, 0.9]], np.float32)).mask.tolist()
    [[0.0, 0.0, 1.0, 1.0]]
    """

    summary: ClassVar[str] = "Otsu's threshold: the level that best separates two classes (the default)."
    example: ClassVar[str] = "maskcli segment cells/ -o masks/ -m otsu --polarity auto --sigma 1"

    def threshold(self, plane: np.ndarray, hist: Histogram) -> float:
        return otsu_level(hist)


@methods.register("multiotsu")
@dataclasses.dataclass
class MultiOtsu(ThresholdMethod):
    """Multi-Otsu: ``classes`` classes split by ``classes - 1`` levels; the foreground is chosen among them.

    By default the foreground lies above the highest level (bright) or at or below the lowest (dark). ``level``
    picks another split (0 = lowest); ``keep`` names the classes kept outright (0 = darkest), e.g. ``keep=1,2``.

    >>> image = np.array([[0.0, 0.0, 0.5, 0.5, 1.0, 1.0]], np.float32)
    >>> MultiOtsu().compute(image).mask.tolist()
    [[0.0, 0.0, 0.0, 0.0, 1.0, 1.0]]
    >>> MultiOtsu(keep=(1,)).compute(image).mask.tolist()
    [[0.0, 0.0, 1.0, 1.0, 0.0, 0.0]]
    """

    summary: ClassVar[str] = "Multi-level Otsu: several classes; keep the brightest, darkest or chosen ones."
    example: ClassVar[str] = "maskcli segment tissue/ -o masks/ -m multiotsu -p classes=3 -p keep=1,2"
    classes: int = option(3, "Number of classes (2–5).")
    level: int | None = option(None, "Which level splits foreground from background (0 = lowest); default: "
                               "the highest for bright, the lowest for dark.")
    keep: tuple[int, ...] | None = option(None, "Classes kept as foreground, e.g. 1,2 (0 = darkest); overrides "
                                          "level and polarity.")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 2 <= self.classes <= 5:
            raise OptionError("classes", f"must be between 2 and 5, got {self.classes}")
        if self.level is not None and not -(self.classes - 1) <= self.level < self.classes - 1:
            raise OptionError("level", f"must index one of the {self.classes - 1} levels, got {self.level}")
        if self.keep is not None:
            self.keep = tuple(int(k) for k in self.keep)
            bad = [k for k in self.keep if not 0 <= k < self.classes]
            if bad or not self.keep:
                raise OptionError("keep", f"classes are numbered 0..{self.classes - 1}, got {self.keep}")

    def levels(self, hist: Histogram) -> np.ndarray:
        from skimage.filters import threshold_multiotsu

        if np.count_nonzero(hist.counts) < self.classes:
            return np.full(self.classes - 1, otsu_level(hist))
        return np.asarray(threshold_multiotsu(hist=(hist.counts, hist.centers), classes=self.classes))

    def threshold(self, plane: np.ndarray, hist: Histogram) -> float:
        levels = self.levels(hist)
        self._facts["levels"] = [round(float(v), 6) for v in levels]
        if self.level is not None:
            return float(levels[self.level])
        return float(levels[0] if self.polarity == "dark" else levels[-1])

    def compute(self, image: np.ndarray) -> Segmentation:
        if self.keep is None:
            return super().compute(image)
        plane = prepare(image, self.channel, self.sigma)
        hist = histogram(plane, self.bins)
        self._facts = {}
        levels = self.levels(hist) if not hist.constant else np.full(self.classes - 1, hist.lo)
        labels = np.digitize(plane, levels, right=True)  # class k: levels[k-1] < v <= levels[k]
        mask = np.isin(labels, self.keep).astype(np.float32)
        facts = {"levels": [round(float(v), 6) for v in levels], "threshold": round(float(levels[-1]), 6),
                 "polarity": "classes", "kept": list(self.keep),
                 "confidence": round(separability(hist, float(levels[-1])), 4)}
        return Segmentation(mask, facts)


@methods.register("li")
@dataclasses.dataclass
class Li(ThresholdMethod):
    """Li's minimum cross-entropy threshold, iterated on the histogram.

    Parameters
    ----------
    polarity, channel, sigma, bins
        As for every threshold method (:class:`ThresholdMethod`).

    Returns
    -------
    Segmentation
        From :meth:`compute`: the mask, with the threshold and polarity among its facts.

    References
    ----------
    .. [1] C. H. Li and C. K. Lee, "Minimum Cross Entropy Thresholding", Pattern Recognition 26(4), 617–625, 1993.
       https://doi.org/10.1016/0031-3203(93)90115-D
    .. [2] C. H. Li and P. K. S. Tam, "An Iterative Algorithm for Minimum Cross Entropy Thresholding", Pattern
       Recognition Letters 19(8), 771–776, 1998. https://doi.org/10.1016/S0167-8655(98)00057-9

    Examples
    --------
    >>> round(Li().compute(np.array([[0.1, 0.2, 0.3, 0.8, 0.9]], np.float32)).facts["threshold"], 2)
    0.43
    """

    summary: ClassVar[str] = "Li's minimum cross-entropy threshold (good for dim objects, e.g. nuclei)."
    example: ClassVar[str] = "maskcli segment nuclei/ -o masks/ -m li --sigma 2 --fill-holes"

    def threshold(self, plane: np.ndarray, hist: Histogram) -> float:
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
        return t + offset


def _hist_or_otsu(method: ThresholdMethod, function: Any, hist: Histogram, **kwargs: Any) -> float:
    if np.count_nonzero(hist.counts) < 2:
        return otsu_level(hist)
    try:
        return float(function(hist=(hist.counts, hist.centers), **kwargs))
    except (RuntimeError, ValueError) as error:
        return method._fallback(hist, str(error).split("\n")[0].rstrip("."))


@methods.register("yen")
@dataclasses.dataclass
class Yen(ThresholdMethod):
    """Yen's maximum correlation criterion (``skimage.filters.threshold_yen`` on the shared histogram).

    Parameters
    ----------
    polarity, channel, sigma, bins
        As for every threshold method (:class:`ThresholdMethod`).

    Returns
    -------
    Segmentation
        From :meth:`compute`: the mask, with the threshold and polarity among its facts.

    References
    ----------
    .. [1] J.-C. Yen, F.-J. Chang and S. Chang, "A New Criterion for Automatic Multilevel Thresholding", IEEE
       Transactions on Image Processing 4(3), 370–378, 1995. https://doi.org/10.1109/83.366472

    Examples
    --------
    >>> Yen().compute(np.array([[0.1, 0.2, 0.8, 0.9]], np.float32)).mask.tolist()
    [[0.0, 0.0, 1.0, 1.0]]
    """

    summary: ClassVar[str] = "Yen's maximum-correlation threshold (bright small objects)."
    example: ClassVar[str] = "maskcli segment stars/ -o masks/ -m yen"

    def threshold(self, plane: np.ndarray, hist: Histogram) -> float:
        from skimage.filters import threshold_yen

        return _hist_or_otsu(self, threshold_yen, hist)


@methods.register("isodata")
@dataclasses.dataclass
class Isodata(ThresholdMethod):
    """Ridler–Calvard ISODATA: the level midway between the two class means it separates.

    >>> Isodata().compute(np.array([[0.1, 0.2, 0.8, 0.9]], np.float32)).mask.tolist()
    [[0.0, 0.0, 1.0, 1.0]]
    """

    summary: ClassVar[str] = "ISODATA (Ridler–Calvard): midway between the two class means."
    example: ClassVar[str] = "maskcli segment scans/ -o masks/ -m isodata --polarity dark"

    def threshold(self, plane: np.ndarray, hist: Histogram) -> float:
        from skimage.filters import threshold_isodata

        return _hist_or_otsu(self, threshold_isodata, hist)


@methods.register("minimum")
@dataclasses.dataclass
class Minimum(ThresholdMethod):
    """The valley between the two peaks of the smoothed histogram (Otsu's level if it never becomes bimodal).

    >>> image = np.repeat(np.array([0.1, 0.15, 0.2, 0.8, 0.85, 0.9], np.float32), [3, 5, 3, 3, 5, 3])[None]
    >>> float(Minimum(bins=16).compute(image).mask.sum())
    11.0
    """

    summary: ClassVar[str] = "The valley between the two histogram peaks (bimodal images)."
    example: ClassVar[str] = "maskcli segment parts/ -o masks/ -m minimum"

    def threshold(self, plane: np.ndarray, hist: Histogram) -> float:
        from skimage.filters import threshold_minimum

        return _hist_or_otsu(self, threshold_minimum, hist)


@methods.register("triangle")
@dataclasses.dataclass
class Triangle(ThresholdMethod):
    """Zack's triangle method: the level farthest below the line from the histogram peak to its far end.

    >>> image = np.concatenate([np.full(50, 0.1), np.linspace(0.2, 1, 20)]).astype(np.float32)[None]
    >>> Triangle(bins=64).compute(image).facts["threshold"] < 0.3
    True
    """

    summary: ClassVar[str] = "Triangle threshold: for one big peak and a long tail (sparse objects)."
    example: ClassVar[str] = "maskcli segment sparse/ -o masks/ -m triangle"

    def threshold(self, plane: np.ndarray, hist: Histogram) -> float:
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


@methods.register("mean")
@dataclasses.dataclass
class Mean(ThresholdMethod):
    """The mean grey level as the threshold.

    >>> Mean().compute(np.array([[0.0, 0.2, 1.0]], np.float32)).facts["threshold"]
    0.4
    """

    summary: ClassVar[str] = "The mean level: a quick, robust split of evenly lit scenes."
    example: ClassVar[str] = "maskcli segment scans/ -o masks/ -m mean --polarity dark"

    def threshold(self, plane: np.ndarray, hist: Histogram) -> float:
        return float(cv2.mean(plane)[0])


@methods.register("percentile")
@dataclasses.dataclass
class Percentile(ThresholdMethod):
    """The ``q``-th percentile of the levels: with bright polarity about (100 − q) % of the pixels are kept.

    >>> Percentile(q=75).compute(np.arange(8, dtype=np.float32)[None] / 7).mask.sum()
    np.float32(2.0)
    """

    summary: ClassVar[str] = "The q-th percentile: keep a known share of the pixels."
    example: ClassVar[str] = "maskcli segment sky/ -o masks/ -m percentile -p q=90"
    q: float = option(50.0, "Percentile in [0, 100]; bright keeps the levels above it.")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.q <= 100:
            raise OptionError("q", f"must be in [0, 100], got {self.q}")

    def threshold(self, plane: np.ndarray, hist: Histogram) -> float:
        return float(np.percentile(plane, self.q))
