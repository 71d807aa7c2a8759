"""Training settings measured from the data: what ``maskcli train`` uses where the user chose nothing.

Each choice is a pure function of numbers measured from the training pairs, and :func:`decide` returns every
choice with the measurement behind it, for the run's record and the checkpoint. An explicit setting always wins.

The rules and the figures they were set from (``benchmarks/results/train.md``, ``train_defaults.md``):

* **flips**: grey images with no brightness trend from top to bottom have no "up" (microscopy): flip vertically
  too; colour photos keep horizontal flips only (a horse upside down teaches nothing);
* **input size**: the thinnest structure of the masks (foreground or background, whichever is thinner; its mean
  width is twice its area over its outline) spans at least :data:`MIN_STRUCTURE_PX` pixels of the input: nuclei
  (width 2.8 % of the side) come out at 448, EM membranes (1 %) at the 512 cap, horses (10 %) at the model's 320;
* **crop**: twice the typical object's extent at that input, so a patch holds an object and its surroundings:
  horses (one object, a quarter of the image) train on whole images, nuclei and cells on the CPU's 192 patches;
* **batch size**: at least :data:`MIN_STEPS` optimiser steps an epoch (20 EM slices in batches of 4 made 5 steps
  and levelled off near 0.70; batches of 2 reached 0.765);
* **both classes**: scored on the mean IoU of mask and inverse when the foreground covers most of each image
  (all-foreground already scores 0.78 on EM);
* **learning rate**: warmup over the first epoch, then a cosine decay over the run's plan (its time budget or its
  epochs); a lower peak when the starting model already segments the validation set well (a high rate first
  disturbs a good network: horses fell from 0.922 to 0.913 after one epoch at 1e-4);
* **epochs**: as many as fit the time budget, from the measured length of the epochs so far.

The schedule and the epoch plan themselves run inside the loop (:mod:`maskcli.cnn.schedule`).

>>> decision = Decision("flips", "hv", "grey share 1.00, vertical trend 0.02: no up")
>>> decision.as_dict()["value"]
'hv'
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

__all__ = [
    "Decision", "DEFAULT_CPU_BUDGET", "MIN_STRUCTURE_PX", "MIN_STEPS", "parse_duration", "format_duration",
    "grey_share", "vertical_trend", "choose_flips", "structure_width", "object_extent", "choose_size",
    "choose_crop", "choose_batch_size", "foreground_share", "choose_both_classes", "peak_lr", "decide",
    "package_version",
]

#: The time budget of a run on the CPU when none is given, in seconds.
DEFAULT_CPU_BUDGET = 15 * 60.0
#: The thinnest structure of the masks spans at least this many pixels of the model's input.
MIN_STRUCTURE_PX = 12.0
#: The largest input side chosen on the CPU (a step at 512 costs about 2.5 times one at 320).
MAX_CPU_SIZE = 512
#: Optimiser steps an epoch that the batch size aims for.
MIN_STEPS = 10
#: The peak learning rate, and the lower one for a starting model that already scores :data:`GOOD_START`.
PEAK_LR, GENTLE_LR, GOOD_START = 1e-4, 3e-5, 0.8


@dataclasses.dataclass(frozen=True)
class Decision:
    """One setting: its value, and what was measured to choose it (or that the user set it)."""

    name: str
    value: Any
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "reason": self.reason}


def package_version() -> str:
    """The installed package's version."""
    from maskcli._version import __version__

    return str(__version__)


_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in a duration such as ``90s``, ``15m``, ``1.5h`` or ``1h30m`` (a bare number is seconds; ``0``
    or ``none``: no limit).

    >>> parse_duration("15m"), parse_duration("1h30m"), parse_duration("45"), parse_duration("none")
    (900.0, 5400.0, 45.0, 0.0)
    >>> parse_duration("soon")
    Traceback (most recent call last):
    ...
    ValueError: not a duration: 'soon' (examples: 90s, 15m, 1.5h, 1h30m; 0 or none for no limit)
    """
    cleaned = text.strip().lower()
    if cleaned in ("none", "0"):
        return 0.0
    if re.fullmatch(r"\d+(\.\d+)?", cleaned):
        return float(cleaned)
    parts = re.findall(r"(\d+(?:\.\d+)?)([smh])", cleaned)
    if not parts or "".join(n + u for n, u in parts) != cleaned:
        raise ValueError(f"not a duration: {text!r} (examples: 90s, 15m, 1.5h, 1h30m; 0 or none for no limit)")
    return sum(float(number) * _UNITS[unit] for number, unit in parts)


def format_duration(seconds: float) -> str:
    """A budget as a person writes it.

    >>> format_duration(900), format_duration(5400), format_duration(75)
    ('15m', '1h30m', '75s')
    """
    seconds = int(round(seconds))
    if seconds % 60:
        return f"{seconds}s"
    hours, minutes = divmod(seconds // 60, 60)
    return (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes or not hours else "")


def _grey(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else image[..., :3].mean(axis=2)


def grey_share(images: Sequence[np.ndarray]) -> float:
    """The share of images whose colour channels agree (within 2 % of the range): grey images.

    >>> rng = np.random.default_rng(0)
    >>> grey_share([rng.random((8, 8)), np.dstack([rng.random((8, 8))] * 3), rng.random((8, 8, 3))])
    0.6666666666666666
    """
    grey = [image.ndim == 2 or image.shape[2] == 1 or
            float(np.abs(image[..., :3] - image[..., :3].mean(axis=2, keepdims=True)).mean()) < 0.02
            for image in images]
    return float(np.mean(grey)) if grey else 0.0


def vertical_trend(images: Sequence[np.ndarray]) -> float:
    """How consistently the top of the images differs from the bottom: the mean over images of (top half's mean
    brightness − bottom half's) in units of each image's spread, as an absolute value. Sky over ground gives a
    large value; microscopy, with no up, about 0.

    >>> ramp = np.linspace(1.0, 0.0, 64)[:, None] * np.ones((64, 64))
    >>> round(vertical_trend([ramp, ramp]), 2), round(vertical_trend([ramp, ramp[::-1]]), 2)
    (1.73, 0.0)
    """
    trends = []
    for image in images:
        grey = _grey(image).astype(np.float64)
        half = grey.shape[0] // 2
        spread = float(grey.std()) or 1.0
        trends.append((float(grey[:half].mean()) - float(grey[-half:].mean())) / spread)
    return abs(float(np.mean(trends))) if trends else 0.0


def choose_flips(grey: float, trend: float) -> Decision:
    """Vertical flips too when the images have no up: mostly grey and no top-to-bottom trend.

    >>> choose_flips(1.0, 0.05).value, choose_flips(0.0, 0.05).value, choose_flips(1.0, 0.6).value
    ('hv', 'h', 'h')
    """
    no_up = grey >= 0.5 and trend < 0.3
    return Decision("flips", "hv" if no_up else "h",
                    f"grey share {grey:.2f}, top-to-bottom trend {trend:.2f}: "
                    f"{'no up, flipped both ways' if no_up else 'the images have an up'}")


def structure_width(mask: np.ndarray) -> float:
    """The mean width of the mask's thinner class (foreground or background), as a share of the image's shorter
    side: twice a region's area over its outline (a strip of width w has area w·L and an outline of 2·L).

    >>> strips = np.zeros((100, 100), np.float32); strips[:, ::10] = 1.0; strips[:, 1::10] = 1.0
    >>> round(structure_width(strips), 2)
    0.02
    """
    import cv2

    foreground = mask >= 0.5
    widths = []
    for region in (foreground, ~foreground):
        area = int(region.sum())
        if area == 0:
            continue
        inner = cv2.erode(region.astype(np.uint8), np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)
        outline = int((region & ~inner.astype(bool)).sum())
        widths.append(2.0 * area / max(outline, 1))
    return min(widths) / min(mask.shape[:2]) if widths else 1.0


def object_extent(mask: np.ndarray) -> float:
    """The side of the square as large as the mask's typical object, as a share of the image's shorter side: the
    object that holds the median foreground pixel (an area-weighted median, so a few specks do not count).

    >>> blob = np.zeros((100, 100), np.float32); blob[10:60, 20:70] = 1.0; blob[80:85, 80:85] = 1.0
    >>> object_extent(blob)
    0.5
    """
    import cv2

    count, _, stats, _ = cv2.connectedComponentsWithStats((mask >= 0.5).astype(np.uint8))
    if count < 2:
        return 0.0
    areas = np.sort(stats[1:, cv2.CC_STAT_AREA])
    cumulative = np.cumsum(areas)
    typical = int(areas[np.searchsorted(cumulative, cumulative[-1] / 2.0)])
    return math.sqrt(typical) / min(mask.shape[:2])


def _up32(value: float) -> int:
    return int(math.ceil(value / 32.0) * 32)


def choose_size(width: float, native_side: float, model_size: int, cap: int = MAX_CPU_SIZE) -> Decision:
    """The input side at which the thinnest structure (``width``, a share of the side) spans
    :data:`MIN_STRUCTURE_PX` pixels: at least the model's own size, at most ``cap`` and the images' own side
    (upsampling adds nothing), a multiple of 32.

    >>> choose_size(0.028, 1024, 320).value, choose_size(0.0105, 512, 320).value, choose_size(0.10, 201, 320).value
    (448, 512, 320)
    """
    wanted = _up32(MIN_STRUCTURE_PX / max(width, 1e-6))
    size = max(model_size, min(wanted, cap, _up32(native_side)))
    return Decision("size", size, f"thinnest structure {width:.1%} of the side, {width * size:.1f} px at {size} "
                                  f"(images {native_side:.0f} px)")


def choose_crop(extent: float, size: int, device_crop: Optional[int]) -> Decision:
    """Patches twice the typical object's extent at the input size (an object with its surroundings), no
    smaller than the device's patch (none on a GPU: whole images) and no larger than the input.

    >>> choose_crop(0.495, 320, 192).value, choose_crop(0.1, 448, 192).value, choose_crop(0.1, 448, None).value
    (320, 192, 448)
    """
    wanted = _up32(2.0 * extent * size)
    crop = size if device_crop is None else min(size, max(device_crop, wanted))
    return Decision("crop", crop, f"typical object {extent:.1%} of the side, {extent * size:.0f} px at {size}")


def choose_batch_size(pairs: int, device_batch: int) -> Decision:
    """The device's batch, smaller for few pairs so that an epoch makes at least :data:`MIN_STEPS` optimiser steps
    (never under 2).

    >>> choose_batch_size(20, 4).value, choose_batch_size(80, 4).value, choose_batch_size(6, 4).value
    (2, 4, 2)
    """
    batch = max(2, min(device_batch, pairs // MIN_STEPS))
    steps = math.ceil(pairs / batch)
    return Decision("batch_size", batch, f"{pairs} training pairs: {steps} optimiser steps an epoch")


def foreground_share(masks: Sequence[np.ndarray]) -> float:
    """The mean share of each mask that is foreground.

    >>> foreground_share([np.ones((4, 4)), np.zeros((4, 4))])
    0.5
    """
    return float(np.mean([float(np.mean(mask >= 0.5)) for mask in masks])) if masks else 0.0


def choose_both_classes(share: float) -> Decision:
    """Score on both classes when the foreground covers most of each image (all-foreground would score well on
    the foreground alone).

    >>> choose_both_classes(0.78).value, choose_both_classes(0.17).value
    (True, False)
    """
    both = share > 0.5
    return Decision("both_classes", both, f"foreground {share:.0%} of each image on average: scored on "
                                          f"{'both classes' if both else 'the foreground'}")


def peak_lr(start_score: float) -> Decision:
    """The learning rate the schedule peaks at: gentler when the starting model already scores well.

    >>> peak_lr(0.92).value, peak_lr(0.02).value
    (3e-05, 0.0001)
    """
    good = start_score >= GOOD_START
    return Decision("lr", GENTLE_LR if good else PEAK_LR,
                    f"starting model scores {start_score:.3f} on validation"
                    f"{' (already good: a gentler rate)' if good else ''}; warmup then cosine")


def decide(images: Sequence[np.ndarray], masks: Sequence[np.ndarray], *, model_size: int, adapt_size: bool,
           device_crop: Optional[int], device_batch: int, cap: int = MAX_CPU_SIZE,
           given: Optional[dict[str, Any]] = None) -> dict[str, Decision]:
    """Every data-driven choice for these training pairs; a value in ``given`` (what the user set) wins.

    Parameters
    ----------
    images, masks : sequence of ndarray
        The training pairs (images as read, masks in [0, 1]).
    model_size : int
        The model's own input size (the smallest size chosen).
    adapt_size : bool
        Whether the size may follow the data (not for a model that brings its own, a checkpoint or a semantic
        model).
    device_crop, device_batch
        The device's patch side (``None``: whole images) and batch size.
    given : dict, optional
        Settings the user chose: ``flips``, ``size``, ``crop``, ``batch_size``, ``both_classes``; ``None`` values
        are open.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> images = [rng.random((256, 256)) for _ in range(20)]
    >>> masks = [np.zeros((256, 256)) for _ in range(20)]
    >>> for mask in masks: mask[100:110, 100:110] = 1.0
    >>> chosen = decide(images, masks, model_size=320, adapt_size=True, device_crop=192, device_batch=4,
    ...                 given={"flips": "none"})
    >>> {name: d.value for name, d in chosen.items()}
    {'flips': 'none', 'size': 320, 'crop': 192, 'batch_size': 2, 'both_classes': False}
    >>> chosen["flips"].reason
    'set by the user'
    """
    given = {k: v for k, v in (given or {}).items() if v is not None}
    chosen: dict[str, Decision] = {}

    def pick(name: str, make: Any) -> Any:
        chosen[name] = Decision(name, given[name], "set by the user") if name in given else make()
        return chosen[name].value

    pick("flips", lambda: choose_flips(grey_share(images), vertical_trend(images)))
    sides = [min(mask.shape[:2]) for mask in masks]
    if adapt_size:
        size = pick("size", lambda: choose_size(float(np.median([structure_width(m) for m in masks])),
                                                float(np.median(sides)), model_size, cap))
    else:
        size = pick("size", lambda: Decision("size", model_size, "the model's own input size"))
    pick("crop", lambda: choose_crop(float(np.median([object_extent(m) for m in masks])), size, device_crop))
    pick("batch_size", lambda: choose_batch_size(len(masks), device_batch))
    pick("both_classes", lambda: choose_both_classes(foreground_share(masks)))
    return chosen
