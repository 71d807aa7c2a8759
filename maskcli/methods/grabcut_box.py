"""``grabcut-box``: GrabCut from each prompt's box, with its points as sure foreground and background seeds.

>>> import numpy as np
>>> from maskcli.prompts import Prompt
>>> image = np.zeros((60, 80, 3), np.float32); image[15:45, 20:50] = (0.8, 0.3, 0.2)
>>> (seg,) = GrabCutBox().compute_prompts(image, [Prompt(box=(16, 12, 54, 48))])
>>> float(seg.mask[15:45, 20:50].mean()), float(seg.mask.sum() - seg.mask[15:45, 20:50].sum())
(1.0, 0.0)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import ClassVar

import cv2
import numpy as np

from maskcli.errors import OptionError
from maskcli.imageops import to_bgr8
from maskcli.masks import fill_binary_holes
from maskcli.methods.base import Segmentation, methods
from maskcli.methods.prompted import PromptedMethod, crop_box, keep_pointed, paste
from maskcli.prompts import Prompt
from maskcli.refine.grabcut import GRABCUT_MAX_SIDE
from maskcli.registry import option


@methods.register("grabcut-box")
@dataclasses.dataclass
class GrabCutBox(PromptedMethod):
    """GrabCut started from each prompt's box: outside the box is background, inside probably foreground, a
    positive point a sure-foreground disc and a negative one a sure-background disc.

    It works on the box and ``context`` × its size around it, not the whole image, at up to ``max_side`` pixels:
    the background's colours are learnt from the object's surroundings, and a small box is worked on at full
    detail. The region under a positive point (else the largest) is kept, and its holes filled. A mask that covers
    too little or too much of its box (``fill_range``) is cut again with a weaker colour prior, then none, then
    the whole box as probable foreground. The score is GrabCut's stability: the IoU of the mask before and after
    the last iteration.

    Measured on the first 100 weizmann_horses photos, boxes from the truth +5 % (mean IoU): band 0.1 and prior
    0.7 without retries 0.647; band 0.05 0.653; with prior 0.85 0.661; with the retries 0.676 (the best of all
    six settings tried per photo would reach 0.716). Not better: inside=box (0.599), inside=ellipse (0.632), band
    0.2, context 0.25 or 1, 10 iterations, a 600 px working size, Lab or blurred input.
    """

    summary: ClassVar[str] = "GrabCut from each prompt's box, points as sure seeds (one mask per prompt)."
    example: ClassVar[str] = "maskcli segment photos/ -o labels/ -m grabcut-box --boxes detections.json --labels"
    releases_gil: ClassVar[bool] = True
    context: float = option(0.5, "Surroundings worked on around the box, as a fraction of its size per side.")
    iterations: int = option(5, "GrabCut iterations.")
    max_side: int = option(GRABCUT_MAX_SIDE, "Work at most at this long side in pixels, then upsample.")
    point_radius: float = option(0.03, "Radius of a point's seed disc, as a fraction of the box's long side.")
    keep: str = option("largest", "Regions kept: largest (or those under positive points), or all.",
                       choices=("largest", "all"))
    fill_holes: bool = option(True, "Fill holes in each object's mask.")
    inside: str = option("band", "Where GrabCut starts from probable foreground: the whole box, the box less a "
                                 "band along its sides, or the ellipse the box holds (the rest of the box starts as "
                                 "probable background).", choices=("box", "band", "ellipse"))
    band: float = option(0.05, "inside=band: the band's width, as a fraction of the box's size (inside=ellipse: "
                              "the ellipse is shrunk by it).")
    prior: float = option(0.85, "Colour prior: the share of the box taken as background when box colours that "
                               "the surroundings explain start as probable background; 0: none.")
    fill_range: tuple[float, ...] = option(
        (0.15, 0.7), "Retry while the mask covers less or more than this share of its box: with a weaker colour "
                     "prior (0.7), none, then the whole box as probable foreground; the first result inside the "
                     "range is kept (else the first one). 0,1: no retries.")

    def __post_init__(self) -> None:
        if not 0 <= self.context <= 4:
            raise OptionError("context", f"must be in [0, 4], got {self.context}")
        if not 1 <= self.iterations <= 50:
            raise OptionError("iterations", f"must be between 1 and 50, got {self.iterations}")
        if self.max_side < 16:
            raise OptionError("max_side", f"must be at least 16 pixels, got {self.max_side}")
        if not 0 < self.point_radius < 0.5:
            raise OptionError("point_radius", f"must be in (0, 0.5), got {self.point_radius}")
        self.fill_range = tuple(float(v) for v in self.fill_range)
        if len(self.fill_range) != 2 or not 0 <= self.fill_range[0] <= self.fill_range[1] <= 1:
            raise OptionError("fill_range", f"must be LOW,HIGH with 0 <= LOW <= HIGH <= 1, got {self.fill_range}")

    def compute_prompts(self, image: np.ndarray, prompts: Sequence[Prompt]) -> list[Segmentation]:
        height, width = image.shape[:2]
        results = []
        for prompt in prompts:
            if prompt.box is None:
                raise OptionError("method", "grabcut-box needs a box with each prompt (points alone: the sam method)")
            window = crop_box(prompt, width, height, self.context)
            x0, y0, x1, y1 = window
            attempts = [(self.inside, self.prior)]
            if self.fill_range != (0.0, 1.0):
                attempts += [(self.inside, min(self.prior, 0.7)), (self.inside, 0.0), ("box", 0.0)]
            first = None
            for inside, prior in dict.fromkeys(attempts):
                part, score = self._cut(image[y0:y1, x0:x1], prompt, (x0, y0), inside, prior)
                part = self._clean(part, prompt, x0, y0)
                first = first or (part, score)
                if self.fill_range[0] <= _box_fill(part, prompt, x0, y0) <= self.fill_range[1]:
                    break
            else:
                assert first is not None  # attempts is never empty
                part, score = first
            results.append(Segmentation(paste(part, window, height, width),
                                        {"score": round(score, 4), "confidence": round(score, 4),
                                         "box": list(prompt.box)}))
        return results

    def _clean(self, part: np.ndarray, prompt: Prompt, x0: int, y0: int) -> np.ndarray:
        """The regions kept (largest, or under positive points) and their holes filled."""
        if self.keep == "largest":
            part = keep_pointed(part, _shifted(prompt.points, x0, y0)) if any(
                sign for *_, sign in prompt.points) else _largest(part)
        elif prompt.points:
            part = keep_pointed(part, _shifted(prompt.points, x0, y0))
        if self.fill_holes:
            part = fill_binary_holes((part > 0.5).astype(np.uint8)).astype(np.float32)
        return part

    def _cut(self, crop: np.ndarray, prompt: Prompt, origin: tuple[int, int], inside: str,
             prior: float) -> tuple[np.ndarray, float]:
        """GrabCut on the crop around the box: its mask (the crop's size) and its stability."""
        height, width = crop.shape[:2]
        if min(height, width) < 2:
            return np.ones((height, width), np.float32), 0.0
        factor = min(1.0, self.max_side / max(height, width))
        size = (max(2, round(width * factor)), max(2, round(height * factor)))
        small = to_bgr8(crop)
        if factor < 1:
            small = cv2.resize(small, size, interpolation=cv2.INTER_AREA)
        assert prompt.box is not None
        bx0, by0, bx1, by1 = ((v - o) * factor for v, o in zip(prompt.box, origin * 2))
        labels = np.full(small.shape[:2], cv2.GC_BGD, np.uint8)
        labels[max(0, int(by0)):max(1, int(np.ceil(by1))), max(0, int(bx0)):max(1, int(np.ceil(bx1)))] \
            = cv2.GC_PR_FGD if inside == "box" else cv2.GC_PR_BGD
        if inside == "band":
            bw, bh = (bx1 - bx0) * self.band, (by1 - by0) * self.band
            labels[max(0, int(by0 + bh)):max(1, int(np.ceil(by1 - bh))),
                   max(0, int(bx0 + bw)):max(1, int(np.ceil(bx1 - bw)))] = cv2.GC_PR_FGD
        elif inside == "ellipse":
            centre = (round((bx0 + bx1) / 2), round((by0 + by1) / 2))
            axes = (max(1, int((bx1 - bx0) / 2 * (1 - self.band))), max(1, int((by1 - by0) / 2 * (1 - self.band))))
            cv2.ellipse(labels, centre, axes, 0, 0, 360, cv2.GC_PR_FGD, -1)
        if prior > 0:
            _colour_prior(small, labels, prior)
        radius = max(1, round(self.point_radius * max(bx1 - bx0, by1 - by0)))
        for x, y, sign in prompt.points:
            centre = (int((x - origin[0]) * factor), int((y - origin[1]) * factor))
            cv2.circle(labels, centre, radius, cv2.GC_FGD if sign else cv2.GC_BGD, -1)
        if not ((labels == cv2.GC_BGD) | (labels == cv2.GC_PR_BGD)).any():
            return np.ones((height, width), np.float32), 0.0  # the box is the whole crop: nothing to tell apart
        cv2.setRNGSeed(0)  # GrabCut's k-means start draws from OpenCV's RNG: a mask never depends on history
        model_bg, model_fg = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        try:
            if self.iterations > 1:
                cv2.grabCut(small, labels, (0, 0, 0, 0), model_bg, model_fg, self.iterations - 1, cv2.GC_INIT_WITH_MASK)
                before = _foreground(labels)
                cv2.grabCut(small, labels, (0, 0, 0, 0), model_bg, model_fg, 1, cv2.GC_EVAL)
            else:
                before = _foreground(labels)
                cv2.grabCut(small, labels, (0, 0, 0, 0), model_bg, model_fg, 1, cv2.GC_INIT_WITH_MASK)
        except cv2.error:  # too few distinct colours on one side to model: the box itself
            return (_foreground(labels) if factor == 1 else np.ones((height, width), bool)).astype(np.float32), 0.0
        result = _foreground(labels)
        union = np.count_nonzero(before | result)
        score = np.count_nonzero(before & result) / union if union else 0.0
        mask = result.astype(np.float32)
        if factor < 1:
            mask = (cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR) >= 0.5).astype(np.float32)
        return mask, float(score)


def _colour_prior(small: np.ndarray, labels: np.ndarray, share: float) -> None:
    """Box pixels whose colour the surroundings explain better than the box's remainder does start as probable
    background: with ``share`` of the box taken as background, the foreground's colour histogram is the box's
    less ``share`` × the surroundings'. A tight box is mostly background (a horse fills a third of its box), so
    GrabCut's foreground model, learnt from the whole box, would otherwise hold the background's colours too."""
    inside = labels != cv2.GC_BGD
    bins = 16
    quantised = (small // (256 // bins)).astype(np.int32)
    codes = (quantised[..., 0] * bins + quantised[..., 1]) * bins + quantised[..., 2]
    counts = [np.bincount(codes[where], minlength=bins ** 3).astype(np.float64) for where in (~inside, inside)]
    ring, box = (np.asarray(cv2.GaussianBlur(c.reshape(bins, bins * bins), (0, 0), 0.8), np.float64).ravel()
                 for c in counts)
    ring += 1e-9
    ring /= ring.sum()
    box /= max(box.sum(), 1e-9)
    fg = np.maximum(box - share * ring, 0)
    looks_fg = fg[codes] > share * ring[codes]
    labels[inside & ~looks_fg & (labels == cv2.GC_PR_FGD)] = cv2.GC_PR_BGD


def _box_fill(part: np.ndarray, prompt: Prompt, x0: int, y0: int) -> float:
    """The share of the prompt's box the mask (of the crop at ``x0, y0``) covers."""
    x, y, w, h = prompt.rect()
    return float(np.count_nonzero(part[max(0, y - y0):y - y0 + h, max(0, x - x0):x - x0 + w] >= 0.5)) / (w * h)


def _foreground(labels: np.ndarray) -> np.ndarray:
    return (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)


def _shifted(points: Sequence[tuple[float, float, int]], dx: int, dy: int) -> tuple[tuple[float, float, int], ...]:
    return tuple((x - dx, y - dy, sign) for x, y, sign in points)


def _largest(mask: np.ndarray) -> np.ndarray:
    count, regions, stats, _ = cv2.connectedComponentsWithStats((mask > 0.5).astype(np.uint8), connectivity=8)
    if count <= 2:
        return mask
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return (regions == biggest).astype(np.float32)
