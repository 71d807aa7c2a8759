"""Shards: one of N disjoint, deterministic shares of a batch, so that N drivers cover it exactly once.

An item belongs to shard ``K`` of ``N`` when a hash of its input's path, as listed, falls there: the same for every
driver given the same inputs, whatever order or machine lists them, and independent of the others' progress. A
batch is sharded after its outputs are planned, so names numbered across the batch (``{index}``) are the same in
every shard as in one run: the union of the shards' outputs is the single run's, file for file.

Examples
--------
>>> shard = Shard.parse("2/3")
>>> shard, shard.holds("photos/a.jpg") == Shard.parse("2/3").holds("photos/a.jpg")
(Shard(index=2, count=3), True)
>>> names = [f"photos/{n:04d}.jpg" for n in range(3000)]
>>> shares = [sum(Shard(k, 3).holds(name) for name in names) for k in (1, 2, 3)]
>>> sum(shares), all(900 < share < 1100 for share in shares)
(3000, True)
>>> Shard.parse("4/3")
Traceback (most recent call last):
...
maskcli.errors.OptionError: shard: K/N with 1 <= K <= N, not '4/3'
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from maskcli.errors import OptionError

if TYPE_CHECKING:  # the type alone: the command line reads a shard before any decoder loads
    from maskcli.io.sources import Item


@dataclasses.dataclass(frozen=True)
class Shard:
    """Share ``index`` (from 1) of ``count``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count:
            raise OptionError("shard", f"K/N with 1 <= K <= N, not '{self.index}/{self.count}'")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``K/N``, as the command line gives it."""
        index, slash, count = text.strip().partition("/")
        if not slash or not index.strip().isdigit() or not count.strip().isdigit():
            raise OptionError("shard", f"K/N with 1 <= K <= N, not {text!r}")
        return cls(int(index), int(count))

    def holds(self, path: str | os.PathLike[str]) -> bool:
        """Whether the input at ``path`` (as listed) belongs to this share."""
        name = os.fsencode(path)
        digest = hashlib.blake2b(name, digest_size=8).digest()
        return int.from_bytes(digest, "big") % self.count == self.index - 1

    def select(self, items: Iterable[Item]) -> Iterator[Item]:
        """The items of this share, lazily; the others are left out unread."""
        return (item for item in items if self.holds(item.source.path))


__all__ = ["Shard"]
