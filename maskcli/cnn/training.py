"""The torch side of fine-tuning (:mod:`maskcli.train` is the public, torch-free side).

What happens in one run:

* every training pair is resized once to the model's input (``size``: U²-Net's square, a semantic model's shorter
  side; the same resize and scaling as inference), then each step draws an augmented ``crop``×``crop`` patch from
  it with torchvision's v2 transforms: a random resized crop around the inference scale, flips, colour jitter; image and
  :class:`~torchvision.tv_tensors.Mask` go through the same geometric transform, the jitter touches the image only;
* the loss is the U²-Net paper's deep supervision (binary cross-entropy on the fused map and on the six side maps,
  on logits) plus a soft IoU term on the fused map, which pulls the thresholded mask towards the IoU it is scored on;
  a torchvision semantic model keeps its classes and is trained on the foreground inference reads from it (every
  class but the background), with its backbone fixed by default, so only its head learns;
* after each epoch the validation images go through :class:`~maskcli.cnn.infer.Segmenter` at full size, exactly as
  ``maskcli segment`` runs them, and are scored with :func:`maskcli.metrics.score`; the best epoch is written
  atomically, and the run stops early when the score has not improved for ``patience`` epochs;
* the learning rate warms up over the first epoch and decays along a cosine over the run's plan
  (:mod:`maskcli.cnn.schedule`); with a time budget, an epoch starts only when it fits the time left at the pace of
  the recent epochs, and a step that finds the budget spent stops the run as Ctrl-C does (the checkpoint holds
  the best epoch, the resume file the state), with ``stopped`` set to ``"time"``;
* on a GPU the forward pass runs under bf16 autocast (fp16 with a gradient scaler where the GPU has no bf16):
  bf16 has fp32's range, so no step is lost to an overflow; the weights and the optimiser stay fp32;
* a resume file beside the checkpoint holds the last epoch's weights, optimiser and counters; Ctrl-C writes it and
  raises :class:`maskcli.cnn.events.Interrupted` (``maskcli.train.Interrupted``).

The module is the same one inference builds (:mod:`maskcli.cnn.loading`); training only asks it for logits.
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Optional

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from maskcli.cnn.device import DevicePlan
from maskcli.cnn.events import EpochRecord, Interrupted, StepEvent
from maskcli.cnn.infer import Segmenter
from maskcli.cnn.loading import build_model as start_model  # the pretrained file, or an earlier checkpoint
from maskcli.cnn.loading import new_model
from maskcli.cnn.schedule import epochs_that_fit, lr_factor, progress
from maskcli.cnn.specs import ModelSpec
from maskcli.cnn.weights import CHECKPOINT_FORMAT, check_architecture, load_state, save_checkpoint
from maskcli.errors import SetupError

#: The value of a resume file's ``format`` key.
RESUME_FORMAT = "maskcli-resume/1"


def _resize(spec: ModelSpec, image: np.ndarray, size: int) -> np.ndarray:
    """The image as inference prepares it (the spec's transforms at ``size``), kept in [0, 1] for augmenting."""
    return spec.transforms(size).resize(image, clip=True)


@dataclasses.dataclass
class Loop:
    """One fine-tuning run's fixed inputs (built by :func:`maskcli.train.fine_tune`)."""

    spec: ModelSpec
    plan: DevicePlan
    size: int
    crop: int
    epochs: int
    patience: int
    lr: Optional[float]
    batch_size: int
    freeze: int
    flips: str
    seed: int
    score_key: str
    train_images: Sequence[np.ndarray]
    train_masks: Sequence[np.ndarray]
    val_images: Sequence[np.ndarray]
    val_masks: Sequence[np.ndarray]
    start_weights: Path
    output: Path
    resume_path: Path
    resume: bool
    meta: dict[str, Any]
    on_event: Callable[[Any], None]
    #: Seconds the run may take (0: no limit); a resumed run counts the time its earlier part spent.
    budget: float = 0.0
    #: When the run began (:func:`time.monotonic`), reading the data included; None: when the loop starts.
    began: Optional[float] = None
    #: The peak learning rate and why, from the starting model's validation score (used where ``lr`` is None).
    choose_lr: Optional[Callable[[float], tuple[float, str]]] = None


class _OutOfTime(Exception):
    """The time budget ran out during an epoch."""


def _augmenter(loop: Loop) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    flips: list[Any] = []
    if "h" in loop.flips:
        flips.append(v2.RandomHorizontalFlip())
    if "v" in loop.flips:
        flips.append(v2.RandomVerticalFlip())
    shapes: dict[tuple[int, int], Any] = {}

    def shape_for(height: int, width: int) -> Any:
        # Crops around the scale inference sees: a crop×crop patch of the input covers crop²/(height·width) of it.
        if (height, width) not in shapes:
            native = loop.crop ** 2 / (height * width)
            crop = v2.RandomResizedCrop(loop.crop, scale=(min(1.0, native * 0.5), min(1.0, native * 2.0)),
                                        ratio=(3 / 4, 4 / 3), antialias=True)
            shapes[height, width] = v2.Compose([crop, *flips])
        return shapes[height, width]

    colour = v2.ColorJitter(brightness=0.25, contrast=0.25, saturation=0.2, hue=0.02)

    def augment(image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = shape_for(*image.shape[-2:])(tv_tensors.Image(image), tv_tensors.Mask(mask))
        return colour(image).clamp_(0.0, 1.0).as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor)

    return augment


def _loss(outputs: Sequence[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    """Deep supervision (BCE on the fused and the six side logits, as the U²-Net paper) plus a soft IoU term."""
    outputs = [o.float() for o in outputs]
    bce = sum(F.binary_cross_entropy_with_logits(o, target) for o in outputs)
    fused = torch.sigmoid(outputs[0])
    intersection = (fused * target).sum(dim=(1, 2, 3))
    union = (fused + target - fused * target).sum(dim=(1, 2, 3))
    return bce + (1.0 - (intersection + 1.0) / (union + 1.0)).mean()


def _frozen(model: nn.Module, stages: int) -> list[nn.Module]:
    """The parts kept fixed: U²-Net's first ``stages`` encoder stages; a torchvision model's backbone when
    ``stages`` is 1 (its head trains)."""
    if hasattr(model, "backbone"):
        # The ignore below: torchvision models are untyped: their attributes read as Tensor.
        return [model.backbone] if stages else []  # type: ignore[list-item]
    # The ignore below: torchvision models are untyped: their attributes read as Tensor.
    return list(model.encoder[:stages])  # type: ignore[index]


def _freeze(model: nn.Module, stages: int) -> list[nn.Parameter]:
    """Fix the parts :func:`_frozen` names; the rest trains. Returns the trainable parameters."""
    model.requires_grad_(True)
    for part in _frozen(model, stages):
        part.requires_grad_(False)
    return [p for p in model.parameters() if p.requires_grad]


def _train_mode(model: nn.Module, stages: int) -> None:
    # A fixed part keeps its batch-norm statistics too (torchvision's backbones have batch norm; U²-Net's
    # published weights have it folded into the convolutions).
    model.train()
    for part in _frozen(model, stages):
        part.eval()


def _logits(model: nn.Module, batch: torch.Tensor) -> Sequence[torch.Tensor]:
    """The foreground logit maps the loss is taken on, the fused map first: U²-Net's fused and six side maps; for
    a semantic model, log(Σ classes) − log(background), whose sigmoid is the foreground probability inference
    computes (the softmax summed over every class but the background)."""
    if not hasattr(model, "backbone"):
        return model.logits(batch)  # type: ignore[operator]  # nn.Module attributes read as Tensor in its stubs
    out = model(batch)["out"]
    return [(torch.logsumexp(out[:, 1:], dim=1, keepdim=True) - out[:, :1])]


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    # Contiguous fp32 CPU copies: a checkpoint loads on any device and in any memory format.
    return {k: v.detach().to("cpu", torch.float32).contiguous().clone() for k, v in model.state_dict().items()}


class _Validator:
    """Scores the model on the validation pairs exactly as ``maskcli segment`` would run it."""

    def __init__(self, loop: Loop, model: nn.Module) -> None:
        self.loop = loop
        spec = dataclasses.replace(loop.spec, input_size=loop.size)
        self.segmenter = Segmenter(spec, model, loop.plan)

    def __call__(self) -> dict[str, float]:
        from maskcli.metrics import score

        rows = []
        for image, truth in zip(self.loop.val_images, self.loop.val_masks):
            (mask,) = self.segmenter.predict([image])
            rows.append(score(mask, truth, level=0.5))
        return {key: float(np.mean([row[key] for row in rows])) for key in ("iou", "dice", "iou_both")}


def run(loop: Loop) -> dict[str, Any]:
    """Fine-tune and return the summary the library wraps into a :class:`maskcli.train.TrainResult`."""
    torch.manual_seed(loop.seed)
    clock = time.monotonic() if loop.began is None else loop.began
    device = torch.device(loop.plan.device)
    model = start_model(loop.spec, loop.start_weights)
    validate = _Validator(loop, model)  # moves the model to the device, in the plan's memory format
    model = validate.segmenter.model
    trainable = _freeze(model, loop.freeze)
    optimiser = torch.optim.Adam(trainable, lr=loop.lr or 1e-4)  # the schedule sets the rate of every step
    amp = _autocast_dtype(loop.plan)
    # Only fp16 needs loss scaling; its first steps are skipped while the scale settles, which a run of a few
    # dozen steps cannot spare.
    scaler = torch.amp.GradScaler("cuda", enabled=amp is torch.float16)
    augment = _augmenter(loop)
    mean = torch.tensor(loop.spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(loop.spec.std).view(1, 3, 1, 1)
    images = [torch.from_numpy(_resize(loop.spec, image, loop.size).transpose(2, 0, 1).copy())
              for image in loop.train_images]
    masks = [torch.from_numpy(cv2.resize(mask, (image.shape[2], image.shape[1]), interpolation=cv2.INTER_AREA))[None]
             for image, mask in zip(images, loop.train_masks)]
    order_rng = torch.Generator().manual_seed(loop.seed)

    history: list[dict[str, Any]] = []
    epoch = 0
    stale = 0
    step_count = 0
    spent_before = 0.0  # seconds an interrupted run spent before this part of it
    epoch_seconds: list[float] = []
    meta = dict(loop.meta)
    if loop.resume:
        state = torch.load(str(loop.resume_path), map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or state.get("format") != RESUME_FORMAT:
            raise SetupError(f"{loop.resume_path} is not a maskcli resume file")
        if state["meta"].get("data_fingerprint") != loop.meta["data_fingerprint"]:
            raise SetupError(f"{loop.resume_path} was written for other training data (fingerprint "
                             f"{state['meta'].get('data_fingerprint')}, now {loop.meta['data_fingerprint']}); "
                             f"start afresh without resuming")
        check_architecture(loop.spec, state["meta"], loop.resume_path)
        load_state(model, state["model"], loop.resume_path, loop.spec.name)
        optimiser.load_state_dict(state["optimiser"])
        epoch, stale, history = state["epoch"], state["stale"], list(state["history"])
        best, best_state, best_epoch = state["best"], state["best_state"], state["best_epoch"]
        start_scores = state["start_scores"]
        # A resume file from before the schedule and the budget holds no lr, steps or time (no second warmup).
        peak, lr_reason = state.get("lr", loop.lr or 1e-4), state.get("lr_reason", "the interrupted run's")
        step_count, spent_before = state.get("step_count", 1 << 30), state.get("spent", 0.0)
        epoch_seconds = list(state.get("epoch_seconds", []))
        torch.set_rng_state(state["rng"])
        order_rng.set_state(state["order_rng"])
    else:
        start_scores = validate()
        best, best_state, best_epoch = start_scores, _state(model), 0
        if loop.lr is not None or loop.choose_lr is None:
            peak, lr_reason = loop.lr or 1e-4, "set by the user"
        else:
            peak, lr_reason = loop.choose_lr(start_scores[loop.score_key])
        record = EpochRecord(0, loop.epochs, None, start_scores, 0.0, None, True)
        history.append(record.as_dict())
        loop.on_event(record)

    meta["settings"] = dict(meta.get("settings", {}), lr=peak)
    meta["decisions"] = dict(meta.get("decisions", {}), lr={"value": peak, "reason": lr_reason})
    stopped = "epochs"

    def spent() -> float:
        return spent_before + time.monotonic() - clock

    def save_best() -> None:
        created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        written = dict(meta, start_scores=start_scores, val_scores=best, best_epoch=best_epoch, epochs_run=epoch,
                       stopped=stopped, created=created)
        save_checkpoint(loop.output, {"format": CHECKPOINT_FORMAT, "model": best_state, "meta": written})

    def save_resume() -> None:
        save_checkpoint(loop.resume_path, {
            "format": RESUME_FORMAT, "meta": meta, "model": _state(model), "lr": peak, "lr_reason": lr_reason,
            "step_count": step_count, "spent": spent(), "epoch_seconds": epoch_seconds,
            "optimiser": optimiser.state_dict(), "epoch": epoch, "stale": stale, "history": history,
            "best": best, "best_state": best_state, "best_epoch": best_epoch, "start_scores": start_scores,
            "rng": torch.get_rng_state(), "order_rng": order_rng.get_state(),
        })

    if not loop.resume:
        save_best()
    steps = (len(images) + loop.batch_size - 1) // loop.batch_size
    try:
        while epoch < loop.epochs:
            if stale >= loop.patience:
                stopped = "early"
                break
            plan = epochs_that_fit(loop.budget, spent(), epoch_seconds, epoch, loop.epochs)
            if epoch >= plan:
                stopped = "time"
                break
            started = time.perf_counter()
            _train_mode(model, loop.freeze)
            order = torch.randperm(len(images), generator=order_rng).tolist()
            total = 0.0
            for step in range(steps):
                if loop.budget and spent() > loop.budget:
                    raise _OutOfTime
                done = progress(spent(), loop.budget, epoch + step / steps, loop.epochs)
                for group in optimiser.param_groups:
                    group["lr"] = peak * lr_factor(step_count, steps, done)
                step_count += 1
                chosen = order[step * loop.batch_size:(step + 1) * loop.batch_size]
                pairs = [augment(images[i], masks[i]) for i in chosen]
                batch = (torch.stack([p[0] for p in pairs]) - mean) / std
                target = torch.stack([p[1] for p in pairs]).to(device, non_blocking=True)
                batch = batch.to(device, non_blocking=True)
                if loop.plan.channels_last:
                    batch = batch.contiguous(memory_format=torch.channels_last)
                with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                    outputs = _logits(model, batch)
                loss = _loss(outputs, target)
                optimiser.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimiser)
                scaler.update()
                value = float(loss.detach())
                total += value * len(chosen)
                loop.on_event(StepEvent(epoch + 1, step + 1, steps, value))
            train_seconds = time.perf_counter() - started
            model.eval()
            scores = validate()
            epoch += 1
            epoch_seconds.append(time.perf_counter() - started)
            plan = epochs_that_fit(loop.budget, spent(), epoch_seconds, epoch, loop.epochs)
            improved = scores[loop.score_key] > best[loop.score_key]
            if improved:
                best, best_state, best_epoch, stale = scores, _state(model), epoch, 0
            else:
                stale += 1
            record = EpochRecord(epoch, plan, total / len(order), scores,
                                 time.perf_counter() - started, train_seconds / len(order), improved)
            history.append(record.as_dict())
            if improved:
                save_best()
            save_resume()
            loop.on_event(record)
        else:
            stopped = "epochs"
    except _OutOfTime:
        # The budget ends the run as Ctrl-C would (the best epoch in the checkpoint, the state in the resume
        # file), without the exception: a run that used its time has finished.
        stopped = "time"
    except KeyboardInterrupt:
        # Saving is the point of stopping here (a second Ctrl-C still ends the process at once, and the atomic
        # write leaves the previous files whole).
        if epoch:
            save_resume()
        raise Interrupted(loop.output, loop.resume_path if epoch else None, epoch) from None
    if stopped == "time" and epoch and epoch < loop.epochs:
        save_resume()  # a longer budget continues the run where it stopped
    else:
        loop.resume_path.unlink(missing_ok=True)
    save_best()  # the final metadata: epochs run, why the run stopped
    return {"start_scores": start_scores, "best_scores": best, "best_epoch": best_epoch, "epochs_run": epoch,
            "stopped": stopped, "history": history, "lr": peak, "lr_reason": lr_reason,
            "seconds": round(spent(), 1)}


def _autocast_dtype(plan: DevicePlan) -> torch.dtype | None:
    """Mixed precision for training: bf16 on a GPU that has it, else fp16; none on the CPU (where bf16 changed
    U²-Net-P's masks and was slower, see :mod:`maskcli.cnn.device`)."""
    if not plan.is_cuda:
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def forward_backward_seconds(spec: ModelSpec, plan: DevicePlan, crop: int, batch_size: int, freeze: int,
                             repeats: int = 3) -> float:
    """Seconds per image of one training step (forward, backward, update) at ``crop``, for benchmarks."""
    model = new_model(spec).to(plan.device)
    if plan.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimiser = torch.optim.Adam(_freeze(model, freeze), lr=1e-5)
    _train_mode(model, freeze)
    batch = torch.rand(batch_size, 3, crop, crop, device=plan.device)
    if plan.channels_last:
        batch = batch.contiguous(memory_format=torch.channels_last)
    target = (torch.rand(batch_size, 1, crop, crop, device=plan.device) > 0.5).float()
    amp = _autocast_dtype(plan)
    times: list[float] = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        with torch.autocast(torch.device(plan.device).type, dtype=amp or torch.float32, enabled=amp is not None):
            loss = _loss(_logits(model, batch), target)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if plan.is_cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return min(times[1:]) / batch_size


__all__ = ["Loop", "run", "forward_backward_seconds", "RESUME_FORMAT"]
