"""Scoring masks against ground truth, and ranking methods on a user's own images.

Two questions, one module:

* **How good are these masks?** :func:`evaluate_folders` pairs prediction files with truth files by relative path
  and stem (``sub/a.jpg``'s mask ``sub/a.png`` pairs with the truth ``sub/a.png``), scores each pair with
  :func:`maskcli.metrics.score`, and lists what could not be paired on either side.
* **Which method for my data?** :func:`compare_methods` runs each method (with its options and refinement) on each
  image that has a truth, times it, scores it, and ranks the methods by mean IoU.

Files are streamed: only the paths are listed up front, and one image (with its masks) is in memory at a time.
Nothing here prints; results come back as data and the CLI shows them.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from maskcli.errors import InputError, MaskcliError, OptionError, SetupError
from maskcli.io.sources import Source, walk_folder
from maskcli.metrics import SCORE_KEYS, score
from maskcli.work import JobBase

__all__ = [
    "Pair",
    "Pairing",
    "ImageScore",
    "Evaluation",
    "MethodSpec",
    "MethodResult",
    "Ranking",
    "pair_key",
    "pair_files",
    "pair_truths",
    "evaluate_pairs",
    "evaluate_folders",
    "mean_scores",
    "worst_first",
    "parse_method_specs",
    "compare_methods",
]


@dataclasses.dataclass
class Pair:
    """A prediction (or an image) and its truth, found under the same key."""

    key: str
    source: str
    truth: str


@dataclasses.dataclass
class Pairing:
    """Pairs in key order, and the files of each side that found no partner (or whose listing failed)."""

    pairs: list[Pair]
    unpaired_sources: list[str]
    unpaired_truths: list[str]
    #: Files (or folders) that could not be listed or share a key with another file, with the reason.
    problems: list[tuple[str, str]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class ImageScore:
    """The scores of one image (or why it could not be scored)."""

    key: str
    source: str
    truth: str
    scores: dict[str, float] = dataclasses.field(default_factory=dict)
    error: str | None = None
    #: Seconds the method (and refinement) took on this image, when a method made the mask.
    seconds: float | None = None
    #: The method's facts (threshold, confidence, warnings), when a method made the mask.
    facts: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    def record(self) -> dict[str, Any]:
        """JSON-friendly form."""
        record: dict[str, Any] = {"key": self.key, "source": self.source, "truth": self.truth, "error": self.error}
        record.update({k: _round(v) for k, v in self.scores.items()})
        if self.seconds is not None:
            record["ms"] = round(self.seconds * 1000, 2)
        if self.facts:
            record["facts"] = self.facts
        return record


@dataclasses.dataclass
class Evaluation:
    """Scores of a folder of predictions against a folder of truths."""

    images: list[ImageScore]
    pairing: Pairing
    level: float
    tolerance: float

    @property
    def scored(self) -> list[ImageScore]:
        return [image for image in self.images if image.ok]

    @property
    def failed(self) -> list[ImageScore]:
        return [image for image in self.images if not image.ok]

    @property
    def means(self) -> dict[str, float]:
        return mean_scores(self.images)


def _round(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) and math.isfinite(value) else value


def pair_key(relpath: PurePosixPath | str) -> str:
    """The key that pairs files: the relative path without its suffix.

    >>> pair_key(PurePosixPath("sub/a.jpg")), pair_key("b.png")
    ('sub/a', 'b')
    """
    path = PurePosixPath(relpath)
    return str(path.with_suffix("")) if path.suffix else str(path)


def _listing(path: Path) -> Iterator[Source]:
    if path.is_dir():
        yield from walk_folder(path, recursive=True)
    elif path.exists():
        yield Source(str(path), PurePosixPath(path.name))
    else:
        yield Source(str(path), PurePosixPath(path.name), error="no such file or folder")


def pair_files(sources: str | os.PathLike[str], truths: str | os.PathLike[str]) -> Pairing:
    """Pair the image files under ``sources`` with those under ``truths`` by relative path and stem.

    Both folders are walked recursively. Two single files pair with each other whatever their names. A key held by
    two files of one side (``a.png`` and ``a.jpg``) pairs its first file in name order; the others are reported
    in ``problems``. Only paths are held, never pixels.

    Examples
    --------
    >>> import tempfile
    >>> scratch = tempfile.TemporaryDirectory(); root = Path(scratch.name)
    >>> for name in ("pred/a.png", "pred/sub/b.png", "pred/c.png", "gt/a.png", "gt/sub/b.png", "gt/d.png"):
    ...     (root / name).parent.mkdir(parents=True, exist_ok=True); _ = (root / name).write_bytes(b"")
    >>> pairing = pair_files(root / "pred", root / "gt")
    >>> [p.key for p in pairing.pairs], pairing.unpaired_sources, pairing.unpaired_truths
    (['a', 'sub/b'], ['c.png'], ['d.png'])
    >>> scratch.cleanup()
    """
    sources, truths = Path(sources), Path(truths)
    problems: list[tuple[str, str]] = []
    if sources.is_file() and truths.is_file():
        return Pairing([Pair(pair_key(sources.name), str(sources), str(truths))], [], [])
    if not sources.exists():
        raise SetupError(f"{sources}: no such file or folder")
    if not truths.exists():
        raise SetupError(f"{truths}: no such file or folder")
    truth_index: dict[str, Source] = {}
    for source in _listing(truths):
        if source.error:
            problems.append((source.path, source.error))
            continue
        key = pair_key(source.relpath)
        if key in truth_index:
            problems.append((source.path, f"same name as {truth_index[key].path}; only that one is used"))
            continue
        truth_index[key] = source
    pairs: list[Pair] = []
    unpaired_sources: list[str] = []
    seen: dict[str, str] = {}
    for source in _listing(sources):
        if source.error:
            problems.append((source.path, source.error))
            continue
        key = pair_key(source.relpath)
        if key in seen:
            problems.append((source.path, f"same name as {seen[key]}; only that one is used"))
            continue
        seen[key] = source.path
        truth = truth_index.get(key)
        if truth is None:
            unpaired_sources.append(str(source.relpath))
        else:
            pairs.append(Pair(key, source.path, truth.path))
    unpaired_truths = [str(s.relpath) for k, s in truth_index.items() if k not in seen]
    pairs.sort(key=lambda pair: pair.key)
    return Pairing(pairs, unpaired_sources, sorted(unpaired_truths), problems)


def _read_mask(path: str) -> np.ndarray:
    from maskcli.io.masks import read_mask

    return read_mask(path)


def pair_truths(images: str | os.PathLike[str], truths: str | os.PathLike[str],
                classes: Sequence[str] | None = None) -> tuple[Pairing, Callable[[Pair], np.ndarray]]:
    """Pair images with their true masks as ``maskcli eval`` and ``maskcli train`` do, and say how to read a truth.

    ``truths`` is a folder of mask files (paired by relative path and stem, :func:`pair_files`), a COCO file or a
    folder of label images with its ``labels.json`` (paired by the key of each entry's file name, the mask being
    the union of ``classes``, default all; :func:`pair_sets`).

    Returns
    -------
    Pairing
        The pairs and what could not be paired.
    callable
        Reads a pair's truth in the mask convention (float32 H×W in [0, 1]); picklable, for worker processes.

    Examples
    --------
    >>> import tempfile
    >>> from maskcli.io.files import write_atomic
    >>> from maskcli.io.masks import encode_mask
    >>> scratch = tempfile.TemporaryDirectory(); root = Path(scratch.name)
    >>> write_atomic(root / "photos" / "a.jpg", b"not decoded here")
    >>> write_atomic(root / "truth" / "a.png", encode_mask(np.ones((2, 3), np.float32)))
    >>> pairing, read_truth = pair_truths(root / "photos", root / "truth")
    >>> [pair.key for pair in pairing.pairs], read_truth(pairing.pairs[0]).shape
    (['a'], (2, 3))
    >>> scratch.cleanup()
    """
    from maskcli.formats.sources import open_mask_set

    truth_set = open_mask_set(truths, classes)
    if truth_set is None:
        return pair_files(images, truths), _read_truth_file
    return pair_sets(images, truths, None, truth_set), _SetReader(truth_set, _set_keys(truths, truth_set), "truth")


def _read_truth_file(pair: Pair) -> np.ndarray:
    return _read_mask(pair.truth)


def evaluate_pairs(pairs: Iterable[Pair], *, level: float = 0.5, tolerance: float = 2,
                   read_source: Callable[[Pair], np.ndarray] | None = None,
                   read_truth: Callable[[Pair], np.ndarray] | None = None) -> Iterator[ImageScore]:
    """Score each pair, lazily: one line of :class:`ImageScore` per pair, failures carrying their reason.

    ``read_source`` and ``read_truth`` read a side that is not a mask file (a COCO file's or label images'
    masks); by default each side is read from its path."""
    for pair in pairs:
        try:
            prediction = read_source(pair) if read_source else _read_mask(pair.source)
            truth = read_truth(pair) if read_truth else _read_mask(pair.truth)
            yield ImageScore(pair.key, pair.source, pair.truth, score(prediction, truth, level=level,
                                                                      tolerance=tolerance))
        except InputError as error:
            yield ImageScore(pair.key, pair.source, pair.truth, error=str(error))


def evaluate_folders(
    predictions: str | os.PathLike[str],
    truths: str | os.PathLike[str],
    *,
    level: float = 0.5,
    tolerance: float = 2,
    classes: Sequence[str] | None = None,
) -> Evaluation:
    """Pair and score a folder of predicted masks against a folder of true masks.

    Either side may instead be a COCO file or a folder of label images (with ``labels.json``): its masks are
    the union of ``classes`` (default: every class), paired by file name. Raises :class:`~maskcli.errors.SetupError` when a folder is missing or nothing pairs.

    Examples
    --------
    >>> import tempfile
    >>> from maskcli.io.files import write_atomic
    >>> from maskcli.io.masks import encode_mask
    >>> scratch = tempfile.TemporaryDirectory(); root = Path(scratch.name)
    >>> truth = np.zeros((4, 4), np.float32); truth[:2] = 1
    >>> write_atomic(root / "gt" / "a.png", encode_mask(truth))
    >>> write_atomic(root / "pred" / "a.png", encode_mask(np.ones((4, 4), np.float32)))
    >>> result = evaluate_folders(root / "pred", root / "gt")
    >>> result.means["iou"], result.images[0].key
    (0.5, 'a')
    >>> scratch.cleanup()
    """
    _check_level(level, tolerance)
    from maskcli.formats.sources import open_mask_sets

    sets = open_mask_sets([predictions, truths], classes)
    if sets == [None, None]:
        pairing = pair_files(predictions, truths)
    else:
        pairing = pair_sets(predictions, truths, *sets)
    if not pairing.pairs:
        raise SetupError(f"no prediction in {predictions} has a truth of the same name in {truths}")
    read_source, read_truth = (_set_reader(path, mask_set, side) for path, mask_set, side in
                               ((predictions, sets[0], "source"), (truths, sets[1], "truth")))
    images = list(evaluate_pairs(pairing.pairs, level=level, tolerance=tolerance, read_source=read_source,
                                 read_truth=read_truth))
    return Evaluation(images, pairing, level, tolerance)


def _set_reader(path: Any, mask_set: Any, side: str) -> Callable[[Pair], np.ndarray] | None:
    """Reads one side of a pair from a mask set, by the name :func:`pair_sets` gave it (None: not a set)."""
    if mask_set is None:
        return None
    return _SetReader(mask_set, _set_keys(path, mask_set), side)


def _set_keys(path: Any, mask_set: Any) -> dict[str, str]:
    """The set's keys under the names :func:`pair_sets` gives its entries."""
    return {_set_name(path, name): key for key, name in mask_set.keys().items()}


@dataclasses.dataclass
class _SetReader:
    """One side of pairs read from a mask set; a class, not a closure, so that worker processes get it."""

    mask_set: Any
    keys: dict[str, str]
    side: str

    def __call__(self, pair: Pair) -> np.ndarray:
        return self.mask_set.mask(self.keys[getattr(pair, self.side)])


def _set_name(path: Any, name: str) -> str:
    """How a pair names an entry of a mask set: the set's path and the entry's name."""
    return f"{Path(path)}:{name}"


def pair_sets(sources: str | os.PathLike[str], truths: str | os.PathLike[str], source_set: Any = None,
              truth_set: Any = None) -> Pairing:
    """Pair by key (relative path without suffix) when a side is a COCO file or label images (a mask set of
    :mod:`maskcli.formats.sources`, given as ``source_set`` / ``truth_set``) and the other may be a folder."""
    sides = []
    problems: list[tuple[str, str]] = []
    for path, mask_set in ((sources, source_set), (truths, truth_set)):
        path = Path(path)
        if mask_set is not None:
            problems += [(str(path), problem) for problem in mask_set.problems]
            sides.append({key: _set_name(path, name) for key, name in mask_set.keys().items()})
            continue
        if not path.exists():
            raise SetupError(f"{path}: no such file or folder")
        listed: dict[str, str] = {}
        for source in _listing(path):
            if source.error:
                problems.append((source.path, source.error))
            elif pair_key(source.relpath) in listed:
                problems.append((source.path, f"same name as {listed[pair_key(source.relpath)]}; only that "
                                              "one is used"))
            else:
                listed[pair_key(source.relpath)] = source.path
        sides.append(listed)
    left, right = sides
    stems = _unique_stems(right)
    pairs = []
    unpaired = []
    used = set()
    for key in sorted(left):
        match = key if key in right else stems.get(PurePosixPath(key).name)
        if match is None:
            unpaired.append(key)
        else:
            used.add(match)
            pairs.append(Pair(key, left[key], right[match]))
    return Pairing(pairs, unpaired, sorted(k for k in right if k not in used), problems)


def _unique_stems(keys: Iterable[str]) -> dict[str, str]:
    """Stem → key for stems only one key has (``photos/a`` and ``a`` pair when nothing else is named ``a``)."""
    stems: dict[str, str | None] = {}
    for key in keys:
        stem = PurePosixPath(key).name
        stems[stem] = None if stem in stems else key
    return {stem: key for stem, key in stems.items() if key is not None}


def _check_level(level: float, tolerance: float) -> None:
    if not 0.0 < level <= 1.0:
        raise OptionError("level", f"must be in (0, 1], not {level}")
    if tolerance < 0:
        raise OptionError("tolerance", f"must be 0 or more pixels, not {tolerance}")


def mean_scores(images: Iterable[ImageScore]) -> dict[str, float]:
    """Mean of each score over the images that were scored (failed ones are left out); empty if none.

    >>> mean_scores([ImageScore("a", "", "", {"iou": 1.0}), ImageScore("b", "", "", {"iou": 0.5}),
    ...              ImageScore("c", "", "", error="unreadable")])
    {'iou': 0.75}
    """
    totals: dict[str, float] = {}
    count = 0
    for image in images:
        if not image.ok:
            continue
        count += 1
        for key, value in image.scores.items():
            totals[key] = totals.get(key, 0.0) + value
    return {key: totals[key] / count for key in _ordered(totals)} if count else {}


def _ordered(keys: Iterable[str]) -> list[str]:
    keys = list(keys)
    return [k for k in SCORE_KEYS if k in keys] + [k for k in keys if k not in SCORE_KEYS]


def worst_first(images: Iterable[ImageScore], key: str = "iou") -> list[ImageScore]:
    """Images by ascending ``key`` score (ties by name); failed images come first, since they are worst of all.

    >>> [i.key for i in worst_first([ImageScore("a", "", "", {"iou": 0.9}), ImageScore("b", "", "", {"iou": 0.2})])]
    ['b', 'a']
    """
    return sorted(images, key=lambda i: (i.ok, i.scores.get(key, -1.0) if i.ok else -1.0, i.key))


# -- comparing methods ----------------------------------------------------------------------------------------


@dataclasses.dataclass
class MethodSpec:
    """One contender: a label, a registered method, its options, and refinement settings (``maskcli.refine``)."""

    label: str
    method: str
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    refinement: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class MethodResult:
    """One method's scores on every image, and its means."""

    spec: MethodSpec
    images: list[ImageScore]
    #: The score the ranking uses (``iou``, or ``iou_both`` for sets scored on both classes).
    rank_key: str = "iou"

    @property
    def means(self) -> dict[str, float]:
        return mean_scores(self.images)

    @property
    def mean(self) -> float:
        """The ranking score; NaN when no image was scored."""
        return self.means.get(self.rank_key, float("nan"))

    @property
    def seconds_per_image(self) -> float:
        """Median seconds per image: the first call of a method can pay a one-off setup (loading a model's
        weights) that a mean would spread over the images; NaN when no image was timed."""
        times = [i.seconds for i in self.images if i.ok and i.seconds is not None]
        return float(np.median(times)) if times else float("nan")

    @property
    def failed(self) -> list[ImageScore]:
        return [image for image in self.images if not image.ok]


@dataclasses.dataclass
class Ranking:
    """Methods ranked best first by mean ``rank_key``, with what could not be paired."""

    results: list[MethodResult]
    pairing: Pairing
    level: float
    tolerance: float
    rank_key: str = "iou"

    @property
    def best(self) -> MethodResult:
        return self.results[0]


def parse_method_specs(text: str | Sequence[str]) -> list[MethodSpec]:
    """Contenders from the ``--methods`` syntax.

    Entries are separated by commas; each is ``NAME`` or ``NAME:KEY=VALUE[:KEY=VALUE...]`` for a registered
    method with options, or ``preset:NAME[:KEY=VALUE...]`` for a named preset (its method, options and
    refinement; the pairs given override its method options). A key that is not an option of the method but is
    a refinement setting (``fill_holes``, ``min_size`` ...) goes to the refinement. The label of an entry is the
    entry as written. Several strings (a repeated option) are joined.

    Examples
    --------
    >>> [(s.label, s.method, s.options) for s in parse_method_specs("otsu,li:sigma=1:polarity=dark")]
    [('otsu', 'otsu', {}), ('li:sigma=1:polarity=dark', 'li', {'sigma': '1', 'polarity': 'dark'})]
    >>> parse_method_specs("li:sigma")
    Traceback (most recent call last):
    ...
    maskcli.errors.OptionError: methods: expected KEY=VALUE after the method name in 'li:sigma', got 'sigma'
    """
    texts = [text] if isinstance(text, str) else list(text)
    entries = [entry.strip() for chunk in texts for entry in chunk.split(",") if entry.strip()]
    if not entries:
        raise OptionError("methods", "give at least one method, e.g. `methods='otsu,li'`")
    specs = []
    labels: set[str] = set()
    for entry in entries:
        spec = _parse_entry(entry)
        if spec.label in labels:
            raise OptionError("methods", f"{spec.label!r} is listed twice")
        labels.add(spec.label)
        specs.append(spec)
    return specs


def _parse_entry(entry: str) -> MethodSpec:
    head, *rest = entry.split(":")
    head = head.strip()
    preset_name = None
    if head == "preset":
        if not rest or not rest[0].strip() or "=" in rest[0]:
            raise OptionError("methods", f"expected preset:NAME, got {entry!r}")
        preset_name, *rest = rest
        preset_name = preset_name.strip()
    pairs: list[list[str]] = []
    for piece in rest:
        if "=" in piece:
            key, _, value = piece.partition("=")
            pairs.append([key.strip(), value.strip()])
        elif pairs:  # a colon inside a value (a Windows path): glue it back on
            pairs[-1][1] += ":" + piece
        else:
            raise OptionError("methods", f"expected KEY=VALUE after the method name in {entry!r}, got {piece!r}")
    overrides = {key.replace("-", "_"): value for key, value in pairs}
    if any(not key for key in overrides):
        raise OptionError("methods", f"an option without a name in {entry!r}")
    if preset_name is None and not head:
        raise OptionError("methods", f"an entry without a method name: {entry!r}")
    from maskcli.presets import resolve

    choice = resolve(head if preset_name is None else None, preset_name, overrides)
    return MethodSpec(entry, choice.method, choice.options, choice.refinement)


def _build(spec: MethodSpec) -> tuple[Any, Any]:
    from maskcli.methods import methods
    from maskcli.refine import refinement

    method = methods.create(spec.method, spec.options)
    try:
        return method, refinement(spec.refinement)
    except TypeError as error:
        raise OptionError("refinement", f"{spec.label}: {error}") from None


def compare_methods(
    images: str | os.PathLike[str],
    truths: str | os.PathLike[str],
    specs: Sequence[MethodSpec | tuple[str, str, dict[str, Any], dict[str, Any]]],
    *,
    level: float = 0.5,
    tolerance: float = 2,
    both_classes: bool = False,
    limit: int | None = None,
    progress: Callable[[str, ImageScore], None] | None = None,
    jobs: int | None = 1,
    executor: Any = None,
    fail_fast: bool = False,
    classes: Sequence[str] | None = None,
) -> Ranking:
    """Run each method on each image that has a truth, score it, and rank the methods by mean IoU.

    Parameters
    ----------
    images, truths : path
        Folders (walked recursively) of images and of their true masks, paired by relative path and stem.
        ``truths`` may be a COCO file or a folder of label images, paired by file name.
    specs : list of MethodSpec or (label, method, options, refinement)
        The contenders. Every method is built before any image is read, so a bad option fails at once.
    level, tolerance : float
        Binarisation level and boundary tolerance in pixels, as in :func:`maskcli.metrics.score`.
    both_classes : bool
        Rank by the mean of foreground and background IoU (``iou_both``), for sets where the foreground covers
        most of each image.
    limit : int, optional
        Score only the first ``limit`` pairs (in key order).
    progress : callable, optional
        Called as ``progress(label, image_score)`` after each method on each image, in key order.
    jobs : int, optional
        Cores for the runner (:func:`maskcli.pipeline.run`); 1 (the default) keeps the timings free of
        contention, None uses every core.
    executor : maskcli.engines.Executor, optional
        Where the images are processed; default: a local engine for ``jobs``.
    fail_fast : bool
        Stop at the first image that could not be read or that a method failed on.
    classes : sequence of str, optional
        With a COCO file or label images as ``truths``: the classes that make the true mask (default all).

    Returns
    -------
    Ranking
        Best first; a method that failed on every image ranks last. The time per image is the method's and the
        refinement's, decoding excluded (it is shared by all methods); ``seconds_per_image`` is its median.

    Each image is decoded once and every method runs on it, so memory holds one image per core.
    """
    from maskcli.pipeline import run

    _check_level(level, tolerance)
    specs = [spec if isinstance(spec, MethodSpec) else MethodSpec(*spec) for spec in specs]
    if not specs:
        raise OptionError("methods", "give at least one method")
    built = [_build(spec) for spec in specs]
    pairing, read_truth = pair_truths(images, truths, classes)
    pairs = pairing.pairs[:limit] if limit is not None else pairing.pairs
    if not pairs:
        raise SetupError(f"no image in {images} has a truth of the same name in {truths}")
    job = _CompareJob(pairs, built, level, tolerance, read_truth)
    rank_key = "iou_both" if both_classes else "iou"
    results = [MethodResult(spec, [], rank_key) for spec in specs]
    for outcome in run(_pair_items(pairs), job, executor=executor, jobs=jobs, fail_fast=fail_fast):
        pair = pairs[outcome.index]
        entries = outcome.facts.get("scores") or [
            ImageScore(pair.key, pair.source, pair.truth, error=outcome.error) for _ in specs]
        for result, entry in zip(results, entries):
            result.images.append(entry)
            if progress is not None:
                progress(result.spec.label, entry)
    results.sort(key=lambda r: (-r.mean if math.isfinite(r.mean) else math.inf))
    return Ranking(results, pairing, level, tolerance, rank_key)


def _pair_items(pairs: Sequence[Pair]) -> Iterator[Any]:
    """One item per pair; its index finds the pair again (the job holds the pairs)."""
    from maskcli.io.sources import Item

    for index, pair in enumerate(pairs):
        yield Item(index, Source(pair.source, PurePosixPath(pair.key)))


@dataclasses.dataclass
class _CompareJob(JobBase):
    """Decode an image and its truth → every method on it, timed and scored; nothing is written."""

    pairs: Sequence[Pair]
    built: list[tuple[Any, Any]]
    level: float
    tolerance: float
    #: Reads a pair's truth when it is not a mask file (a COCO file's or label images' mask).
    read_truth: Callable[[Pair], np.ndarray] | None = None

    @property
    def batched(self) -> bool:
        return any(method.batched for method, _ in self.built)

    @property
    def batch_size(self) -> int:
        return max(method.batch_size for method, _ in self.built) if self.batched else 1

    def load(self, item: Any) -> tuple[Pair, np.ndarray, np.ndarray]:
        from maskcli.io.decode import read_image

        pair = self.pairs[item.index]
        truth = self.read_truth(pair) if self.read_truth is not None else _read_mask(pair.truth)
        return pair, read_image(pair.source).pixels, truth

    def compute(self, loaded: list[tuple[Pair, np.ndarray, np.ndarray]]) -> list[list[ImageScore]]:
        scores: list[list[ImageScore]] = [[] for _ in loaded]
        for method, refiner in self.built:
            for index, entry in enumerate(self._method_on(method, refiner, loaded)):
                scores[index].append(entry)
        return scores

    def _method_on(self, method: Any, refiner: Any, loaded: list[Any]) -> list[ImageScore]:
        from maskcli.jobs.segment import segment_images

        entries = [ImageScore(pair.key, pair.source, pair.truth) for pair, _, _ in loaded]
        try:
            started = time.perf_counter()
            segmentations = segment_images([image for _, image, _ in loaded], method, refiner)
            seconds = (time.perf_counter() - started) / len(loaded)
            for entry, segmentation, (_, _, truth) in zip(entries, segmentations, loaded):
                entry.seconds = seconds
                entry.facts = _plain_facts(segmentation.facts)
                entry.scores = score(segmentation.mask, truth, level=self.level, tolerance=self.tolerance)
        except SetupError:
            raise  # missing weights would fail every image the same way
        except Exception as error:  # one image breaking a method must not end the comparison
            if len(loaded) > 1:  # a batch: find the image that breaks it
                return [self._method_on(method, refiner, [one])[0] for one in loaded]
            entries[0].error = str(error) if isinstance(error, MaskcliError) else f"{type(error).__name__}: {error}"
        return entries

    def save(self, item: Any, loaded: Any, computed: list[ImageScore], gate: Any) -> Any:
        from maskcli.work import Result

        errors = [entry.error for entry in computed if entry.error]
        return Result(item.index, item.name, None, "failed" if errors else "written",
                      error=errors[0] if errors else None, facts={"scores": computed})


def _plain_facts(facts: dict[str, Any]) -> dict[str, Any]:
    """Facts with numpy scalars turned into Python ones, so records serialise."""
    plain: dict[str, Any] = {}
    for key, value in facts.items():
        if isinstance(value, np.generic):
            value = value.item()
        plain[key] = value
    return plain
