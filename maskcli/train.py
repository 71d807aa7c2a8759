"""Fine-tuning a segmentation CNN on the user's own image/mask pairs.

:func:`fine_tune` pairs images with masks the way ``maskcli eval`` does (relative path and stem, see
:func:`maskcli.masksources.truths.pair_truths`), checks the data, splits off a validation set, trains (the loop itself
is in :mod:`maskcli.cnn.training`) and writes the best model as a checkpoint that loads wherever a model does::

    maskcli segment new/ -o masks/ --model u2netp --weights model.pt

Progress comes back through ``on_event``, called with :class:`Notice` (a warning about the data),
:class:`StepEvent` (one optimiser step) and :class:`EpochRecord` (one epoch, with the validation scores; epoch 0 is
the starting model). Nothing here prints.

Data policy
-----------
* images and masks pair by relative path and stem, the masks a folder, a COCO file or label images (as in
  ``maskcli eval``); files without a partner are reported, never guessed;
* a mask of another size than its image is resized to the image when the aspect ratio agrees within 2 % (a mask
  saved at another resolution), with a :class:`Notice`; any other mismatch leaves the pair out, with a Notice;
* at least :data:`MIN_TRAIN_PAIRS` training pairs and :data:`MIN_VAL_PAIRS` validation pair are needed;
* a training set whose masks are all empty (or all full) teaches nothing and is refused.

Settings left open (``None``) are measured from the training pairs (:mod:`maskcli.train_defaults`): flips, input
size, crop, batch size, the both-classes score, the learning rate's peak; on the CPU the run has a time budget
(:data:`~maskcli.train_defaults.DEFAULT_CPU_BUDGET`) and plans its epochs to fit it. Each choice and the
measurement behind it is in :attr:`TrainResult.decisions` and the checkpoint's ``decisions``.

>>> settings = TrainSettings(epochs=3, size=96)
>>> settings.epochs, settings.score_key
(3, 'iou')
>>> TrainSettings(lr=0).check()
Traceback (most recent call last):
...
maskcli.errors.OptionError: lr: must be above 0, not 0
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from maskcli.cnn.events import EpochRecord, Interrupted, StepEvent
from maskcli.errors import InputError, OptionError, SetupError

__all__ = [
    "TrainSettings",
    "Notice",
    "StepEvent",
    "EpochRecord",
    "TrainResult",
    "Interrupted",
    "fine_tune",
    "resume_path",
    "MIN_TRAIN_PAIRS",
    "MIN_VAL_PAIRS",
    "CPU_DEFAULTS",
    "GPU_DEFAULTS",
]

#: The fewest training pairs a run accepts: fewer cannot both fit and be checked.
MIN_TRAIN_PAIRS = 4
#: The fewest validation pairs (early stopping and the reported scores need at least one).
MIN_VAL_PAIRS = 1

#: Defaults where the settings leave a choice open, per device kind. CPU: a training step costs far more than
#: inference (the backward pass), so steps run on 192×192 crops of the 320×320 input and the first encoder stage
#: (the costliest, at full resolution) stays fixed; measured by ``benchmarks/bench_train.py`` (figures in
#: ``benchmarks/results/train.md``). GPU: whole images, nothing frozen, mixed precision (bf16).
CPU_DEFAULTS = {"crop": 192, "batch_size": 4, "freeze": 1}
GPU_DEFAULTS = {"crop": None, "batch_size": 8, "freeze": 0}

_ASPECT_TOLERANCE = 0.02
#: The architectures :mod:`maskcli.cnn.models.u2net` builds as torch modules, which training needs (the
#: torchvision semantic models are torch modules too; the ONNX graphs are not).
_U2NET_BUILDERS = ("u2netp", "u2net")


def _trainable(spec: Any) -> bool:
    return spec.builder in _U2NET_BUILDERS or spec.kind == "semantic"


@dataclasses.dataclass
class TrainSettings:
    """How to fine-tune; ``None`` means the device's default (:data:`CPU_DEFAULTS`, :data:`GPU_DEFAULTS`).

    Attributes
    ----------
    model : str
        The zoo model to start from: a U²-Net (``u2netp``, ``u2net``), or a torchvision semantic model
        (``lraspp-mobilenet-v3``, ``deeplabv3-*``, ``fcn-*``), which learns the foreground as the sum of its classes
        (what inference reads from it by default) with its backbone fixed.
    weights : str, optional
        The file to start from: the model's pretrained weights by default, or an earlier checkpoint.
    size : int, optional
        The input the whole image is resized to, in training and later in inference: U²-Net's square side, a
        semantic model's shorter side (default: the model's, 320 or 520).
    crop : int, optional
        The side of the patches trained on, cut from the ``size``×``size`` image around its scale.
    epochs, patience : int, optional
        At most ``epochs`` passes over the training pairs (default: as many as fit the time budget; 30 without
        one); stop when the validation score has not improved for ``patience`` epochs (default: 8 without a time
        budget; none within one, where the schedule's decay ends the run).
    lr : float, optional
        Adam's peak learning rate (default: 1e-4, or 3e-5 when the starting model already scores 0.8 on the
        validation pairs), warmed up over the first epoch, then decayed along a cosine. The published weights have
        BatchNorm folded into the convolutions, so the network trains without normalisation layers: 1e-3
        diverged here (the loss rose from 4.6 to 7.6 in four epochs on nuclei), 1e-4 took the IoU of a batch of
        nuclei from 0 to 0.51 in four steps, 3e-5 to 0.38.
    batch_size : int, optional
        Pairs per optimiser step.
    freeze : int, optional
        U²-Net: how many encoder stages (of six, from the input) keep their weights. Semantic models: 1 keeps the
        backbone fixed (the default on every device), 0 trains it too.
    val_fraction : float
        The share of the pairs held out for validation when no validation folders are given.
    seed : int
        Fixes the split, the order and the augmentations.
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    both_classes : bool, optional
        Score (and stop early) on the mean IoU of the mask and its inverse, for sets whose foreground covers
        most of each image (default: when the masks' foreground covers more than half of each image on average).
    flips : {"h", "hv", "none"}, optional
        Random flips: horizontal, horizontal and vertical (microscopy), or none (default: ``hv`` for grey
        images with no up, else ``h``).
    time : float, optional
        Seconds the run may take, 0 for no limit (default: 15 minutes on the CPU, no limit on a GPU). The run
        starts an epoch only when it fits, and stops as Ctrl-C does when a step finds the time spent.
    """

    model: str = "u2netp"
    weights: Optional[str] = None
    size: Optional[int] = None
    crop: Optional[int] = None
    epochs: Optional[int] = None
    patience: Optional[int] = None
    lr: Optional[float] = None
    batch_size: Optional[int] = None
    freeze: Optional[int] = None
    val_fraction: float = 0.2
    seed: int = 0
    device: str = "auto"
    both_classes: Optional[bool] = None
    flips: Optional[str] = None
    time: Optional[float] = None

    @property
    def score_key(self) -> str:
        """The validation score that picks the best epoch."""
        return "iou_both" if self.both_classes else "iou"

    def check(self) -> None:
        """Raise :class:`OptionError` for a value that cannot work."""
        for name in ("epochs", "patience"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise OptionError(name, f"must be at least 1, not {getattr(self, name)}")
        if self.time is not None and not self.time >= 0:
            raise OptionError("time", f"must be 0 (no limit) or more seconds, not {self.time}")
        if self.lr is not None and not self.lr > 0:
            raise OptionError("lr", f"must be above 0, not {self.lr}")
        for name in ("size", "crop", "batch_size"):
            value = getattr(self, name)
            if value is not None and value < (32 if name != "batch_size" else 1):
                raise OptionError(name, f"must be at least {32 if name != 'batch_size' else 1}, not {value}")
        if self.size is not None and self.size % 32:
            raise OptionError("size", f"must be a multiple of 32 (the model halves it five times), not {self.size}")
        if self.freeze is not None and not 0 <= self.freeze <= 6:
            raise OptionError("freeze", f"must be 0 to 6 (encoder stages), not {self.freeze}")
        if not 0 < self.val_fraction < 1:
            raise OptionError("val_fraction", f"must be between 0 and 1, not {self.val_fraction}")
        if self.flips not in (None, "h", "hv", "none"):
            raise OptionError("flips", f"must be h, hv or none, not {self.flips!r}")


@dataclasses.dataclass(frozen=True)
class Notice:
    """Something the user should know about the data (an unpaired file, a resized mask, a pair left out)."""

    message: str
    path: Optional[str] = None


@dataclasses.dataclass
class TrainResult:
    """What a finished run did."""

    checkpoint: Path
    start_scores: dict[str, float]
    best_scores: dict[str, float]
    best_epoch: int
    epochs_run: int
    stopped: str
    train_pairs: int
    val_pairs: int
    history: list[dict[str, Any]]
    settings: dict[str, Any]
    notices: list[Notice]
    #: Each setting measured from the data (or set by the user): ``{name: {"value": ..., "reason": ...}}``.
    decisions: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    #: The score that picked the best epoch (``iou`` or ``iou_both``).
    score_key: str = "iou"
    #: Seconds the run took, and its budget (0: none).
    seconds: float = 0.0
    budget: float = 0.0


def resume_path(output: Union[str, os.PathLike[str]]) -> Path:
    """The resume file kept beside a checkpoint while its training runs (removed when it finishes).

    >>> resume_path("runs/model.pt").as_posix()
    'runs/model.pt.resume'
    """
    output = Path(output)
    return output.with_name(output.name + ".resume")


@dataclasses.dataclass
class _Pairs:
    keys: list[str]
    images: list[np.ndarray]
    masks: list[np.ndarray]
    digests: list[str]


def _file_digest(path: str) -> str:
    with open(path, "rb") as stream:
        return hashlib.sha256(stream.read()).hexdigest()


def _array_digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes() + repr(array.shape).encode()).hexdigest()


def _load_pairs(images: Union[str, os.PathLike[str]], masks: Union[str, os.PathLike[str]], role: str,
                notices: list[Notice], classes: Optional[Sequence[str]] = None) -> _Pairs:
    """Read every pair (images as the image convention, masks as the mask convention), applying the data policy."""
    import cv2

    from maskcli.io.decode import read_image
    from maskcli.masksources.truths import pair_truths

    pairing, read_truth = pair_truths(images, masks, classes)
    for name in pairing.unpaired_sources:
        notices.append(Notice(f"{role} image without a mask of the same name in {masks}; left out", name))
    for name in pairing.unpaired_truths:
        notices.append(Notice(f"{role} mask without an image of the same name in {images}; left out", name))
    for path, reason in pairing.problems:
        notices.append(Notice(reason, path))
    loaded = _Pairs([], [], [], [])
    for pair in pairing.pairs:
        try:
            image = read_image(pair.source).pixels
            mask = read_truth(pair)
        except InputError as error:
            notices.append(Notice(f"unreadable ({error}); pair left out", pair.source))
            continue
        (height, width), (mask_height, mask_width) = image.shape[:2], mask.shape[:2]
        if (mask_height, mask_width) != (height, width):
            aspect = (width / height) / (mask_width / mask_height)
            if abs(aspect - 1.0) > _ASPECT_TOLERANCE:
                notices.append(Notice(f"mask is {mask_width}×{mask_height} but the image is {width}×{height} (another "
                                      f"shape); pair left out", pair.truth))
                continue
            notices.append(Notice(f"mask is {mask_width}×{mask_height} but the image is {width}×{height}; mask resized "
                                  f"to the image", pair.truth))
            mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR)
        loaded.keys.append(pair.key)
        loaded.images.append(image)
        loaded.masks.append(np.clip(mask, 0.0, 1.0).astype(np.float32, copy=False))
        # A COCO file's or label images' entry is no file of its own: its mask's bytes stand for it.
        truth = _file_digest(pair.truth) if os.path.isfile(pair.truth) else _array_digest(mask)
        loaded.digests.append(f"{role}:{pair.key}:{_file_digest(pair.source)}:{truth}")
    return loaded


def _subset(pairs: _Pairs, indices: Sequence[int]) -> _Pairs:
    return _Pairs([pairs.keys[i] for i in indices], [pairs.images[i] for i in indices],
                  [pairs.masks[i] for i in indices], [pairs.digests[i] for i in indices])


def _split(pairs: _Pairs, fraction: float, seed: int) -> tuple[_Pairs, _Pairs]:
    """A fixed random split of ``pairs`` (the same seed and files give the same split)."""
    count = len(pairs.keys)
    held = max(MIN_VAL_PAIRS, round(count * fraction))
    if count - held < MIN_TRAIN_PAIRS:
        raise SetupError(f"{count} usable image/mask pairs: at least {MIN_TRAIN_PAIRS + MIN_VAL_PAIRS} are needed "
                         f"({MIN_TRAIN_PAIRS} to train on, {MIN_VAL_PAIRS} to validate)")
    order = list(range(count))
    random.Random(seed).shuffle(order)
    return _subset(pairs, sorted(order[held:])), _subset(pairs, sorted(order[:held]))


def _check_masks(pairs: _Pairs) -> None:
    fractions = [float(np.mean(mask >= 0.5)) for mask in pairs.masks]
    if all(f == 0.0 for f in fractions):
        raise SetupError(f"every one of the {len(fractions)} training masks is empty: there is no foreground to "
                         f"learn (masks are white on black: 255 foreground, 0 background)")
    if all(f == 1.0 for f in fractions):
        raise SetupError(f"every one of the {len(fractions)} training masks is all foreground: there is nothing to "
                         f"learn")


def fine_tune(
    images: Union[str, os.PathLike[str]],
    masks: Union[str, os.PathLike[str]],
    output: Union[str, os.PathLike[str]],
    settings: Optional[TrainSettings] = None,
    *,
    val_images: Union[str, os.PathLike[str], None] = None,
    val_masks: Union[str, os.PathLike[str], None] = None,
    classes: Optional[Sequence[str]] = None,
    resume: bool = False,
    on_event: Optional[Callable[[Any], None]] = None,
) -> TrainResult:
    """Fine-tune a CNN (a U²-Net, or a semantic model's head) on image/mask pairs and write the best model to
    ``output``.

    Parameters
    ----------
    images, masks : path
        A folder of images, and their masks: a folder of mask files (white foreground on black), a COCO file or a
        folder of label images with its ``labels.json``; paired as ``maskcli eval`` pairs them
        (:func:`maskcli.masksources.truths.pair_truths`: relative path and stem).
    output : path
        The checkpoint to write (``.pt``); written atomically each time validation improves. While training
        runs, a resume file sits beside it (:func:`resume_path`).
    settings : TrainSettings, optional
        How to train; the defaults suit a CPU.
    val_images, val_masks : path, optional
        A separate validation set; default: ``settings.val_fraction`` of the pairs, drawn with ``settings.seed``.
    classes : sequence of str, optional
        Where the masks are a COCO file or label images: the classes whose union is the foreground (default:
        every class).
    resume : bool
        Continue the run whose resume file sits beside ``output``.
    on_event : callable, optional
        Called with each :class:`Notice`, :class:`StepEvent` and :class:`EpochRecord`.

    Returns
    -------
    TrainResult

    Raises
    ------
    OptionError
        A setting that cannot work.
    SetupError
        Too few pairs, all-empty masks, no weights, no device, a resume file that does not fit.
    Interrupted
        Ctrl-C: the best model so far is in ``output`` and the resume file beside it.

    Examples
    --------
    Twenty pairs of cells, the fifth held out, then the model used as any other::

        result = fine_tune("cells/", "cells-masks/", "cells.pt", TrainSettings(flips="hv"))
        print(result.start_scores["iou"], "->", result.best_scores["iou"])
        mask = maskcli.segment(image, "cnn", weights="cells.pt")
    """
    from maskcli import train_defaults
    from maskcli.cnn import device, specs, weights

    began = time.monotonic()  # the time budget counts reading the data too

    settings = dataclasses.replace(settings or TrainSettings())
    settings.check()
    spec = specs.get(settings.model)
    trainable = [n for n, s in specs.SPECS.items() if _trainable(s)]
    if not _trainable(spec):
        raise OptionError("model", f"fine-tuning works with the models built in torch ({', '.join(trainable)}), "
                                   f"not {spec.name}")
    if spec.kind == "semantic" and settings.freeze is not None and settings.freeze > 1:
        raise OptionError("freeze", f"{spec.name}: 1 (the backbone fixed, the head trains) or 0 (everything "
                                    f"trains), not {settings.freeze}")
    if (val_images is None) != (val_masks is None):
        raise OptionError("val_images" if val_images is None else "val_masks",
                          "validation images and masks go together: give both or neither")
    plan = device.resolve(settings.device)
    defaults = GPU_DEFAULTS if plan.is_cuda else CPU_DEFAULTS
    start = weights.resolve(spec, settings.weights)
    start_spec = weights.spec_for_weights(spec, start)  # an earlier checkpoint brings its own size
    # A semantic model's head is what fine-tuning is for; its backbone stays as published unless asked.
    default_freeze = 1 if spec.kind == "semantic" else int(defaults["freeze"] or 0)
    freeze = default_freeze if settings.freeze is None else settings.freeze

    notices: list[Notice] = []
    emit = on_event or (lambda event: None)

    def note_all(start_at: int) -> None:
        for notice in notices[start_at:]:
            emit(notice)

    train = _load_pairs(images, masks, "training", notices, classes)
    if val_images is not None and val_masks is not None:
        val = _load_pairs(val_images, val_masks, "validation", notices, classes)
        note_all(0)
        if len(train.keys) < MIN_TRAIN_PAIRS or len(val.keys) < MIN_VAL_PAIRS:
            raise SetupError(f"{len(train.keys)} usable training and {len(val.keys)} validation pairs: at least "
                             f"{MIN_TRAIN_PAIRS} and {MIN_VAL_PAIRS} are needed")
    else:
        note_all(0)
        train, val = _split(train, settings.val_fraction, settings.seed)
    _check_masks(train)
    # A checkpoint brings its own input size and a semantic model keeps its own; a U²-Net's follows the data.
    adapt_size = spec.kind != "semantic" and start_spec.input_size == spec.input_size
    chosen = train_defaults.decide(
        train.images, train.masks, model_size=start_spec.input_size, adapt_size=adapt_size,
        device_crop=defaults["crop"], device_batch=int(defaults["batch_size"] or 4),
        cap=train_defaults.MAX_CPU_SIZE if not plan.is_cuda else 1024,
        given={"flips": settings.flips, "size": settings.size, "crop": settings.crop,
               "batch_size": settings.batch_size, "both_classes": settings.both_classes})
    size, batch_size = chosen["size"].value, chosen["batch_size"].value
    crop = min(chosen["crop"].value, size)
    budget = settings.time if settings.time is not None else (0.0 if plan.is_cuda else
                                                               train_defaults.DEFAULT_CPU_BUDGET)
    epochs = settings.epochs or (1000 if budget else 30)
    patience = settings.patience or (epochs if budget else 8)
    settings = dataclasses.replace(settings, flips=chosen["flips"].value, both_classes=chosen["both_classes"].value)
    decisions = {name: decision.as_dict() for name, decision in chosen.items()}

    fingerprint = hashlib.sha256("\n".join(sorted(train.digests + val.digests)).encode()).hexdigest()[:16]
    # No machine's paths: the starting weights by file name (the pretrained file, or the user's checkpoint).
    resolved = dict(dataclasses.asdict(settings), size=size, crop=crop, batch_size=batch_size, freeze=freeze,
                    device=plan.device, weights=Path(start).name, epochs=epochs, patience=patience, time=budget)
    meta = {
        "base_model": spec.name, "builder": spec.builder, "kind": spec.kind,
        "input_size": size, "mean": list(start_spec.mean), "std": list(start_spec.std),
        "scale_by_max": start_spec.scale_by_max, "interpolation": start_spec.interpolation,
        "threshold": 0.5, "score_key": settings.score_key, "data_fingerprint": fingerprint,
        "train_pairs": len(train.keys), "val_pairs": len(val.keys), "val_keys": val.keys,
        "settings": resolved, "decisions": decisions, "maskcli_version": train_defaults.package_version(),
    }
    output = Path(output)
    resume_file = resume_path(output)
    if resume and not resume_file.is_file():
        raise SetupError(f"nothing to resume: {resume_file} does not exist (it is written during training and "
                         f"removed when a run finishes)")
    from maskcli.cnn.training import Loop, run

    loop = Loop(spec=start_spec, plan=plan, size=size, crop=crop, epochs=epochs, patience=patience,
                lr=settings.lr, budget=budget, began=began, choose_lr=_choose_lr, batch_size=batch_size,
                freeze=freeze, flips=str(settings.flips), seed=settings.seed,
                score_key=settings.score_key, train_images=train.images, train_masks=train.masks,
                val_images=val.images, val_masks=val.masks, start_weights=start, output=output,
                resume_path=resume_file, resume=resume, meta=meta, on_event=emit)
    summary = run(loop)
    peak, reason = summary.pop("lr"), summary.pop("lr_reason")
    resolved["lr"] = peak
    decisions["lr"] = {"value": peak, "reason": reason}
    return TrainResult(checkpoint=output, train_pairs=len(train.keys), val_pairs=len(val.keys), settings=resolved,
                       notices=notices, decisions=decisions, score_key=settings.score_key, budget=budget,
                       **summary)


def _choose_lr(start_score: float) -> tuple[float, str]:
    """The peak learning rate for a starting model's validation score, and why (the loop asks once it knows)."""
    from maskcli.train_defaults import peak_lr

    decision = peak_lr(start_score)
    return float(decision.value), decision.reason
