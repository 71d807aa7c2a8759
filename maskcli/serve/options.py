"""A request's fields to the library's settings: the same names, presets, registries and checks as the command line.

A field is named as the command line's flag without its dashes (``min-size``, ``fill-holes``, ``mask-bits``);
``param`` (``KEY=VALUE``, repeatable) gives a method option and ``set`` a mode option, as ``-p`` and ``-s`` do.
Every other field is handed to :func:`maskcli.presets.resolve`, which sends refinement settings to the refinement
chain and the rest to the method, so a wrong value fails with the library's own :class:`~maskcli.errors.OptionError`
naming the parameter. Options that would name a file on the server are refused.

>>> fields = Fields([("method", "otsu"), ("min-size", "20"), ("format", "webp")])
>>> plan = plan_segment(fields, MethodCache())
>>> plan.method.name, plan.refinement, plan.format
('otsu', {'min_size': 20}, 'WEBP')
>>> plan_segment(Fields([("method", "otzu")]), MethodCache())
Traceback (most recent call last):
...
maskcli.errors.OptionError: method: unknown method 'otzu'; did you mean 'otsu'? ...
"""

from __future__ import annotations

import collections
import dataclasses
import threading
from collections.abc import Iterable
from typing import Any

from maskcli.errors import OptionError
from maskcli.io.encode import FORMATS
from maskcli.io.sinks import OutputPlan
from maskcli.registry import OptionInfo, coerce

#: Fields a request may not give, and why: each would make the server read a file or choose its hardware.
REFUSED = {
    "weights": "a request cannot name a file on the server; the server uses the cached or packaged weights",
    "device": "the server chose its device when it started",
    "masks": "a request cannot name a folder on the server; upload the mask as the 'mask' part of a form",
}

#: Media types of the output formats, for ``Accept`` and the response.
MEDIA_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "TIFF": "image/tiff"}

_SEGMENT_FIELDS = {"method", "preset", "param", "format", "quality", "mask-bits", "json"}
_APPLY_FIELDS = {"method", "preset", "param", "format", "quality", "mode", "set", "background", "resize-mask",
                 "alpha", "json", "mask"}


class Fields:
    """A request's fields, in order, repeatable (query string and form fields together)."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self.pairs = [(key.strip().replace("_", "-"), value) for key, value in pairs]

    def get(self, name: str) -> str | None:
        values = self.all(name)
        return values[-1] if values else None

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.pairs if key == name]

    def flag(self, name: str) -> bool:
        """A yes/no field: given bare (``?alpha``) or as a yes/no word."""
        value = self.get(name)
        if value is None:
            return False
        return bool(coerce(OptionInfo(name.replace("-", "_"), bool, False, ""), value or "true"))

    def rest(self, taken: set[str]) -> dict[str, str]:
        """Fields that are not the endpoint's own: method options and refinement settings, by parameter name."""
        options: dict[str, str] = {}
        for key, value in self.pairs:
            if key in taken:
                continue
            name = key.replace("-", "_")
            if name in REFUSED:
                raise OptionError(name, REFUSED[name])
            options[name] = value
        return options


def pairs_of(values: list[str], option: str) -> dict[str, str]:
    """``["k=v", ...]`` to a dict; a pair without ``=`` is an error naming the field."""
    parsed: dict[str, str] = {}
    for pair in values:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise OptionError(option, f"expected KEY=VALUE, got {pair!r}")
        parsed[key.strip().replace("-", "_")] = value.strip()
    return parsed


class MethodCache:
    """Methods built once per set of options and kept (a CNN's model then loads once per process): the most
    recently used ``size`` of them."""

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self._methods: collections.OrderedDict[tuple, Any] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, name: str, options: dict[str, Any]) -> Any:
        from maskcli.methods import methods

        key = (name, tuple(sorted((k, repr(v)) for k, v in options.items())))
        with self._lock:
            if key in self._methods:
                self._methods.move_to_end(key)
                return self._methods[key]
        if name == "cnn":
            _require_local_weights(options)
        method = methods.create(name, options)  # outside the lock: a model load must not hold up other requests
        with self._lock:
            method = self._methods.setdefault(key, method)
            while len(self._methods) > self.size:
                self._methods.popitem(last=False)
        return method


def _require_local_weights(options: dict[str, Any]) -> None:
    """A request never starts a download: the model's weights must be packaged or cached on the server."""
    from maskcli.cnn import specs, weights

    name = str(options.get("model") or specs.DEFAULT_MODEL)
    if name in specs.SPECS:
        spec = specs.get(name)
        if weights.bundled_path(spec) is None and weights.find_cached(spec) is None:
            raise OptionError("model", f"the weights of {name!r} are not on this server (`maskcli models "
                                       f"download {name}` there first)")


@dataclasses.dataclass
class Plan:
    """What one request asks for: the method (None: an uploaded mask), the refinement settings, the mode (apply),
    the output format (None: the input's where it fits) and how to answer."""

    method: Any
    refinement: dict[str, Any]
    format: str | None
    quality: int = 92
    mask_bits: int = 8
    mode: Any = None
    resize_mask: bool = False
    alpha: bool = False
    json: bool = False

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES.get(self.format or "PNG", "image/png")


def plan_segment(fields: Fields, cache: MethodCache, accept: str = "") -> Plan:
    """The plan of ``POST /segment``: a method (otsu by default), its refinement, and the mask's format."""
    choice = _resolve(fields, _SEGMENT_FIELDS)
    method = cache.get(choice.method, choice.options)
    bits = _typed(fields, "mask-bits", int, 8)
    if bits not in (8, 16):
        raise OptionError("bits", f"must be 8 or 16, not {bits}")
    format = _format(fields, accept) or "PNG"
    return Plan(method, choice.refinement, format, _quality(fields), bits, json=_wants_json(fields, accept))


def plan_apply(fields: Fields, cache: MethodCache, *, has_mask: bool, accept: str = "") -> Plan:
    """The plan of ``POST /apply``: a mode and where its mask comes from (an upload, the image's alpha, or a
    method), with the mask's refinement and the result's format."""
    from maskcli.composite import modes

    mode_name = fields.get("mode") or "cutout"
    if mode_name == "image":
        raise OptionError("mode", "mode 'image' reads a background file; a request cannot name a file on the server")
    mode_options: dict[str, Any] = pairs_of(fields.all("set"), "set")
    if fields.get("background") is not None:
        mode_options["background"] = fields.get("background")
    mode = modes.create(mode_name, mode_options)
    alpha = fields.flag("alpha")
    choice = _resolve(fields, _APPLY_FIELDS)
    wants_method = fields.get("method") is not None or fields.get("preset") is not None or bool(choice.options)
    chosen = [name for name, given in (("mask", has_mask), ("alpha", alpha), ("method", wants_method)) if given]
    if len(chosen) > 1:
        raise OptionError(chosen[1], f"choose one mask source, not {' and '.join(chosen)}")
    if not chosen:
        raise OptionError("masks", "say where the mask comes from: upload it as the 'mask' part of a form, or "
                                   "ask for alpha=true or a method")
    method = cache.get(choice.method, choice.options) if wants_method else None
    format = _format(fields, accept)
    OutputPlan.for_images(format, alpha=bool(getattr(mode, "output_alpha", False)))  # an impossible format fails now
    return Plan(method, choice.refinement, format, _quality(fields), mode=mode,
                resize_mask=fields.flag("resize-mask"), alpha=alpha, json=_wants_json(fields, accept))


def _resolve(fields: Fields, taken: set[str]) -> Any:
    from maskcli.presets import resolve

    options: dict[str, Any] = pairs_of(fields.all("param"), "param")
    options.update(fields.rest(taken))
    for key, reason in REFUSED.items():
        if key in options:  # given as a method option (param=weights=...)
            raise OptionError(key, reason)
    return resolve(fields.get("method"), fields.get("preset"), options)


def _typed(fields: Fields, name: str, kind: type, default: Any) -> Any:
    value = fields.get(name)
    return default if value is None else coerce(OptionInfo(name.replace("-", "_"), kind, default, ""), value)


def _quality(fields: Fields) -> int:
    quality = _typed(fields, "quality", int, 92)
    if not 1 <= quality <= 100:
        raise OptionError("quality", f"must be between 1 and 100, not {quality}")
    return int(quality)


def _format(fields: Fields, accept: str) -> str | None:
    """The format asked for: the ``format`` field, else the first image type of ``Accept`` that we write."""
    requested = fields.get("format")
    if requested is not None:
        format = FORMATS.get("." + requested.lower().lstrip("."))
        if format is None:
            raise OptionError("format", f"unknown format {requested!r}; choose png, jpg, webp or tiff")
        return format
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        for format, media_type in MEDIA_TYPES.items():
            if media == media_type:
                return format
    return None


def _wants_json(fields: Fields, accept: str) -> bool:
    """The record as JSON (with the image in base64) rather than the image with its record in a header."""
    return fields.flag("json") or accept.split(",")[0].split(";")[0].strip().lower() == "application/json"


__all__ = ["MEDIA_TYPES", "Fields", "MethodCache", "Plan", "plan_apply", "plan_segment"]
