"""segment's prompt options: where each object is (boxes, points), and what is written per object."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer

from maskcli.errors import OptionError

PROMPTS = "Prompts (one mask per object: -m grabcut-box, cnn-box, sam)"

Boxes = Annotated[Path | None, typer.Option(
    "--boxes", help="Prompts for each image: a COCO file's bbox annotations (.json), JSON Lines (.jsonl: "
    '{"image", "box": [x0,y0,x1,y1], "points": [[x,y,1|0]], "label"}) or a folder of YOLO .txt files.',
    rich_help_panel=PROMPTS, show_default=False)]
Box = Annotated[list[str] | None, typer.Option(
    "--box", help="A box X0,Y0,X1,Y1 in pixels, for every input (repeatable: one object each).",
    rich_help_panel=PROMPTS, show_default=False)]
Point = Annotated[list[str] | None, typer.Option(
    "--point", help="A point X,Y on the object, or X,Y,0 off it (repeatable; with one --box, its seeds).",
    rich_help_panel=PROMPTS, show_default=False)]
Label = Annotated[str, typer.Option("--label", help="The label of --box/--point objects.",
                                    rich_help_panel=PROMPTS)]
ClassList = Annotated[Path | None, typer.Option(
    "--class-list", help="With YOLO .txt files: their class names, one a line (default: the folder's "
    "classes.txt).", rich_help_panel=PROMPTS, show_default=False)]
PromptClasses = Annotated[list[str] | None, typer.Option(
    "--prompt-class", help="With a COCO or JSON Lines file: only the objects of these classes (repeatable or "
    "comma-separated).", rich_help_panel=PROMPTS, show_default=False)]
Objects = Annotated[bool, typer.Option(
    "--objects", help="Also write one mask per object: {stem}_{index}_{label}.png.", rich_help_panel=PROMPTS)]
Union = Annotated[bool, typer.Option(
    "--union", help="Write the union of an image's objects as its mask, instead of a label image.",
    rich_help_panel=PROMPTS)]


@dataclasses.dataclass
class PromptOptions:
    """Where prompts come from, and which outputs they make."""

    boxes: Boxes = None
    box: Box = None
    point: Point = None
    label: Label = "object"
    class_list: ClassList = None
    prompt_class: PromptClasses = None
    objects: Objects = False
    union: Union = False

    @property
    def given(self) -> bool:
        return self.boxes is not None or bool(self.box) or bool(self.point)

    def source(self) -> Any:
        """The prompt source the options name."""
        if not self.given:
            for flag, value in (("--objects", self.objects), ("--union", self.union),
                                ("--class-list", self.class_list), ("--prompt-class", self.prompt_class)):
                if value:
                    raise OptionError(flag, "goes with prompts: give --boxes, --box or --point")
            return None
        return open_source(self.boxes, self.box, self.point, self.label, self.class_list, self.prompt_class)

    def outputs(self, labels: bool) -> tuple[str, ...]:
        if labels and self.union:
            raise OptionError("--union", "an image's output is either its label image (--labels) or its union mask")
        main = ("union",) if self.union else ("labels",)
        return main + (("objects",) if self.objects else ())


def open_source(boxes: Path | None, box: list[str] | None, point: list[str] | None, label: str = "object",
                class_list: Path | None = None, prompt_class: list[str] | None = None) -> Any:
    """The prompt source of a file (``--boxes``) or of boxes and points given on the command line; None without
    either."""
    from maskcli.prompts import parse_box, parse_point
    from maskcli.promptsources import GivenPrompts, open_prompts

    if boxes is None and not box and not point:
        return None
    if boxes is not None and (box or point):
        raise OptionError("--box", "give prompts either in a file (--boxes) or on the command line")
    if boxes is not None:
        classes = [c.strip() for value in prompt_class or [] for c in value.split(",") if c.strip()]
        return open_prompts(boxes, classes or None, class_list)
    return GivenPrompts([parse_box(text) for text in box or []], [parse_point(text) for text in point or []], label)
