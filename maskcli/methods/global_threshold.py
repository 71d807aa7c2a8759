"""Global thresholds: one level for the whole image, then one comparison.

Every method here computes a *value* from the image's histogram (as scikit-image's ``threshold_*`` functions do);
:func:`compare` turns image and value into the mask, with the polarity chosen in one place
(:func:`choose_polarity`). The histogram is computed once per image, over the image's own range
[min, max] in ``bins`` bins (256 by default), so a narrow-range 16-bit image gets all its bins across the levels it
actually uses instead of the few 8-bit levels it would collapse to.

Integer images (8- and 16-bit samples, as decoded) are thresholded on their integer levels: the histogram is
counted per level and folded into the bins, and the mask is one integer comparison, so no float copy of the image
is made. A bin is never split by the mask: every pixel of a bin lies on the side of the threshold its bin centre
does, so the mask is exactly the histogram split the method chose (a float comparison at a bin centre would put
the upper half of that bin's levels on the other side: on 16-bit data, a whole background level).

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
import threading
from typing import Any, ClassVar

import cv2
import numpy as np

from maskcli.color import CHANNELS, channel as extract_channel, check_channel
from maskcli.errors import OptionError
from maskcli.imageops import to_unit_float
from maskcli.methods.base import Method, Segmentation, methods
from maskcli.registry import option

__all__ = ["Histogram", "histogram", "prepare", "compare", "choose_polarity", "polarity_of", "mask_of", "split_above",
           "above_level", "compare_above", "binary_of", "unit", "separability", "ThresholdMethod", "otsu_level", "POLARITIES"]

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


def split_above(plane: np.ndarray, hist: Histogram, level: float) -> np.ndarray:
    """uint8 0/255: the pixels whose bin centre lies above ``level`` (the histogram split at ``level``).

    >>> plane = np.array([[0.0, 0.3, 0.45, 1.0]], np.float32)
    >>> split_above(plane, histogram(plane, bins=2), 0.3).tolist()  # 0.45 shares the lower bin with 0.3
    [[0, 0, 0, 255]]
    >>> split_above(np.array([[10, 200]], np.uint8), histogram(np.array([[10, 200]], np.uint8)), 0.5).tolist()
    [[0, 255]]
    """
    split = int(np.searchsorted(hist.centers, level, side="right")) - 1  # the last bin of the lower class
    if hist.index is None:  # a constant plane: one bin
        return above_level(plane, level)
    if plane.dtype in (np.uint8, np.uint16):
        # The highest level whose bin is in the lower class; levels increase with bins, so one comparison.
        lower = np.flatnonzero(hist.index <= split) if split >= 0 else np.empty(0, np.intp)
        cut = int(lower[-1]) if lower.size else -1
        return _integer_above(plane, cut)
    if hist.index.dtype == np.uint8:
        _, above = cv2.threshold(hist.index, split, 255, cv2.THRESH_BINARY)
        return above
    return np.where(hist.index > split, np.uint8(255), np.uint8(0))


def _integer_above(plane: np.ndarray, cut: int) -> np.ndarray:
    """uint8 0/255 where the integer plane is above level ``cut``."""
    if cut < 0:
        return np.full(plane.shape, 255, np.uint8)
    if plane.dtype == np.uint8:
        _, above = cv2.threshold(plane, cut, 255, cv2.THRESH_BINARY)
        return above
    return cv2.compare(plane, np.full(plane.shape, cut, plane.dtype), cv2.CMP_GT)


def above_level(plane: np.ndarray, level: float) -> np.ndarray:
    """uint8 0/255 where ``plane > level`` (``level`` in image units; an integer plane compares its levels).

    >>> above_level(np.array([[127, 128, 129]], np.uint8), 128 / 255).tolist()
    [[0, 0, 255]]
    """
    if level != level:  # NaN: nothing passes
        return np.zeros(plane.shape, np.uint8)
    if plane.dtype in (np.uint8, np.uint16):
        top = np.iinfo(plane.dtype).max
        # A level given as k/255 must compare as level k: a hair of tolerance for its rounding.
        return _integer_above(plane, int(np.clip(np.floor(level * top + 1e-6), -1, top)))
    return cv2.compare(plane, np.full(plane.shape, level, np.float32), cv2.CMP_GT) if plane.size == 1 else \
        cv2.threshold(plane, float(level), 255, cv2.THRESH_BINARY)[1].astype(np.uint8)


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
    return polarity_of(compare(plane, threshold, "bright"), polarity)


def polarity_of(above: np.ndarray, polarity: str) -> str:
    """:func:`choose_polarity` from the pixels above the threshold (any non-zero value counts as above)."""
    if polarity != "auto":
        return polarity
    if above.shape[0] < 3 or above.shape[1] < 3:
        return "bright"
    bright_share = cv2.countNonZero(above) / above.size
    border = np.concatenate([above[0], above[-1], above[1:-1, 0], above[1:-1, -1]])
    border_share = float(np.count_nonzero(border)) / border.size
    # score(bright) = a + w·b, score(dark) = (1 − a) + w·(1 − b); bright wins when a + w·b ≤ (1 + w) / 2.
    weight = AUTO_BORDER_WEIGHT
    return "bright" if bright_share + weight * border_share <= (1 + weight) / 2 else "dark"


def binary_of(above: np.ndarray, polarity: str) -> np.ndarray:
    """The uint8 0/255 foreground from uint8 0/255 ``above``: as it is for bright, its complement for dark."""
    if polarity == "bright":
        return above
    return cv2.bitwise_not(above) if above.size > 1 else 255 - above


def mask_of(above: np.ndarray, polarity: str) -> np.ndarray:
    """The float32 0/1 mask from uint8 0/255 ``above``: as it is for bright, its complement for dark.

    >>> mask_of(np.array([[0, 255]], np.uint8), "dark")
    array([[1., 0.]], dtype=float32)
    """
    return np.multiply(binary_of(above, polarity), np.float32(1 / 255), dtype=np.float32)


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
        return mask_of(compare_above(plane, threshold), polarity)
    kind = cv2.THRESH_BINARY if polarity == "bright" else cv2.THRESH_BINARY_INV
    if threshold != threshold:  # NaN: nothing passes
        threshold = np.inf
    _, mask = cv2.threshold(plane, float(threshold), 1.0, kind)
    return mask


def compare_above(plane: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """uint8 0/255 where ``plane > levels`` (a threshold image of the plane's shape).

    >>> compare_above(np.array([[0.2, 0.5]], np.float32), np.array([[0.1, 0.6]], np.float32)).tolist()
    [[255, 0]]
    """
    if plane.size == 1:  # OpenCV would read a 1×1 array as a scalar
        return np.where(plane > levels, np.uint8(255), np.uint8(0))
    return cv2.compare(plane, levels.astype(np.float32, copy=False), cv2.CMP_GT)


@dataclasses.dataclass
class PlaneMethod(Method):
    """The options every threshold shares, global or local: which side, which channel, how much smoothing."""

    polarity: str = option("bright", "Which side is foreground: bright (above), dark (at or below), auto (the "
                           "smaller side that touches the border less; see choose_polarity).", choices=POLARITIES)
    channel: str = option("gray", "Channel thresholded: " + " | ".join(CHANNELS) + ".")
    sigma: float = option(0.0, "Gaussian pre-smoothing in pixels (0: none; at most twice the "
                                    "image's long side: larger is clamped).")
    #: Thresholds take the image's samples: global ones work on the levels, local ones make their own float plane
    #: (not kept with the image: 4 bytes per pixel less at the peak).
    integer_samples: ClassVar[bool] = True

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
    #: True when the level comes from the histogram: the mask is then the histogram's split (whole bins).
    from_histogram: ClassVar[bool] = True
    #: The image-sized work (smoothing, histogram, comparison) is OpenCV and NumPy; the level is found on the
    #: histogram alone.
    releases_gil: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 2 <= self.bins <= 65536:
            raise OptionError("bins", f"must be between 2 and 65536, got {self.bins}")

    def threshold(self, plane: np.ndarray, hist: Histogram) -> float:
        """The level (image units) for this plane; subclasses implement it."""
        raise NotImplementedError

    def plane(self, image: np.ndarray) -> np.ndarray:
        """The plane thresholded: integer levels when the image has them and nothing smooths them."""
        return prepare(image, self.channel, self.sigma, integer=not self.sigma)

    def compute(self, image: np.ndarray) -> Segmentation:
        plane = self.plane(image)
        hist = histogram(plane, self.bins)
        facts: dict[str, Any] = {}
        self._facts = facts
        if hist.constant:
            level = hist.lo
            facts.setdefault("warnings", []).append("constant image: no threshold separates anything")
        else:
            level = float(self.threshold(plane, hist))
        above = split_above(plane, hist, level) if self.from_histogram else above_level(plane, level)
        polarity = polarity_of(above, self.polarity)
        facts.update(threshold=round(float(level), 6), polarity=polarity,
                     confidence=round(separability(hist, level), 4))
        return Segmentation(facts=facts, binary=binary_of(above, polarity))

    @property
    def _facts(self) -> dict[str, Any]:
        """The facts of the image this thread is thresholding: one method may serve several threads at once."""
        return _current.facts  # type: ignore[no-any-return]

    @_facts.setter
    def _facts(self, facts: dict[str, Any]) -> None:
        _current.facts = facts

    def _fallback(self, hist: Histogram, why: str) -> float:
        """Otsu's level, used when a method finds no level of its own (noted in the facts)."""
        self._facts.setdefault("warnings", []).append(f"{self.name}: {why}; used Otsu's level instead")
        return otsu_level(hist)


_current = threading.local()


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
    from_histogram: ClassVar[bool] = False

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
            plane = self.plane(image)
            hist = histogram(plane, self.bins)
            self._facts = {}
            level = self.threshold(plane, hist)
            above = above_level(plane, level)
            polarity = polarity_of(above, self.polarity)
            return Segmentation(binary=binary_of(above, polarity), facts=
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
        plane = self.plane(image)
        hist = histogram(plane, self.bins)
        self._facts = {}
        if plane.dtype != np.float32:
            plane = to_unit_float(plane)
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

    from_histogram: ClassVar[bool] = False

    def threshold(self, plane: np.ndarray, hist: Histogram) -> float:
        return float(cv2.mean(plane)[0]) * unit(plane)


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
    from_histogram: ClassVar[bool] = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.q <= 100:
            raise OptionError("q", f"must be in [0, 100], got {self.q}")

    def threshold(self, plane: np.ndarray, hist: Histogram) -> float:
        return float(np.percentile(plane, self.q)) * unit(plane)
