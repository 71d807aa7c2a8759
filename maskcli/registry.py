"""A small registry by decorator, shared by mask methods and compositing modes.

A registry maps a name to a class. Registering a name twice is an error, and so is asking for an unknown one; the
message lists the valid names. The CLI's choices, help texts and ``maskcli methods`` tables are read from here.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import re
import threading
import typing
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Generic, TypeVar

from maskcli.errors import OptionError, did_you_mean

T = TypeVar("T")

#: A registering decorator in a source file: ``@methods.register("otsu")``.
_REGISTERED = re.compile(r"^@\w+\.register\(\s*[\"']([^\"']+)[\"']", re.MULTILINE)


@dataclasses.dataclass(frozen=True)
class OptionInfo:
    """One option of a registered class, as the CLI and ``maskcli methods NAME`` show it."""

    name: str
    type: Any
    default: Any
    help: str
    choices: tuple[str, ...] | None = None

    @property
    def type_name(self) -> str:
        if self.choices:
            return "|".join(self.choices)
        return getattr(self.type, "__name__", str(self.type)).replace("NoneType", "none")


def option(default: Any, help: str, *, choices: tuple[str, ...] | None = None) -> Any:
    """Declare a dataclass field as a user-facing option with a help text.

    >>> import dataclasses
    >>> @dataclasses.dataclass
    ... class Demo:
    ...     sigma: float = option(0.0, "Gaussian pre-smoothing, in pixels.")
    >>> Demo().sigma
    0.0
    """
    metadata = {"help": help, "choices": choices}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def options_of(cls: type) -> list[OptionInfo]:
    """The options of a dataclass registered in a registry, in declaration order."""
    hints = typing.get_type_hints(cls)
    infos = []
    for field in dataclasses.fields(cls):
        if not field.init or field.name.startswith("_"):
            continue
        default = field.default
        if default is dataclasses.MISSING and field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        infos.append(
            OptionInfo(
                name=field.name,
                type=hints.get(field.name, Any),
                default=None if default is dataclasses.MISSING else default,
                help=field.metadata.get("help", ""),
                choices=field.metadata.get("choices"),
            )
        )
    return infos


class Registry(Generic[T]):
    """Named classes of one kind ("method", "mode").

    >>> modes = Registry("mode")
    >>> @modes.register("plain")
    ... class Plain:
    ...     summary = "Does nothing."
    >>> modes.names()
    ['plain']
    >>> modes.get("plian")
    Traceback (most recent call last):
    ...
    maskcli.errors.OptionError: mode: unknown mode 'plian'; did you mean 'plain'? Valid: plain
    """

    def __init__(self, kind: str, loader: Callable[[], None] | None = None, *, package: str | None = None,
                 skip: tuple[str, ...] = ()) -> None:
        """``package``: the entries are registered by the modules of this package (those named in ``skip``, or
        starting with ``_``, excepted), imported when first needed: one name loads only the module that
        registers it (found by reading the sources, not importing them), a listing loads them all."""
        self.kind = kind
        self._entries: dict[str, type[T]] = {}
        self._package, self._skip = package, skip
        self._loader = loader if loader is not None or package is None else self._import_all
        self._loaded = self._loader is None
        self._where: dict[str, str] | None = None
        # A server's threads may ask for a listing at the same moment: one fills the registry, the others wait for
        # it (reentrant, since a module being loaded may ask again: it sees what is registered so far).
        self._filling = threading.RLock()
        self._loading = False

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        def decorate(cls: type[T]) -> type[T]:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            cls.name = name  # type: ignore[attr-defined]  # every registered class gets its name here
            self._entries[name] = cls
            return cls

        return decorate

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        with self._filling:
            if self._loaded or self._loading:
                return
            self._loading = True
            try:
                assert self._loader is not None
                self._loader()
                self._loaded = True
            finally:
                self._loading = False

    def _index(self) -> dict[str, str]:
        """Name → module, from the ``register("NAME")`` decorators in the package's source files."""
        if self._where is None:
            where: dict[str, str] = {}  # built whole, then published: a concurrent reader never sees it half made
            spec = importlib.util.find_spec(self._package) if self._package else None
            for folder in (spec.submodule_search_locations or []) if spec else []:
                for path in sorted(Path(folder).glob("*.py")):
                    if path.stem.startswith("_") or path.stem in self._skip:
                        continue
                    for name in _REGISTERED.findall(path.read_text(encoding="utf-8")):
                        where.setdefault(name, f"{self._package}.{path.stem}")
            self._where = where
        return self._where

    def _import_all(self) -> None:
        for module in sorted(set(self._index().values())):
            importlib.import_module(module)

    def _find(self, name: str) -> None:
        """Make sure ``name`` is registered if any module registers it, importing as little as possible."""
        if name in self._entries or self._loaded:
            return
        module = self._index().get(name) if self._package else None
        if module is not None:
            importlib.import_module(module)
        if name not in self._entries:
            self._ensure_loaded()

    def names(self) -> list[str]:
        self._ensure_loaded()
        return sorted(self._entries)

    def items(self) -> Iterator[tuple[str, type[T]]]:
        self._ensure_loaded()
        yield from sorted(self._entries.items())

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str):
            self._find(name)
        return name in self._entries

    def get(self, name: str) -> type[T]:
        self._find(name)
        try:
            return self._entries[name]
        except KeyError:
            hint = did_you_mean(name, self._entries)
            raise OptionError(
                self.kind, f"unknown {self.kind} {name!r}{hint} Valid: {', '.join(self.names())}"
            ) from None

    def create(self, name: str, options: Mapping[str, Any] | None = None) -> T:
        """Build the named class from user options, converting strings and naming any bad option."""
        cls = self.get(name)
        known = {info.name: info for info in options_of(cls)}
        kwargs = {}
        for key, value in (options or {}).items():
            key = key.replace("-", "_")
            if key not in known:
                valid = ", ".join(known) or "none"
                raise OptionError(key, f"{self.kind} {name!r} has no option {key!r} (its options: {valid})")
            kwargs[key] = coerce(known[key], value)
        return cls(**kwargs)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def coerce(info: OptionInfo, value: Any) -> Any:
    """Convert a user's value (often a string from the command line) to the option's type.

    >>> coerce(OptionInfo("k", int, 1, ""), "3")
    3
    >>> coerce(OptionInfo("mode", str, "a", "", choices=("a", "b")), "c")
    Traceback (most recent call last):
    ...
    maskcli.errors.OptionError: mode: must be one of a, b, not 'c'
    """
    target = info.type
    if typing.get_origin(target) in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = [a for a in typing.get_args(target) if a is not type(None)]
        if isinstance(value, str) and value.lower() in {"none", ""} and type(None) in typing.get_args(target):
            return None
        if value is None:
            return None
        target = args[0] if len(args) == 1 else args
    try:
        if isinstance(target, list):  # a union of several types: first that converts
            for candidate in target:
                try:
                    return coerce(dataclasses.replace(info, type=candidate), value)
                except OptionError:
                    continue
            raise ValueError
        if target is bool:
            if isinstance(value, bool):
                converted: Any = value
            elif str(value).lower() in _TRUE:
                converted = True
            elif str(value).lower() in _FALSE:
                converted = False
            else:
                raise ValueError
        elif target is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            converted = int(value)
        elif target is float:
            converted = float(value)
        elif target is str:
            converted = str(value)
        elif typing.get_origin(target) is tuple:
            parts = value.split(",") if isinstance(value, str) else list(value)
            item_type = typing.get_args(target)[0]
            converted = tuple(item_type(p.strip() if isinstance(p, str) else p) for p in parts if str(p).strip())
        else:
            converted = value
    except (TypeError, ValueError):
        raise OptionError(info.name, f"expected {info.type_name}, got {value!r}") from None
    if info.choices and converted not in info.choices:
        raise OptionError(info.name, f"must be one of {', '.join(info.choices)}, not {converted!r}")
    return converted
