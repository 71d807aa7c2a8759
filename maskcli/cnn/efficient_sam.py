"""EfficientSAM's ONNX exports under onnxruntime: the image and the prompts in its own layout.

EfficientSAM (github.com/yformer/EfficientSAM; the exports labelme's author wrote) differs from segment-anything's
exports (:class:`maskcli.cnn.sam.SamModel`) in every tensor:

* the image is ``batched_images``, ``1×3×H×W`` at the image's own size, RGB in [0, 1] (the graph resizes to 1024
  and normalises);
* prompts are ``batched_point_coords`` ``1×Q×N×2`` in image pixels and ``batched_point_labels`` ``1×Q×N`` (1 on
  the object, 0 off it, 2 and 3 a box's corners, -1 padding): ``Q`` prompts of one image are answered in one run;
* the answer is ``output_masks`` ``1×Q×M×H×W`` (logits at the image's size) and ``iou_predictions`` ``1×Q×M``
  (and low-resolution logits, unused);
* the model is one graph (``efficient_sam_vitt.onnx``: image and prompts in, masks out) or an encoder
  (``batched_images`` in, ``image_embeddings`` ``1×256×64×64`` out) and a decoder (``image_embeddings``, the
  prompts and ``orig_im_size``, int64 ``[H, W]``).

>>> coords, labels = prompt_batch([((10, 20, 30, 40), [(5, 6, 1)]), (None, [(7, 8, 0)])])
>>> coords.shape, labels.tolist()
((1, 2, 3, 2), [[[1.0, 2.0, 3.0], [0.0, -1.0, -1.0]]])
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from maskcli.cnn.sam_prompts import point_prompts
from maskcli.errors import WeightsUnavailable

#: The image input's name in EfficientSAM's exports (whole graph and encoder alike).
INPUT = "batched_images"
_PROMPTS = ("batched_point_coords", "batched_point_labels")

Prompts = Sequence[tuple[Sequence[float] | None, Sequence[tuple[float, float, int]]]]


def prompt_batch(prompts: Prompts) -> tuple[np.ndarray, np.ndarray]:
    """``(box, points)`` prompts as one ``1×Q×N×2`` coordinate and ``1×Q×N`` label tensor, in image pixels, each
    prompt padded to the longest with label -1 at (-1, -1) (as the export pads to its own maximum)."""
    pairs = [point_prompts(box, points) for box, points in prompts]
    longest = max((len(labels) for _, labels in pairs), default=1)
    coords = np.full((1, len(pairs), longest, 2), -1.0, np.float32)
    labels = np.full((1, len(pairs), longest), -1.0, np.float32)
    for index, (xy, kinds) in enumerate(pairs):
        coords[0, index, :len(kinds)] = xy
        labels[0, index, :len(kinds)] = kinds
    return coords, labels


class EfficientSamModel:
    """An EfficientSAM export (one graph, or encoder and decoder) with :class:`~maskcli.cnn.sam.SamModel`'s
    interface: ``embed`` once per image, ``decode_many`` for all its prompts in one run."""

    def __init__(self, encoder: Any, decoder: str | Path | None, name: str = "efficient-sam",
                 device: str = "cpu") -> None:
        from maskcli.cnn.onnxrt import session

        self.name = name
        self.encoder = encoder
        encoder_inputs = {i.name for i in encoder.get_inputs()}
        self.whole = decoder is None
        if self.whole:
            self.decoder = encoder
            if not set(_PROMPTS) <= encoder_inputs:
                raise WeightsUnavailable(f"{name}: the graph takes {', '.join(sorted(encoder_inputs))}; a whole "
                                         f"EfficientSAM graph takes {INPUT} and {', '.join(_PROMPTS)} (or give "
                                         "ENCODER,DECODER)")
        else:
            assert decoder is not None
            self.decoder = session(decoder, f"{name} decoder", device, cpu_fallback=True)
            needed = {"image_embeddings", *_PROMPTS, "orig_im_size"}
            missing = sorted(needed - {i.name for i in self.decoder.get_inputs()})
            if missing:
                raise WeightsUnavailable(f"{name}: the decoder has no input {missing[0]}; not an EfficientSAM "
                                         "decoder")
        self._size_type = next((i.type for i in self.decoder.get_inputs() if i.name == "orig_im_size"), "int64")
        self._outputs = [o.name for o in self.decoder.get_outputs()]
        if "output_masks" not in self._outputs or "iou_predictions" not in self._outputs:
            raise WeightsUnavailable(f"{name}: the outputs are {self._outputs}; output_masks and iou_predictions "
                                     "expected")

    def embed(self, image: np.ndarray) -> dict[str, Any]:
        """The image as the graph takes it and, with a separate encoder, its embedding."""
        rgb = np.dstack([image] * 3) if image.ndim == 2 else image[..., :3]
        batched = np.ascontiguousarray(np.clip(rgb, 0, 1).transpose(2, 0, 1)[None], np.float32)
        embedding: dict[str, Any] = {"size": rgb.shape[:2], "images": batched}
        if not self.whole:
            (embedding["image_embeddings"],) = self.encoder.run(["image_embeddings"], {INPUT: batched})
        return embedding

    def decode_many(self, embedding: dict[str, Any], prompts: Prompts) -> list[tuple[np.ndarray, np.ndarray]]:
        """Candidate masks (logits, M×H×W at the image's size) and their predicted IoUs (M) for each prompt."""
        if not prompts:
            return []
        coords, labels = prompt_batch(prompts)
        feed: dict[str, Any] = {_PROMPTS[0]: coords, _PROMPTS[1]: labels}
        if self.whole:
            feed[INPUT] = embedding["images"]
        else:
            dtype = np.int32 if "int32" in self._size_type else np.float32 if "float" in self._size_type else np.int64
            feed["image_embeddings"] = embedding["image_embeddings"]
            feed["orig_im_size"] = np.asarray(embedding["size"], dtype)
        masks, scores = self.decoder.run(["output_masks", "iou_predictions"], feed)
        masks = np.asarray(masks, np.float32)[0]
        scores = np.asarray(scores, np.float32)[0]
        height, width = embedding["size"]
        if masks.shape[-2:] != (height, width):
            import cv2

            masks = np.stack([np.stack([cv2.resize(np.ascontiguousarray(m), (width, height)) for m in query])
                              for query in masks])
        return [(masks[q], scores[q].reshape(-1)) for q in range(len(prompts))]


__all__ = ["INPUT", "EfficientSamModel", "prompt_batch"]
