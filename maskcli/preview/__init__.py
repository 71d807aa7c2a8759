"""Looking over masks: overlays (a tint and an outline over the image) and contact sheets (one grid of thumbnails).

:mod:`~maskcli.preview.drawing` holds the pure drawing functions (:func:`overlay_image`, :func:`thumbnail`,
:func:`contact_sheet`: float32 RGB arrays in [0, 1], and the sheet's layout); :mod:`~maskcli.preview.batch` holds
:func:`write_previews`, which reads a folder of images and their masks, writes an overlay per image and one contact
sheet, streaming: one image is in memory at a time, beside the sheet being filled.
"""

from maskcli.preview.batch import PreviewReport, PreviewResult, write_previews
from maskcli.preview.drawing import BACKGROUND, TEXT, SheetLayout, contact_sheet, draw_prompts, overlay_image, thumbnail

__all__ = ["BACKGROUND", "TEXT", "PreviewReport", "PreviewResult", "SheetLayout", "contact_sheet", "draw_prompts",
           "overlay_image", "thumbnail", "write_previews"]
