"""``maskcli train``: fine-tune a CNN on image/mask pairs (a thin layer over :func:`maskcli.train.fine_tune`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from maskcli.cli.common import class_option, split_names
from maskcli.cli.context import Exit, current
from maskcli.errors import OptionError

DATA = "Data"
TRAINING = "Training"
REPORTING = "Reporting"


def train_command(
    images: Annotated[Path, typer.Argument(metavar="IMAGES", help="Folder of training images.", show_default=False)],
    masks: Annotated[Path, typer.Argument(metavar="MASKS", help="Their masks, paired by relative path and stem as "
                                          "in `maskcli eval`: a folder of masks (white foreground on black), a "
                                          "COCO file, or label images with their labels.json.",
                                          show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="The checkpoint to write (.pt).",
                                         show_default=False)],
    model: Annotated[str, typer.Option("--model", help="The model to start from: u2netp, u2net, or a torchvision "
                                       "semantic model (its head trains).",
                                       rich_help_panel=TRAINING)] = "u2netp",
    weights: Annotated[Optional[Path], typer.Option("--weights", help="Start from this file (default: the "
                                                    "model's pretrained weights; or an earlier checkpoint).",
                                                    rich_help_panel=TRAINING, show_default=False)] = None,
    val: Annotated[float, typer.Option("--val", help="Share of the pairs held out for validation.",
                                       rich_help_panel=DATA)] = 0.2,
    val_images: Annotated[Optional[Path], typer.Option("--val-images", help="Validate on this folder instead "
                                                       "(with --val-masks).", rich_help_panel=DATA,
                                                       show_default=False)] = None,
    val_masks: Annotated[Optional[Path], typer.Option("--val-masks", help="The validation masks.",
                                                      rich_help_panel=DATA, show_default=False)] = None,
    # The ignore below: an Annotated alias built by a call: Typer reads it, mypy cannot.
    classes: class_option(DATA) = None,  # type: ignore[valid-type]
    time_budget: Annotated[Optional[str], typer.Option("--time", help="Time the run may take, e.g. 90s, 15m, "
                                                       "1h (0: no limit; default: 15m on the CPU, no limit on a "
                                                       "GPU). Epochs are planned to fit; the run stops as Ctrl-C "
                                                       "does, and --resume with a longer --time continues it.",
                                                       rich_help_panel=TRAINING, show_default=False)] = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="At most this many passes over the training "
                                                  "pairs (default: as many as fit --time; 30 with no limit).",
                                                  rich_help_panel=TRAINING, show_default=False)] = None,
    patience: Annotated[Optional[int], typer.Option("--patience", help="Stop when validation has not improved "
                                                    "for this many epochs (default: 8 with no time limit, else "
                                                    "none).", rich_help_panel=TRAINING, show_default=False)] = None,
    lr: Annotated[Optional[float], typer.Option("--lr", help="Peak learning rate (Adam; warmup, then cosine; "
                                                "default: 1e-4, 3e-5 when the starting model already scores 0.8).",
                                                rich_help_panel=TRAINING, show_default=False)] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Pairs per step (default: 4 on the "
                                                      "CPU, 8 on a GPU, fewer for at least 10 steps an epoch).",
                                                      rich_help_panel=TRAINING, show_default=False)] = None,
    size: Annotated[Optional[int], typer.Option("--size", help="Input the whole image is resized to, in training "
                                                "and later in inference: U²-Net's square side, a semantic model's "
                                                "shorter side (default: the model's, 320 or 520; a U²-Net's grows "
                                                "to 512 for thin structures in the masks).",
                                                rich_help_panel=TRAINING, show_default=False)] = None,
    crop: Annotated[Optional[int], typer.Option("--crop", help="Side of the patches trained on, cut around "
                                                "that scale (default: 192 on the CPU, larger for large objects; the "
                                                "whole --size on a GPU).",
                                                rich_help_panel=TRAINING, show_default=False)] = None,
    freeze: Annotated[Optional[int], typer.Option("--freeze", help="U²-Net: encoder stages (of 6, from the "
                                                  "input) kept fixed (default: 1 on the CPU, 0 on a GPU); semantic "
                                                  "models: 1 keeps the backbone fixed (default), 0 trains it.",
                                                  rich_help_panel=TRAINING, show_default=False)] = None,
    flips: Annotated[Optional[str], typer.Option("--flips", help="Random flips: h (horizontal), hv (also "
                                                 "vertical, for microscopy and aerial images), none (default: hv "
                                                 "for grey images with no up, else h).", rich_help_panel=TRAINING,
                                                 show_default=False)] = None,
    both_classes: Annotated[Optional[bool], typer.Option("--both-classes/--foreground-only", help="Score and "
                                                         "stop early on the mean IoU of foreground and background "
                                                         "(default: when the foreground covers most of each "
                                                         "image).", rich_help_panel=TRAINING,
                                                         show_default=False)] = None,
    seed: Annotated[int, typer.Option("--seed", help="Fixes the split, the order and the augmentations.",
                                      rich_help_panel=TRAINING)] = 0,
    device: Annotated[str, typer.Option("--device", help="auto | cpu | cuda | cuda:N.",
                                        rich_help_panel=TRAINING)] = "auto",
    resume: Annotated[bool, typer.Option("--resume", help="Continue the interrupted run that writes OUTPUT.",
                                         rich_help_panel=TRAINING)] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing OUTPUT.",
                                            rich_help_panel=DATA)] = False,
    json_records: Annotated[bool, typer.Option("--json", help="One JSON record per epoch on stdout, and a "
                                               "summary record at the end.", rich_help_panel=REPORTING)] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or epoch lines; warnings and the "
                                        "result still go to stderr.", rich_help_panel=REPORTING)] = False,
) -> None:
    """Fine-tune a CNN (U²-Net-P by default) on your own image/mask pairs; use the result with --weights.

    The best epoch (by validation IoU) is saved to OUTPUT with its metadata; `maskcli models info OUTPUT` shows
    it. Settings not given are measured from the pairs and reported. Ctrl-C saves and exits 130; --resume
    continues. Exit status 3 when the data cannot train a model (too few
    pairs, all masks empty).

    \b
    Examples:
      maskcli train cells/ cells-masks/ -o cells.pt --flips hv
      maskcli segment new-cells/ -o masks/ --weights cells.pt
      maskcli eval --methods cnn,cnn:weights=cells.pt more-cells/ more-masks/
    """
    from maskcli import train as library
    from maskcli.train_defaults import parse_duration

    if output.exists() and not (resume or overwrite):
        raise OptionError("--output", f"{output} exists; pass --overwrite to replace it (or --resume to continue "
                                      f"its run)")
    if weights is not None and output.exists() and weights.resolve() == output.resolve():
        raise OptionError("--output", f"{output} is the file training starts from (--weights); write elsewhere")
    try:
        budget = None if time_budget is None else parse_duration(time_budget)
    except ValueError as error:
        raise OptionError("--time", str(error)) from None
    settings = library.TrainSettings(model=model, weights=None if weights is None else str(weights), size=size,
                                     crop=crop, epochs=epochs, patience=patience, lr=lr, batch_size=batch_size,
                                     freeze=freeze, val_fraction=val, seed=seed, device=device,
                                     both_classes=both_classes, flips=flips, time=budget)
    view = _View(quiet=quiet, json_records=json_records, score_key=settings.score_key)
    try:
        with view:  # Ctrl-C arrives as the KeyboardInterrupt on which training saves its state
            result = library.fine_tune(images, masks, output, settings, val_images=val_images, val_masks=val_masks,
                                       classes=split_names(classes), resume=resume, on_event=view.event)
    except library.Interrupted as stop:
        where = f"; continue with --resume (state in {stop.resume})" if stop.resume else ""
        print(f"maskcli: interrupted after {stop.epochs_done} epochs; the best model so far is in "
              f"{stop.checkpoint}{where}", file=current().stderr, flush=True)
        raise typer.Exit(Exit.INTERRUPTED) from None
    key = result.score_key
    label = "IoU (both classes)" if key == "iou_both" else "IoU"
    if json_records:
        print(json.dumps({"checkpoint": str(result.checkpoint), "start": result.start_scores,
                          "best": result.best_scores, "best_epoch": result.best_epoch,
                          "epochs_run": result.epochs_run, "stopped": result.stopped,
                          "train_pairs": result.train_pairs, "val_pairs": result.val_pairs,
                          "seconds": result.seconds, "decisions": result.decisions}), file=current().stdout,
              flush=True)
    if not quiet:
        for name, decision in result.decisions.items():
            print(f"maskcli: {name} {decision['value']}: {decision['reason']}", file=current().stderr, flush=True)
    stopped = _STOPPED.get(result.stopped, result.stopped)
    if result.stopped == "time" and result.epochs_run:
        from maskcli.train_defaults import format_duration

        stopped = (f"stopped at the {format_duration(result.budget)} time limit; a longer --time with --resume "
                   f"continues")
    print(f"maskcli: validation {label} on {result.val_pairs} pairs: start {result.start_scores[key]:.4f} -> "
          f"fine-tuned {result.best_scores[key]:.4f} (epoch {result.best_epoch} of {result.epochs_run}, {stopped}); "
          f"saved {result.checkpoint}", file=current().stderr, flush=True)


_STOPPED = {"early": "stopped early", "epochs": "all epochs run", "time": "stopped at the time limit"}


class _View:
    """Draws a bar per epoch on a terminal, prints one line per epoch, and the --json records."""

    def __init__(self, *, quiet: bool, json_records: bool, score_key: str) -> None:
        self.quiet = quiet
        self.json_records = json_records
        self.score_key = score_key
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> _View:
        if not self.quiet and current().stderr_isatty:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(),
                                 console=current().console(current().stderr), transient=True)
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def _line(self, text: str) -> None:
        if self._bar is not None:
            self._bar.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            print(text, file=current().stderr, flush=True)

    def event(self, event: Any) -> None:
        from maskcli.train import EpochRecord, Notice, StepEvent

        if isinstance(event, Notice):
            self._line(f"maskcli: warning: {event.path + ': ' if event.path else ''}{event.message}")
        elif isinstance(event, StepEvent) and self._bar is not None:
            if self._task is None:
                self._task = self._bar.add_task(f"epoch {event.epoch}", total=event.steps, loss="")
            self._bar.update(self._task, completed=event.step, total=event.steps, description=f"epoch {event.epoch}",
                             loss=f"{event.loss:.4f}")
        elif isinstance(event, EpochRecord):
            if self._task is not None:
                self._bar.remove_task(self._task)
                self._task = None
            if self.json_records:
                print(json.dumps(event.as_dict()), file=current().stdout, flush=True)
            if not self.quiet:
                self._line(_epoch_line(event, self.score_key))


def _epoch_line(record: Any, score_key: str) -> str:
    scores = " ".join(f"{key} {record.val[key]:.4f}" for key in ("iou", "dice", "iou_both") if key in record.val)
    if record.epoch == 0:
        return f"maskcli: start model: val {scores}"
    mark = " *best" if record.best else ""
    return (f"maskcli: epoch {record.epoch}/{record.epochs}: loss {record.train_loss:.4f}, val {scores}, "
            f"{record.seconds:.1f} s ({record.seconds_per_image:.2f} s/img training){mark}")


__all__ = ["train_command"]
