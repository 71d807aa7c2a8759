"""Previews of folders: :func:`write_previews` reads images and their masks, writes an overlay per image and one
contact sheet (drawn by :mod:`maskcli.preview.drawing`), streaming: one image is in memory at a time, beside the
sheet being filled. With truths, each mask is scored and the sheet lists the worst first.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from maskcli.errors import InputError, OptionError, OutputExists, SetupError
from maskcli.io.frames import FrameReader, read_paired_image
from maskcli.io.pairing import Pair, Pairing
from maskcli.preview.drawing import SheetLayout, draw_prompts, overlay_image, place_tile, scaled_to, stretch_levels
from maskcli.work import JobBase

__all__ = ["PreviewReport", "PreviewResult", "write_previews"]


@dataclasses.dataclass
class PreviewResult:
    """One image's preview: where its overlay went, its IoU against the truth, or why it failed."""

    key: str
    image: str
    mask: str
    output: str | None = None
    iou: float | None = None
    error: str | None = None


@dataclasses.dataclass
class PreviewReport:
    """What :func:`write_previews` did: one result per pair (in sheet order), and what could not be paired."""

    results: list[PreviewResult]
    pairing: Pairing  # of images with masks
    unpaired_masks_of_truth: list[str] = dataclasses.field(default_factory=list)
    sheet: str | None = None

    @property
    def failed(self) -> list[PreviewResult]:
        return [r for r in self.results if r.error]


def _load(pair: Pair, stretch: bool | None, frames: FrameReader) -> np.ndarray:
    image = read_paired_image(pair, frames)
    pixels = image.pixels
    # 16-bit scientific images often use a sliver of their range (the hela_* nuclei: under 2 %): show them stretched.
    if stretch or (stretch is None and image.bit_depth >= 16):
        pixels = stretch_levels(pixels)
    return pixels


@dataclasses.dataclass
class _Style:
    color: tuple[float, float, float]
    opacity: float
    outline: int


@dataclasses.dataclass
class _ScoreJob(JobBase):
    """Read a mask and its truth → their IoU (the sheet's order); nothing is written."""

    pairs: list[tuple[Pair, Pair]]  # by item index: (image, mask) and (image, truth)
    read_mask: Callable[[Pair], np.ndarray]
    read_truth: Callable[[Pair], np.ndarray]

    def load(self, item: Any) -> tuple[np.ndarray, np.ndarray]:
        mask_pair, truth_pair = self.pairs[item.index]
        mask = self.read_mask(mask_pair)
        try:
            return mask, self.read_truth(truth_pair)
        except InputError as error:
            raise InputError(f"cannot score against {truth_pair.truth}: {error}") from None

    def compute(self, loaded: list[tuple[np.ndarray, np.ndarray]]) -> list[float]:
        from maskcli.metrics import iou

        return [iou(mask, truth) for mask, truth in loaded]

    def save(self, item: Any, loaded: Any, computed: float, gate: Any) -> Any:
        from maskcli.work import Result

        return Result(item.index, item.name, None, "written", facts={"iou": computed})


@dataclasses.dataclass
class _OverlayJob(JobBase):
    """Decode an image and its mask → the overlay (written) and the sheet's tile (handed back)."""

    pairs: list[Pair]  # by item index: (image, mask)
    read_mask: Callable[[Pair], np.ndarray]
    style: _Style
    stretch: bool | None
    cell: int | None  # the sheet's cell side; None: no sheet
    prompts: Any = None  # a prompt source (maskcli.promptsources): its boxes and points are drawn
    frames: FrameReader = dataclasses.field(default_factory=FrameReader)  # the videos' among the images

    def load(self, item: Any) -> tuple[np.ndarray, np.ndarray, list[Any]]:
        pair = self.pairs[item.index]
        pixels = _load(pair, self.stretch, self.frames)
        asked = self.prompts.prompts(item.source, pixels.shape[1], pixels.shape[0]) if self.prompts else []
        return pixels, self.read_mask(pair), asked

    def compute(self, loaded: list[tuple[np.ndarray, np.ndarray, list[Any]]]
                ) -> list[tuple[np.ndarray, np.ndarray | None]]:
        from maskcli.masks import resize_mask

        style = dataclasses.asdict(self.style)
        made: list[tuple[np.ndarray, np.ndarray | None]] = []
        for pixels, mask, asked in loaded:
            picture = draw_prompts(overlay_image(pixels, mask, **style), asked)
            tile = None
            if self.cell is not None:
                # Drawn at thumbnail size, so the outline stays as wide on the sheet as asked for.
                small = scaled_to(pixels, self.cell)
                tile = overlay_image(small, resize_mask(mask, small.shape[:2], hard=False), **style)
                tile = draw_prompts(tile, asked, scale=small.shape[1] / pixels.shape[1])
            made.append((picture, tile))
        return made

    def save(self, item: Any, loaded: Any, computed: tuple[np.ndarray, np.ndarray | None], gate: Any) -> Any:
        from maskcli.io.encode import encode_image
        from maskcli.io.files import write_atomic
        from maskcli.work import Result

        picture, tile = computed
        output = None
        if item.destination is not None:
            write_atomic(item.destination, encode_image(picture, format="PNG"), gate=gate)
            output = str(item.destination)
        return Result(item.index, item.name, output, "written", facts={"tile": tile})


def write_previews(
    images: str | os.PathLike[str],
    masks: str | os.PathLike[str],
    *,
    output: str | os.PathLike[str] | None = None,
    sheet: str | os.PathLike[str] | None = None,
    truths: str | os.PathLike[str] | None = None,
    classes: Sequence[str] | None = None,
    columns: int = 6,
    cell: int = 160,
    overwrite: bool = False,
    stretch: bool | None = None,
    color: tuple[float, float, float] = (1.0, 0.25, 0.25),
    opacity: float = 0.4,
    outline: int = 2,
    jobs: int | None = 1,
    executor: Any = None,
    fail_fast: bool = False,
    prompts: Any = None,
) -> PreviewReport:
    """Overlays of each image with its mask (``output/<relpath>.png``) and a contact sheet of them (``sheet``).

    Images and masks pair by relative path and stem, as in ``maskcli eval``
    (:func:`maskcli.masksources.truths.pair_truths`): the masks (and the truths) may be a folder of mask files, a COCO
    file or label images, whose ``classes`` (default all) make the mask. With ``truths``, each mask is scored against
    its image's truth, the sheet lists images worst IoU first, and the labels show the IoU. An existing overlay (or
    sheet) is an error unless ``overwrite``; an output never replaces an input. ``stretch`` (None: 16-bit images only)
    spreads dim images over the full range for display. The images run through :func:`maskcli.pipeline.run` on ``jobs``
    cores (or ``executor``); ``fail_fast`` stops at the first image that fails. ``prompts`` (a
    :mod:`maskcli.promptsources` source) draws each image's boxes and points on its overlay and tile, so a reviewer sees
    what each mask was asked for.

    Returns
    -------
    PreviewReport
        One result per pair, in sheet order, and what could not be paired.
    """
    from maskcli.formats.labels import has_legend
    from maskcli.io.encode import encode_image
    from maskcli.io.files import write_atomic
    from maskcli.io.sources import Item, Source
    from maskcli.masksources.sets import classes_for
    from maskcli.masksources.truths import pair_truths
    from maskcli.pipeline import run

    if output is None and sheet is None:
        raise OptionError("output", "give an output folder for overlays, a contact sheet, or both")
    if sheet is not None and Path(sheet).suffix.lower() != ".png":
        raise OptionError("sheet", f"the contact sheet is a PNG file; {Path(sheet).name} does not end in .png")
    chosen = classes_for([masks] if truths is None else [masks, truths], classes)  # for the sides with classes
    pairing, read_mask = pair_truths(images, masks, chosen[0])
    if not pairing.pairs:
        raise SetupError(f"no image in {images} has a mask of the same name in {masks}")
    inputs = {os.path.realpath(path) for pair in pairing.pairs for path in (pair.source, pair.truth)}
    for side in (masks, truths):  # a COCO file, and label images (their pairs name entries, not files)
        if side is not None:
            inputs.add(os.path.realpath(side))
            if has_legend(side):
                inputs |= {os.path.realpath(os.path.join(root, name)) for root, _, names in os.walk(side)
                           for name in names}
    layout = None
    if sheet is not None:  # checked before any work, so a bad columns or cell fails at once
        layout = SheetLayout.for_count(len(pairing.pairs), columns=columns, cell=cell)
        if os.path.realpath(sheet) in inputs:
            raise OptionError("sheet", f"{sheet} is one of the inputs; choose another file")
        if os.path.lexists(sheet) and not overwrite:
            raise OutputExists("sheet", str(sheet))
    results = [PreviewResult(p.key, p.source, p.truth) for p in pairing.pairs]
    unpaired: list[str] = []
    mask_pair = {pair.key: pair for pair in pairing.pairs}
    if truths is not None:
        truth_pairing, read_truth = pair_truths(images, truths, chosen[1])
        truth_pair = {pair.key: pair for pair in truth_pairing.pairs}
        unpaired = [result.key for result in results if result.key not in truth_pair]
        scored = [result for result in results if result.key in truth_pair]
        items = (Item(index, Source(r.mask, PurePosixPath(r.key))) for index, r in enumerate(scored))
        job = _ScoreJob([(mask_pair[r.key], truth_pair[r.key]) for r in scored], read_mask, read_truth)
        for outcome in run(items, job, executor=executor, jobs=jobs):
            result = scored[outcome.index]
            result.iou, result.error = outcome.facts.get("iou"), outcome.error
        # Worst first: failures, then ascending IoU, then images without a truth.
        results.sort(key=lambda r: (r.error is None, r.iou is None, r.iou if r.iou is not None else 0.0, r.key))
    canvas = layout.canvas() if layout is not None else None
    planned = _plan_overlays(results, [mask_pair[r.key].frame for r in results], output, overwrite, inputs)
    overlays = _OverlayJob([mask_pair[r.key] for r in results], read_mask, _Style(color, opacity, outline), stretch,
                      cell if canvas is not None else None, prompts)
    for outcome in run(planned, overlays, executor=executor, jobs=jobs, fail_fast=fail_fast):
        result = results[outcome.index]
        result.output = outcome.output if outcome.status == "written" else None
        result.error = result.error or outcome.error
        if canvas is None or layout is None:
            continue
        label = result.key if result.iou is None else f"{result.key} {result.iou:.2f}"
        tile = outcome.facts.get("tile")
        if tile is None:  # the cell stays, marked, so the grid still reads in order
            place_tile(canvas, layout, outcome.index, f"FAILED {result.key}", np.zeros((cell, cell), np.float32))
        else:
            place_tile(canvas, layout, outcome.index, label, tile)
    report = PreviewReport(results, pairing, unpaired)
    if canvas is not None and sheet is not None:
        write_atomic(sheet, encode_image(canvas, format="PNG"))
        report.sheet = str(sheet)
    return report


def _plan_overlays(results: list[PreviewResult], frames: list[int | None], output: str | os.PathLike[str] | None,
                   overwrite: bool, inputs: set[str]) -> Iterator[Any]:
    """Items in sheet order, each with its overlay's checked destination (none without an output folder);
    ``frames``: each result's frame of a video (None for an image)."""
    from maskcli.io.sources import Destinations, Item, Source

    destinations = Destinations(Path(output), "{relpath}.png", "overwrite") if output is not None else None
    for index, result in enumerate(results):
        item = Item(index, Source(result.image, PurePosixPath(result.key + ".png"), part=frames[index]),
                    error=result.error)
        if destinations is not None and not item.error:
            destination, item.error = destinations.check(item.source, PurePosixPath(f"{result.key}.png"))
            if destination is not None and os.path.realpath(destination) in inputs:
                item.error = f"overlay {destination} would replace an input; choose another folder"
            elif destination is not None and os.path.lexists(destination) and not overwrite:
                item.error = f"output {destination} exists (use `overwrite=True` to replace it)"
            item.destination = destination
        yield item
