"""Enhancing the subject (or everything but the subject): brightness, contrast, CLAHE, saturation, sharpening,
blur, in any combination, blended in with the soft mask.

Each setting has an ``outside_`` twin aimed at the background: ``-s contrast=1.4 -s outside_brightness=0.5``
makes the subject stand out while the rest dims. Inside and outside are each adjusted as a whole image, then
``Y = M ⊙ inside + (1 − M) ⊙ outside`` (see :mod:`maskcli.composite.blend`), so a soft mask fades between them.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import cv2
import numpy as np

from maskcli.composite.base import Mode, modes
from maskcli.composite.blend import blend, blur_reach, gaussian_blur, luminance
from maskcli.errors import OptionError
from maskcli.registry import option

__all__ = ["Enhance", "Adjustment", "adjust", "grey_sums", "pivot"]


@dataclasses.dataclass(frozen=True)
class Adjustment:
    """One set of tone and detail settings; the defaults change nothing.

    Factors are as in Pillow's ImageEnhance: 1 leaves the image as it is, 0 gives black (brightness), flat grey
    at the region's mean (contrast) or grey (saturation), and values above 1 strengthen.
    """

    brightness: float = 1.0
    contrast: float = 1.0
    clahe: float = 0.0
    saturation: float = 1.0
    sharpen: float = 0.0
    sharpen_radius: float = 1.5
    blur: float = 0.0

    @property
    def neutral(self) -> bool:
        return self == Adjustment(sharpen_radius=self.sharpen_radius)


def _lightness(pixels: np.ndarray) -> np.ndarray:
    """What CLAHE equalises, as 16-bit levels (so no banding): the grey level, or the L of CIE Lab."""
    if pixels.ndim == 2:
        return (pixels * 65535 + 0.5).astype(np.uint16)
    lab = cv2.cvtColor(pixels, cv2.COLOR_RGB2Lab)  # float L in [0, 100]
    return (lab[..., 0] * (65535 / 100) + 0.5).astype(np.uint16)


def _relit(pixels: np.ndarray, lightness: np.ndarray) -> np.ndarray:
    """``pixels`` with their lightness (:func:`_lightness`) replaced by ``lightness``."""
    if pixels.ndim == 2:
        return lightness.astype(np.float32) * np.float32(1 / 65535)
    lab = cv2.cvtColor(pixels, cv2.COLOR_RGB2Lab)
    lab[..., 0] = lightness.astype(np.float32) * np.float32(100 / 65535)
    out = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
    return np.clip(out, 0.0, 1.0, out=out)


def _equalised(lightness: np.ndarray, clip: float, tiles: int = 8) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation of a whole lightness plane (its tiles span the image)."""
    return cv2.createCLAHE(clipLimit=clip, tileGridSize=(tiles, tiles)).apply(np.ascontiguousarray(lightness))


def _detail(pixels: np.ndarray, settings: Adjustment, lightness: np.ndarray | None = None) -> np.ndarray:
    """The steps before the contrast: blur, sharpen, CLAHE (``lightness``: the equalised lightness of these
    rows, taken from the whole image's, for a band of it)."""
    out = np.asarray(pixels, dtype=np.float32)
    if settings.blur > 0:
        out = gaussian_blur(out, settings.blur)
    if settings.sharpen > 0:
        # Unsharp mask: add back the detail a blur of the given radius would take away.
        detail = out - gaussian_blur(out, settings.sharpen_radius)
        out = out + np.float32(settings.sharpen) * detail
        np.clip(out, 0.0, 1.0, out=out)
    if settings.clahe > 0:
        out = np.ascontiguousarray(out)
        out = _relit(out, _equalised(_lightness(out), settings.clahe) if lightness is None else lightness)
    return out


def grey_sums(grey: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """Per row: the sum of ``grey ⊙ weights``, of ``weights``, of ``grey``, and the row's length (float64, one
    row of four per row of ``grey``). Each row is summed on its own, so the rows of a band are those of the whole
    image, and :func:`pivot` of the stacked rows is the same whichever bands they came from.

    >>> grey_sums(np.array([[0.5, 1.0]], np.float32), np.array([[1.0, 0.0]], np.float32)).tolist()
    [[0.5, 1.0, 1.5, 2.0]]
    """
    sums = np.zeros((grey.shape[0], 4))
    if weights is not None:
        sums[:, 0] = np.add.reduce(grey * weights, axis=1)
        sums[:, 1] = np.add.reduce(weights, axis=1)
    sums[:, 2] = np.add.reduce(grey, axis=1)
    sums[:, 3] = grey.shape[1]
    return sums


def pivot(sums: np.ndarray) -> float:
    """The contrast's pivot from :func:`grey_sums` rows: the weighted mean grey level, or the plain mean where
    the weights are all 0.

    >>> pivot(np.array([[0.5, 1.0, 1.5, 2.0]]))
    0.5
    """
    weighted, weight, total, count = sums.sum(axis=0)
    return float(weighted / weight) if weight > 0 else float(total / max(count, 1.0))


def adjust(pixels: np.ndarray, settings: Adjustment, weights: np.ndarray | None = None, *,
           level: float | None = None, lightness: np.ndarray | None = None) -> np.ndarray:
    """The image with ``settings`` applied everywhere: blur, sharpen, CLAHE, contrast, brightness, saturation.

    ``weights`` (H×W in [0, 1]) says which pixels the contrast's pivot (their mean grey level) is taken from: the
    region being enhanced, so a dim subject on a bright background is stretched about its own level. ``level``
    gives the pivot instead, and ``lightness`` the equalised lightness of CLAHE (for a band of a large image, from
    the whole image).

    >>> x = np.array([[0.2, 0.6]], np.float32)
    >>> adjust(x, Adjustment(brightness=1.5)).astype(float).round(2).tolist()
    [[0.3, 0.9]]
    >>> adjust(x, Adjustment(contrast=2.0)).astype(float).round(2).tolist()
    [[0.0, 0.8]]
    """
    if settings.neutral:
        return pixels
    out = _detail(pixels, settings, lightness)
    if settings.contrast != 1.0:
        if level is None:
            level = pivot(grey_sums(luminance(out), weights))
        out = (out - np.float32(level)) * np.float32(settings.contrast) + np.float32(level)
    if settings.brightness != 1.0:
        out = out * np.float32(settings.brightness)
    if settings.saturation != 1.0 and out.ndim == 3:
        grey = luminance(np.clip(out, 0.0, 1.0))[..., None]
        out = grey + np.float32(settings.saturation) * (out - grey)
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)


_SETTINGS = ("brightness", "contrast", "clahe", "saturation", "sharpen", "sharpen_radius", "blur")


@modes.register("enhance")
@dataclasses.dataclass
class Enhance(Mode):
    """Tone and detail adjustments inside the mask, and (``outside_*``) outside it, blended with the soft mask.

    Factors follow Pillow's ImageEnhance: 1 changes nothing. At least one setting must change something.
    """

    summary: ClassVar[str] = ("Brightness, contrast, CLAHE, saturation, sharpening inside the mask and/or "
                              "outside it (outside_*).")
    example: ClassVar[str] = ("maskcli apply cells/ --masks masks/ --mode enhance -s contrast=1.5 "
                              "-s outside_brightness=0.5 -o out/")

    brightness: float = option(1.0, "Subject brightness factor (1 = unchanged, 1.3 = 30 % brighter).")
    contrast: float = option(1.0, "Subject contrast factor about its mean grey level (1 = unchanged).")
    clahe: float = option(0.0, "Subject CLAHE clip limit (0 = off; 2 is moderate).")
    saturation: float = option(1.0, "Subject saturation factor (0 = grey, 1 = unchanged).")
    sharpen: float = option(0.0, "Subject unsharp-mask amount (0 = off; 1 doubles fine detail).")
    sharpen_radius: float = option(1.5, "Unsharp-mask radius (Gaussian sigma, px), inside and outside (at "
                                           "most twice the image's long side: larger is clamped).")
    blur: float = option(0.0, "Subject blur sigma in px (0 = off), e.g. to anonymise (at most "
                                 "twice the image's long side: larger is clamped).")
    outside_brightness: float = option(1.0, "Background brightness factor.")
    outside_contrast: float = option(1.0, "Background contrast factor.")
    outside_clahe: float = option(0.0, "Background CLAHE clip limit (0 = off).")
    outside_saturation: float = option(1.0, "Background saturation factor.")
    outside_sharpen: float = option(0.0, "Background unsharp-mask amount.")
    outside_blur: float = option(0.0, "Background blur sigma in px (0 = off; at most twice the image's "
                                         "long side: larger is clamped).")

    def __post_init__(self) -> None:
        for prefix in ("", "outside_"):
            for key in _SETTINGS:
                if key == "sharpen_radius" and prefix:
                    continue
                value = getattr(self, prefix + key)
                if value < 0:
                    raise OptionError(prefix + key, f"must be at least 0, got {value}")
        if self.sharpen_radius <= 0:
            raise OptionError("sharpen_radius", f"must be more than 0, got {self.sharpen_radius}")
        if self.inside.neutral and self.outside.neutral:
            raise OptionError("enhance", "nothing to do: set at least one of " + ", ".join(
                key for key in _SETTINGS if key != "sharpen_radius") + " (or outside_*), e.g. contrast=1.5")

    @property
    def inside(self) -> Adjustment:
        return Adjustment(**{key: getattr(self, key) for key in _SETTINGS})

    @property
    def outside(self) -> Adjustment:
        return Adjustment(**{key: getattr(self, key if key == "sharpen_radius" else "outside_" + key)
                             for key in _SETTINGS})

    def _sides(self, mask: np.ndarray) -> list[tuple[Adjustment, np.ndarray]]:
        return [(self.inside, mask), (self.outside, np.float32(1.0) - mask)]

    def _passes(self) -> list[str]:
        """The survey passes: the lightness CLAHE equalises over the whole image, then the contrast's pivots."""
        sides = [side for side in (self.inside, self.outside) if not side.neutral]
        return ((["clahe"] if any(side.clahe > 0 for side in sides) else [])
                + (["pivot"] if any(side.contrast != 1.0 for side in sides) else []))

    def _equalised_rows(self, surveys: list[np.ndarray], rows: slice, width: int) -> list[np.ndarray | None]:
        """Each side's equalised lightness for ``rows``, from the CLAHE pass (None for a side without CLAHE)."""
        planes: list[np.ndarray | None] = []
        column = 0
        for side in (self.inside, self.outside):
            if surveys and side.clahe > 0 and not side.neutral:
                planes.append(surveys[0][rows, column:column + width])
                column += width
            else:
                planes.append(None)
        return planes

    def halo(self, mask: np.ndarray) -> int | None:
        return max(blur_reach(side.blur) + (blur_reach(side.sharpen_radius) if side.sharpen > 0 else 0)
                   for side in (self.inside, self.outside))

    def survey(self, pixels: np.ndarray, mask: np.ndarray, rows: slice,
               surveys: list[np.ndarray]) -> np.ndarray | None:
        """First the lightness that CLAHE equalises (16-bit, one plane per side that asks for it), then the
        :func:`grey_sums` of each side whose contrast changes (its pivot is a mean over the whole image)."""
        passes = self._passes()
        if len(surveys) == len(passes):
            return None
        if passes[len(surveys)] == "clahe":
            return np.concatenate([_lightness(np.ascontiguousarray(_detail(pixels, dataclasses.replace(side, clahe=0))))
                                   for side in (self.inside, self.outside) if side.clahe > 0 and not side.neutral],
                                  axis=1)
        lightness = self._equalised_rows(surveys, rows, pixels.shape[1])
        return np.concatenate([grey_sums(luminance(_detail(pixels, side, light)), weights)
                               for (side, weights), light in zip(self._sides(mask), lightness)
                               if side.contrast != 1.0 and not side.neutral], axis=1)

    def surveyed(self, figures: np.ndarray, index: int) -> np.ndarray:
        if self._passes()[index] != "clahe":
            return figures
        clips = [side.clahe for side in (self.inside, self.outside) if side.clahe > 0 and not side.neutral]
        width = figures.shape[1] // len(clips)
        return np.concatenate([_equalised(figures[:, k * width:(k + 1) * width], clip)
                               for k, clip in enumerate(clips)], axis=1)

    def band(self, pixels: np.ndarray, mask: np.ndarray, rows: slice, size: tuple[int, int],
             surveys: list[np.ndarray]) -> np.ndarray:
        sums = surveys[-1] if surveys and self._passes()[-1] == "pivot" else None
        adjusted = []
        for (side, weights), light in zip(self._sides(mask), self._equalised_rows(surveys, rows, pixels.shape[1])):
            level = None
            if sums is not None and side.contrast != 1.0 and not side.neutral:
                level, sums = pivot(sums[:, :4]), sums[:, 4:]
            adjusted.append(adjust(pixels, side, weights, level=level, lightness=light))
        inside, outside = adjusted
        if inside is outside:  # both neutral cannot happen (checked), but one side may be the image itself
            return pixels.copy()
        return blend(inside, outside, mask)

    def __call__(self, pixels: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self.whole(pixels, mask)
