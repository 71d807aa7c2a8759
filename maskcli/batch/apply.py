"""Applying masks to a batch of images, from inputs to written images: what ``maskcli apply`` runs.

Each image's mask comes from one source: a folder of masks, a COCO file or label images (``masks``), one static
``mask``, the image's own ``alpha``, a ``method`` run on the fly, or the records ``maskcli segment --json`` piped
to ``stdin`` (when no other source is named).

>>> import tempfile, numpy as np
>>> from pathlib import Path
>>> from maskcli.batch import ApplySettings, BatchSettings, apply_batch
>>> from maskcli.io.encode import encode_image
>>> from maskcli.io.files import write_atomic
>>> from maskcli.io.masks import encode_mask
>>> scratch = tempfile.TemporaryDirectory(); root = Path(scratch.name)
>>> write_atomic(root / "photos" / "a.jpg", encode_image(np.full((8, 8, 3), 0.5, np.float32), format="JPEG"))
>>> write_atomic(root / "masks" / "a.png", encode_mask(np.eye(8, dtype=np.float32)))
>>> settings = ApplySettings(BatchSettings([str(root / "photos")], root / "cutouts", jobs=1), masks=root / "masks")
>>> [(r.status, Path(r.output).name, r.facts["format"]) for r in apply_batch(settings).results]
[('written', 'a.png', 'PNG')]
>>> scratch.cleanup()
"""

from __future__ import annotations

import dataclasses
import io
import os
from pathlib import Path
from typing import Any

from maskcli.batch.run import BatchOutcome, BatchSettings, Listener, Silent, run_batch
from maskcli.batch.segment import make_method
from maskcli.errors import OptionError


@dataclasses.dataclass
class ApplySettings:
    """What ``apply`` does, beside the batch's settings.

    Parameters
    ----------
    batch : BatchSettings
        Inputs, outputs and how the batch runs (``name``: its suffix follows the output format).
    mode, mode_options : str, dict
        The compositing mode (``cutout``, ``color``, ``blur`` ...) and its options.
    format : str, optional
        ``png``, ``jpg``, ``webp`` or ``tiff``; default: each input's format where it can hold the result.
    quality : int
        JPEG and WebP quality.
    masks : path or MaskSource, optional
        A folder of masks (matched by relative path and stem, named by ``mask_name``), a COCO file or a folder
        of label images (``classes`` of them make the mask), or any mask source (:mod:`maskcli.masksources`).
    mask : path, optional
        One static mask for every image.
    alpha : bool
        Each image's own alpha channel is its mask.
    method, preset, method_options
        A mask method run on each image (as in :class:`maskcli.batch.SegmentSettings`).
    refinement : dict
        The refinement chain run on each mask once it fits its image (``hard``, ``feather``, ``invert``,
        ``refine`` ...; see :mod:`maskcli.refine`), after a preset's.
    resize_mask : bool
        Scale a mask whose size differs from its image's (default: that item fails, naming both sizes).
    """

    batch: BatchSettings
    mode: str = "cutout"
    mode_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    format: str | None = None
    quality: int = 92
    masks: Any = None
    mask_name: str = "{stem}.png"
    classes: list[str] | None = None
    mask: Path | None = None
    alpha: bool = False
    method: str | None = None
    preset: str | None = None
    method_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    refinement: dict[str, Any] = dataclasses.field(default_factory=dict)
    resize_mask: bool = False

    @property
    def wants_method(self) -> bool:
        return self.method is not None or self.preset is not None or bool(self.method_options)

    def chosen(self) -> list[str]:
        """The mask sources named (at most one may be)."""
        return [name for name, given in (("masks", self.masks is not None), ("mask", self.mask is not None),
                                         ("alpha", self.alpha), ("method", self.wants_method)) if given]


def apply_batch(settings: ApplySettings, listener: Listener | None = None) -> BatchOutcome:
    """Apply masks to a batch of images and write the results, telling ``listener`` each warning and result.

    Raises
    ------
    OptionError, SetupError
        Settings that cannot run, or no inputs; raised before anything is written.
    """
    from maskcli.composite import modes
    from maskcli.io.sinks import OutputPlan, StreamSink
    from maskcli.jobs.apply import ApplyJob
    from maskcli.masksources import paired
    from maskcli.refine import refinement as build_refinement

    listener = listener or Silent()
    batch = settings.batch
    mode = modes.create(settings.mode, settings.mode_options)
    # A format that cannot hold the result is a usage error, now.
    plan = OutputPlan.for_images(settings.format, alpha=bool(getattr(mode, "output_alpha", False)))
    chosen = settings.chosen()
    if len(chosen) > 1:
        raise OptionError(chosen[1], f"choose one mask source, not {' and '.join(f'`{name}`' for name in chosen)}")
    method, refinement = None, dict(settings.refinement)
    if settings.wants_method:
        method, refinement = make_method(settings.method, settings.preset, settings.method_options, refinement)
    masks_folder = settings.masks if isinstance(settings.masks, (str, os.PathLike)) else None
    excluded = [batch.output, Path(masks_folder) if masks_folder is not None and Path(masks_folder).is_dir() else None]
    sources, kind = batch.planned_inputs.gather(allow_records=not chosen, exclude=excluded, warn=listener.warning)
    mask_source = _mask_source(settings, kind, method, listener)
    if kind == "records":
        sources = mask_source.sources()
    if settings.classes and settings.masks is None:
        raise OptionError("class", "picks classes of a COCO file or label images given as `masks`")
    sink = batch.planned_outputs.sink(kind, plan)
    job = ApplyJob(mode, mask_source, plan, sink, refiner=build_refinement(refinement),
                   resize_mask=settings.resize_mask, quality=settings.quality, max_pixels=batch.max_pixels)
    return run_batch(paired(sink.items(sources), mask_source), job, batch, listener,
                     image_on_stdout=isinstance(sink, StreamSink), watch=batch.watcher(),
                     plan=lambda new: paired(sink.items(new), mask_source))


def _mask_source(settings: ApplySettings, kind: str, method: Any, listener: Listener) -> Any:
    """Where each image's mask comes from."""
    from maskcli.masksources import AlphaMasks, MethodMasks, SegmentRecords, StaticMask, open_masks

    if kind == "records":
        stdin = settings.batch.stdin
        return SegmentRecords(stdin if stdin is not None else io.StringIO())
    if isinstance(settings.masks, (str, os.PathLike)):
        source = open_masks(settings.masks, settings.mask_name, settings.classes)
        for problem in getattr(source, "problems", ()):
            listener.warning(problem)
        return source
    if settings.masks is not None:
        return settings.masks
    if settings.mask is not None:
        return StaticMask(Path(settings.mask))
    if settings.alpha:
        return AlphaMasks()
    if method is not None:
        return MethodMasks(method)
    raise OptionError("masks", "say where masks come from: `masks=DIR`, `mask=FILE`, `alpha`, `method=NAME`, "
                               "or pipe `maskcli segment --json` records")


__all__ = ["ApplySettings", "apply_batch"]
