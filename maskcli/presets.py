"""Named settings for kinds of data: ``maskcli segment --preset NAME``.

A preset is one method with one set of options and refinement steps, applied to every image of a batch (no per-image
tuning); options given on the command line override it. The quality figures quoted are mean IoU on
``../shared/data`` (``python -m benchmarks.quality_classical``; ``isbi2012_em`` is scored on both classes).

>>> get_preset("nuclei").method
'background'
>>> get_preset("nucleus")
Traceback (most recent call last):
...
maskcli.errors.OptionError: preset: unknown preset 'nucleus'; did you mean 'nuclei'? Valid: document, em, ...
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from maskcli.errors import OptionError, did_you_mean

__all__ = ["CNN_OPTIONS", "MethodChoice", "Preset", "PRESETS", "get_preset", "resolve"]


@dataclasses.dataclass(frozen=True)
class Preset:
    """A method, its options, the refinement steps (``maskcli.refine.Refinement`` fields) and what it is for."""

    method: str
    options: Mapping[str, Any]
    refinement: Mapping[str, Any]
    summary: str


def _preset(method: str, options: dict[str, Any], refinement: dict[str, Any], summary: str) -> Preset:
    return Preset(method, MappingProxyType(options), MappingProxyType(refinement), summary)


# Fluorescent nuclei on an uneven, dim background: subtract a robust (median) background larger than a nucleus,
# then the triangle threshold (one big background peak, a long tail of nuclei). fluo_nuclei: 0.752 mean IoU
# (Otsu 0.443, Li 0.573; background + Li 0.686; median radius 60: 0.732).
_NUCLEI = _preset("background", {"estimate": "median", "radius": 100, "threshold": "triangle", "sigma": 2,
                                 "polarity": "bright"},
                  {"fill_holes": True, "min_size": 50},
                  "Fluorescent nuclei (DAPI/Hoechst): background subtraction + triangle, holes filled.")

# Electron microscopy of cells: membranes are thin dark lines, so a local threshold a little below the local mean
# keeps the cells; dark organelles inside a cell are holes of the cell mask, filled up to 1000 px.
# isbi2012_em: 0.716 (mean of the IoU of cells and of membranes; Otsu 0.528, Li 0.559).
_EM = _preset("local", {"block_size": 51, "offset": -0.05, "sigma": 2, "polarity": "bright"},
              {"fill_holes": True, "max_hole": 1000},
              "Electron microscopy: cells bounded by dark membranes (local threshold, organelles filled).")

# One subject in a photo: GrabCut from a 5 % inset rectangle, retried from 10 % then 15 % insets when it collapses
# to under 2 % of the image (3 of 100 horses). weizmann_horses: 0.678 (without the retries 0.672; the README
# baseline 0.669; plain Otsu 0.337). Tried and not better: 3 % / 8 % insets (0.660 / 0.657), 10 iterations
# (0.680, 1.6× slower), a second GrabCut seeded by the first mask, mean-shift or bilateral pre-filtering, Lab
# input, ellipse or border-colour seeds, opening the result, the native size instead of the 400 px cap (0.672), a
# border-colour distance prior marking the inside as probable background (0.645), a vote of 3 insets (0.681, 3×
# slower).
_SUBJECT = _preset("grabcut", {"init": "rect", "inset": 0.05, "retry_insets": (0.1, 0.15), "min_area": 0.02},
                   {"keep_largest": 1, "fill_holes": True},
                   "Photos with one subject: GrabCut from a 5 % inset rectangle (wider if it collapses), "
                   "largest region kept.")

PRESETS: dict[str, Preset] = {
    "nuclei": _NUCLEI,
    "em": _EM,
    "membranes": dataclasses.replace(
        _EM, refinement=MappingProxyType({**_EM.refinement, "invert": True}),
        summary="Electron microscopy: the membrane network itself (the inverse of the em preset)."),
    "subject": _SUBJECT,
    "photo": _SUBJECT,
    "horse": _SUBJECT,
    # Scanned pages: Sauvola, the standard for text on paper with stains and uneven light; dark ink is foreground.
    "document": _preset("sauvola", {"window": 31, "k": 0.2, "polarity": "dark"}, {"min_size": 4},
                        "Scanned documents: dark ink on paper (Sauvola), specks under 4 px removed."),
    # Green-screen footage: the backdrop is the green hue range; invert keeps the subject.
    "greenscreen": _preset("color_range", {"key": "green", "invert": True}, {"open": 1, "fill_holes": True},
                           "Chroma key: drop a green backdrop, keep the subject."),
}


def get_preset(name: str) -> Preset:
    """The preset called ``name``; an unknown name is an ``OptionError`` listing the valid ones."""
    try:
        return PRESETS[name]
    except KeyError:
        hint = did_you_mean(name, PRESETS)
        raise OptionError("preset", f"unknown preset {name!r}{hint} Valid: {', '.join(sorted(PRESETS))}") from None


#: Options that only the CNN method takes: given without a method, they choose it.
CNN_OPTIONS = ("model", "weights", "device", "batch_size", "classes")


@dataclasses.dataclass
class MethodChoice:
    """A resolved choice: the method's name, its options (text or typed) and the refinement settings."""

    method: str
    options: dict[str, Any]
    refinement: dict[str, Any]


def resolve(method: str | None = None, preset: str | None = None,
            options: Mapping[str, Any] | None = None) -> MethodChoice:
    """The one place where a method, a preset and options become a method with its options and refinement.

    The preset (if any) gives the method, its options and its refinement; ``method`` must agree with it. Then each
    of ``options`` overrides: a key that the method does not take but the refinement does (``fill_holes``,
    ``min_size`` ...) goes to the refinement, converted to its type; the rest go to the method (converted, and
    checked, when the method is built). Without a method or a preset, CNN options choose ``cnn``, else ``otsu``.

    Examples
    --------
    >>> choice = resolve(preset="nuclei", options={"sigma": "1", "min_size": "80"})
    >>> choice.method, choice.options["sigma"], choice.refinement
    ('background', '1', {'fill_holes': True, 'min_size': 80})
    >>> resolve(options={"model": "u2netp"}).method, resolve().method
    ('cnn', 'otsu')
    >>> resolve("otsu", "nuclei")
    Traceback (most recent call last):
    ...
    maskcli.errors.OptionError: preset: preset 'nuclei' uses method 'background', not 'otsu'
    """
    from maskcli.registry import coerce, options_of

    chosen_options: dict[str, Any] = {}
    refinement: dict[str, Any] = {}
    name = method
    if preset is not None:
        chosen = get_preset(preset)
        if name is not None and name != chosen.method:
            raise OptionError("preset", f"preset {preset!r} uses method {chosen.method!r}, not {name!r}")
        name = chosen.method
        chosen_options.update(chosen.options)
        refinement.update(chosen.refinement)
    given = {key.replace("-", "_"): value for key, value in (options or {}).items()}
    if name is None:
        name = "cnn" if any(key in CNN_OPTIONS for key in given) else "otsu"
    from maskcli.methods import methods
    from maskcli.refine import Refinement

    settings = {info.name: info for info in options_of(Refinement)}
    method_options = {info.name for info in options_of(methods.get(name))} if name in methods else set()
    for key, value in given.items():
        if key in settings and key not in method_options:
            refinement[key] = coerce(settings[key], value)  # the text "1" must reach the refinement as 1
        else:
            chosen_options[key] = value  # methods.create converts these, naming any unknown option
    return MethodChoice(name, chosen_options, refinement)
