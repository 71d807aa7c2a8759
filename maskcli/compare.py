"""Ranking methods on a user's own images: which method for my data? (``maskcli eval --methods``)

:func:`compare_methods` runs each method (with its options and refinement) on each image that has a truth, times
it, scores it (:mod:`maskcli.evaluate`), and ranks the methods by mean IoU. Images pair with their truths as in
``maskcli eval`` (:func:`maskcli.masksources.truths.pair_truths`). Nothing here prints; the ranking comes back as
data and the CLI shows it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from maskcli.errors import MaskcliError, OptionError, SetupError
from maskcli.evaluate import ImageScore, check_level, mean_scores
from maskcli.io.decode import Image
from maskcli.io.frames import FrameReader, read_paired_image
from maskcli.io.pairing import Pair, Pairing
from maskcli.io.sources import Source
from maskcli.masksources.truths import pair_truths, read_truth_file
from maskcli.metrics import score
from maskcli.work import JobBase

__all__ = ["MethodResult", "MethodSpec", "Ranking", "build_method", "compare_methods", "parse_method_specs"]


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


def build_method(spec: MethodSpec) -> tuple[Any, Any]:
    """The contender's method and refiner, built from its options (a bad option is an :class:`OptionError`)."""
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

    check_level(level, tolerance)
    contenders = [spec if isinstance(spec, MethodSpec) else MethodSpec(*spec) for spec in specs]
    if not contenders:
        raise OptionError("methods", "give at least one method")
    built = [build_method(spec) for spec in contenders]
    pairing, read_truth = pair_truths(images, truths, classes)
    pairs = pairing.pairs[:limit] if limit is not None else pairing.pairs
    if not pairs:
        raise SetupError(f"no image in {images} has a truth of the same name in {truths}")
    job = _CompareJob(pairs, built, level, tolerance, read_truth)
    rank_key = "iou_both" if both_classes else "iou"
    results = [MethodResult(spec, [], rank_key) for spec in contenders]
    for outcome in run(_pair_items(pairs), job, executor=executor, jobs=jobs, fail_fast=fail_fast):
        pair = pairs[outcome.index]
        entries = outcome.facts.get("scores") or [
            ImageScore(pair.key, pair.source, pair.truth, error=outcome.error) for _ in contenders]
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
        yield Item(index, Source(pair.source, PurePosixPath(pair.key), part=pair.frame))


@dataclasses.dataclass
class _CompareJob(JobBase):
    """Decode an image and its truth → every method on it, timed and scored; nothing is written."""

    pairs: Sequence[Pair]
    built: list[tuple[Any, Any]]
    level: float
    tolerance: float
    #: Reads a pair's truth when it is not a mask file (a COCO file's or label images' mask).
    read_truth: Callable[[Pair], np.ndarray] | None = None
    #: The frames of the videos among the images (their pairs name a frame).
    frames: FrameReader = dataclasses.field(default_factory=FrameReader)

    @property
    def batched(self) -> bool:
        return any(method.batched for method, _ in self.built)

    @property
    def batch_size(self) -> int:
        return max(method.batch_size for method, _ in self.built) if self.batched else 1

    def load(self, item: Any) -> tuple[Pair, Image, np.ndarray]:
        pair = self.pairs[item.index]
        truth = self.read_truth(pair) if self.read_truth is not None else read_truth_file(pair)
        return pair, read_paired_image(pair, self.frames), truth

    def compute(self, loaded: list[tuple[Pair, Image, np.ndarray]]) -> list[list[ImageScore]]:
        scores: list[list[ImageScore]] = [[] for _ in loaded]
        for method, refiner in self.built:
            for index, entry in enumerate(self._method_on(method, refiner, loaded)):
                scores[index].append(entry)
        return scores

    def _method_on(self, method: Any, refiner: Any, loaded: list[Any]) -> list[ImageScore]:
        from maskcli.jobs.segment import method_input, segment_images

        entries = [ImageScore(pair.key, pair.source, pair.truth) for pair, _, _ in loaded]
        try:
            started = time.perf_counter()
            # What segment gives the method (its integer samples where it works on them), so eval ranks the masks
            # segment makes.
            segmentations = segment_images([method_input(image, method, refiner) for _, image, _ in loaded], method,
                                           refiner)
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
