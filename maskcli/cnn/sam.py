"""Segment Anything (SAM, SAM 2) from ONNX exports under onnxruntime: an image encoder run once per image and a
prompt decoder run once per prompt.

A model is two ONNX files (:class:`SamSpec`: two :class:`~maskcli.cnn.specs.ModelSpec`, each with its URL,
checksum and licence, fetched and verified by :mod:`maskcli.cnn.weights`). How to feed them is read from the
graphs' own signatures, so any export with the official names runs (EfficientSAM's own layout:
:mod:`maskcli.cnn.efficient_sam`, chosen by :func:`open_model`):

* encoder, **HWC frame** (segment-anything's exports as samexporter writes them, rembg's published files,
  Acly's MobileSAM): input
  ``H×W×3`` float pixels in 0–255 (the graph normalises and pads), the image scaled into the input's frame (fixed
  sizes, or 1024 on the long side when dynamic), top-left; output ``image_embeddings`` ``1×256×64×64``;
* encoder, **NCHW 1024** (SAM 2, samexporter's MobileSAM): input ``1×3×1024×1024``, ImageNet-normalised, the image
  resized to the square; outputs ``image_embed`` (or ``image_embeddings``) and, for SAM 2, ``high_res_feats_0``
  (``1×32×256×256``) and ``high_res_feats_1`` (``1×64×128×128``);
* decoder (segment-anything's ``SamOnnxModel``; SAM 2's adds the high-resolution features): ``point_coords``
  ``1×N×2`` in the encoder's 1024 frame, ``point_labels`` ``1×N`` (1 on the object, 0 off it, 2 and 3 a box's
  corners, -1 padding), ``mask_input`` ``1×1×256×256``, ``has_mask_input`` ``[1]`` and, where the graph has it,
  ``orig_im_size`` ``[2]``; outputs ``masks`` (logits ``1×M×h×w``) and ``iou_predictions`` (``1×M``).

>>> spec = get("sam-vit-b")
>>> spec.encoder.checksum(), spec.licence
('md5:a780f8ba09bceceaa1435724ed354848', 'Apache-2.0')
>>> point_prompts(box=(10, 20, 30, 40), points=[(5, 6, 0)])
(array([[ 5.,  6.],
       [10., 20.],
       [30., 40.]], dtype=float32), array([0., 2., 3.], dtype=float32))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from maskcli.cnn.sam_prompts import point_prompts
from maskcli.cnn.specs import IMAGENET_MEAN, IMAGENET_STD, ModelSpec
from maskcli.errors import OptionError, WeightsUnavailable, did_you_mean

_REMBG = "https://github.com/danielgatis/rembg/releases/download/v0.0.0/"
_SOURCE = ("Kirillov et al., Segment Anything, ICCV 2023 (github.com/facebookresearch/segment-anything, "
           "Apache-2.0); ONNX export (encoder with its pre-processing, SamOnnxModel decoder) published by rembg")
#: The side of the square SAM's prompt encoder measures coordinates in.
FRAME = 1024


@dataclasses.dataclass(frozen=True)
class SamSpec:
    """One Segment Anything model: its encoder and decoder files, and what prompts it understands.

    ``one_graph``: whether ``weights=`` may also name a single file holding encoder and decoder in one graph
    (EfficientSAM's ``efficient_sam_vitt.onnx``).
    """

    name: str
    encoder: ModelSpec
    decoder: ModelSpec
    licence: str
    summary: str
    source: str
    takes: str = "boxes, points (positive and negative)"
    one_graph: bool = False

    @property
    def parts(self) -> tuple[ModelSpec, ModelSpec]:
        return self.encoder, self.decoder

    @property
    def size_mb(self) -> float:
        """Both files' size in MB (exact where the byte counts are known)."""
        return sum(part.size_bytes / 1e6 if part.size_bytes else part.size_mb for part in self.parts)


def _file(name: str, url: str, size_mb: float, licence: str, source: str, *, md5: str | None = None,
          sha256: str | None = None, size_bytes: int | None = None) -> ModelSpec:
    return ModelSpec(name=name, kind="salient", builder="onnx-graph", weights_format="onnx", url=url,
                     filename=url.rsplit("/", 1)[-1], sha256=sha256, md5=md5, size_bytes=size_bytes,
                     size_mb=size_mb, licence=licence, input_size=FRAME, source=source)


def _sam(name: str, stem: str, encoder_md5: str, decoder_md5: str, encoder_mb: float, summary: str) -> SamSpec:
    return SamSpec(name, _file(f"{name} encoder", f"{_REMBG}{stem}.encoder.onnx", encoder_mb, "Apache-2.0", _SOURCE,
                               md5=encoder_md5),
                   _file(f"{name} decoder", f"{_REMBG}{stem}.decoder.onnx", 16.5, "Apache-2.0", _SOURCE,
                         md5=decoder_md5), "Apache-2.0", summary, _SOURCE)


# MobileSAM (TinyViT encoder distilled from SAM ViT-H; Apache-2.0) as exported by Acly/MobileSAM (the export's
# repository declares MIT): the encoder takes H×W×3 pixels 0-255 at 1024 on the long side and normalises and
# pads itself; the single-mask SamOnnxModel decoder. Pinned to the revision whose files' SHA-256 are given.
_MOBILE = "https://huggingface.co/Acly/MobileSAM/resolve/0d3b403339b4674a82493d5e97964dd78089ddc8/"
_MOBILE_SOURCE = ("Zhang et al., Faster Segment Anything (MobileSAM), 2023 (github.com/ChaoningZhang/MobileSAM, "
                  "Apache-2.0); ONNX export by huggingface.co/Acly/MobileSAM (MIT)")
# EfficientSAM-Ti (Apache-2.0), the ONNX export by its labelme exporter: encoder (``batched_images``, 1×3×H×W in
# [0, 1], resized inside) and decoder (``batched_point_coords`` in image pixels, ``orig_im_size``). SHA-256 as the
# exporter's osam lists them.
_EFFICIENT = "https://github.com/labelmeai/efficient-sam/releases/download/onnx-models-20231225/"
_EFFICIENT_SOURCE = ("Xiong et al., EfficientSAM, CVPR 2024 (github.com/yformer/EfficientSAM, Apache-2.0); ONNX "
                     "export by github.com/labelmeai/efficient-sam")
# SAM 2 Hiera-Tiny (Apache-2.0), samexporter's export: encoder 1×3×1024×1024 (ImageNet-normalised) giving
# image_embed and high_res_feats_0/1, a decoder taking them. The publisher lists no checksum; the SHA-256 and
# byte counts are those of the files as published (recorded by users of the export), and a download is also
# checked for its size.
_SAM2 = "https://huggingface.co/vietanhdev/segment-anything-2-onnx-models/resolve/main/"
_SAM2_SOURCE = ("Ravi et al., SAM 2, 2024 (github.com/facebookresearch/sam2, Apache-2.0); ONNX export by "
                "github.com/vietanhdev/samexporter (Apache-2.0)")

#: The models with published ONNX files (MD5s as rembg lists them, SHA-256 as noted above).
SPECS: dict[str, SamSpec] = {spec.name: spec for spec in (
    _sam("sam-vit-b", "sam_vit_b_01ec64", "a780f8ba09bceceaa1435724ed354848", "c4218b16ec1cb09889fcd6eb7a42a7c9",
         343.0, "SAM ViT-B (91 M parameters): the smallest original SAM."),
    _sam("sam-vit-l", "sam_vit_l_0b3195", "6e7c5e3e97b50a9e833e55062ae35182", "dc760a2912862c05ec3ac2658162a1b5",
         1170.0, "SAM ViT-L (308 M parameters)."),
    SamSpec("mobile-sam",
            _file("mobile-sam encoder", _MOBILE + "mobile_sam_image_encoder.onnx", 28.0, "Apache-2.0",
                  _MOBILE_SOURCE, sha256="580f5fb648ea1062c0aabc26217aed56921985f03f0cbbd852bba81d760cc749"),
            _file("mobile-sam decoder", _MOBILE + "sam_mask_decoder_single.onnx", 16.5, "Apache-2.0",
                  _MOBILE_SOURCE, sha256="93915fc7c993ab9d59ab8c9ccd3bce37f7509c81ab4150a74abd4d2abbd8570d"),
            "Apache-2.0 (weights); export MIT", "MobileSAM (10 M parameters): SAM's decoder on a TinyViT encoder, "
            "one mask per prompt.", _MOBILE_SOURCE),
    SamSpec("efficient-sam",
            _file("efficient-sam encoder", _EFFICIENT + "efficient_sam_vitt_encoder.onnx", 24.8, "Apache-2.0",
                  _EFFICIENT_SOURCE, size_bytes=24799761,
                  sha256="7a73ee65aa2c37237c89b4b18e73082f757ffb173899609c5d97a2bbd4ebb02d"),
            _file("efficient-sam decoder", _EFFICIENT + "efficient_sam_vitt_decoder.onnx", 16.6, "Apache-2.0",
                  _EFFICIENT_SOURCE, size_bytes=16565728,
                  sha256="e1afe46232c3bfa3470a6a81c7d3181836a94ea89528aff4e0f2d2c611989efd"),
            "Apache-2.0", "EfficientSAM-Ti (10 M parameters): masked-image pretrained ViT-Tiny; weak on negative "
            "points.", _EFFICIENT_SOURCE, takes="boxes, positive points (negative ones weakly)", one_graph=True),
    SamSpec("sam2-tiny",
            _file("sam2-tiny encoder", _SAM2 + "sam2_hiera_tiny.encoder.onnx", 134.3, "Apache-2.0", _SAM2_SOURCE,
                  size_bytes=134261315, sha256="4cc015ee18520e93f8c7ddfeaca7436039daaaaf19721b4b96a8810a805e82f7"),
            _file("sam2-tiny decoder", _SAM2 + "sam2_hiera_tiny.decoder.onnx", 20.6, "Apache-2.0", _SAM2_SOURCE,
                  size_bytes=20640886, sha256="f5a4bd656c143899fb7f52d64ed81e6f6aeb37d477a0b6da50146ac7cf2187bf"),
            "Apache-2.0", "SAM 2 Hiera-Tiny (39 M parameters): SAM 2's image model.", _SAM2_SOURCE),
)}
DEFAULT = "sam-vit-b"


def names() -> list[str]:
    return sorted(SPECS)


def get(name: str) -> SamSpec:
    try:
        return SPECS[name]
    except KeyError:
        raise OptionError("model", f"unknown Segment Anything model {name!r}{did_you_mean(name, SPECS)} Valid: "
                                   f"{', '.join(names())}") from None


def resolve(spec: SamSpec, weights: str | None = None) -> tuple[Path, Path | None]:
    """The encoder and decoder files: ``weights`` as ``ENCODER,DECODER`` (local files; for a ``one_graph`` model
    also one file holding both, the decoder then None), else the cache, else a download (each checked against its
    checksum)."""
    from maskcli.cnn import weights as store

    if weights is not None:
        parts = [part.strip() for part in str(weights).split(",")]
        if spec.one_graph and len(parts) == 1 and parts[0]:
            return store.resolve(spec.encoder, parts[0]), None
        if len(parts) != 2 or not all(parts):
            alone = " (or one file holding both)" if spec.one_graph else ""
            raise OptionError("weights", f"a Segment Anything model is two files: give them as ENCODER,DECODER"
                                         f"{alone}, not {weights!r}")
        return store.resolve(spec.encoder, parts[0]), store.resolve(spec.decoder, parts[1])
    return store.resolve(spec.encoder), store.resolve(spec.decoder)


def open_model(encoder: str | Path, decoder: str | Path | None, name: str = "sam", device: str = "cpu") -> Any:
    """The runtime for a model's files, chosen by the encoder graph's input: EfficientSAM's exports take
    ``batched_images`` (:class:`~maskcli.cnn.efficient_sam.EfficientSamModel`), the others an image tensor
    (:class:`SamModel`). Both have ``embed(image)`` and ``decode_many(embedding, prompts)``."""
    from maskcli.cnn.efficient_sam import INPUT, EfficientSamModel
    from maskcli.cnn.onnxrt import session

    opened = session(encoder, f"{name} encoder", device, cpu_fallback=True)
    if opened.get_inputs()[0].name == INPUT:
        return EfficientSamModel(opened, decoder, name=name, device=device)
    if decoder is None:
        raise WeightsUnavailable(f"{name}: {encoder} takes {opened.get_inputs()[0].name}, not a whole "
                                 "EfficientSAM graph; give the encoder and the decoder as ENCODER,DECODER")
    return SamModel(opened, decoder, name=name, device=device)


class SamModel:
    """A Segment Anything encoder and decoder under onnxruntime (see the module).

    ``embed`` runs the encoder on one image; ``decode`` runs the decoder for one prompt of that image and returns
    every candidate mask (logits at the image's size) with its predicted IoU.
    """

    def __init__(self, encoder: str | Path | Any, decoder: str | Path, name: str = "sam",
                 device: str = "cpu") -> None:
        from maskcli.cnn.onnxrt import session

        self.name = name
        self.encoder = (session(encoder, f"{name} encoder", device, cpu_fallback=True)
                        if isinstance(encoder, (str, Path)) else encoder)
        self.decoder = session(decoder, f"{name} decoder", device, cpu_fallback=True)
        source = self.encoder.get_inputs()[0]
        self._input = source.name
        shape = list(source.shape)
        if len(shape) == 3:  # H×W×3, pixels 0-255: the graph normalises and pads
            self.layout = "hwc"
            self.frame = tuple(v if isinstance(v, int) and v > 0 else None for v in shape[:2])
        elif len(shape) == 4:
            self.layout = "nchw"
            self.frame = (FRAME, FRAME)
        else:
            raise WeightsUnavailable(f"{name}: the encoder's input {source.name} has shape {shape}; a SAM encoder "
                                     "takes H×W×3 or 1×3×1024×1024")
        self._outputs = [o.name for o in self.encoder.get_outputs()]
        self._decoder_inputs = {i.name: i for i in self.decoder.get_inputs()}
        needed = {"point_coords", "point_labels", "mask_input", "has_mask_input"}
        missing = sorted(needed - set(self._decoder_inputs))
        if missing:
            raise WeightsUnavailable(f"{name}: the decoder has no input {missing[0]} (inputs: "
                                     f"{', '.join(self._decoder_inputs)}); not a Segment Anything decoder")
        self._decoder_outputs = [o.name for o in self.decoder.get_outputs()]
        if "masks" not in self._decoder_outputs or "iou_predictions" not in self._decoder_outputs:
            raise WeightsUnavailable(f"{name}: the decoder's outputs are {self._decoder_outputs}; masks and "
                                     "iou_predictions expected")

    def _frame_size(self, height: int, width: int) -> tuple[int, int, float, float]:
        """The image's size in the encoder's frame, and the scale from image pixels to it (x, y)."""
        if self.layout == "nchw":
            return FRAME, FRAME, FRAME / width, FRAME / height
        fixed_h, fixed_w = self.frame
        if fixed_h and fixed_w:
            scale = min(fixed_w / width, fixed_h / height)
        else:
            scale = FRAME / max(height, width)
        return max(1, round(height * scale)), max(1, round(width * scale)), scale, scale

    def embed(self, image: np.ndarray) -> dict[str, Any]:
        """The encoder's outputs for one image (float32 H×W×3 or H×W in [0, 1]), with what decoding needs."""
        rgb = np.dstack([image] * 3) if image.ndim == 2 else image[..., :3]
        height, width = rgb.shape[:2]
        new_h, new_w, sx, sy = self._frame_size(height, width)
        resized = cv2.resize(np.ascontiguousarray(rgb, np.float32), (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        if self.layout == "hwc":
            fixed_h, fixed_w = self.frame
            frame = np.zeros((fixed_h or new_h, fixed_w or new_w, 3), np.float32)
            frame[:new_h, :new_w] = resized * 255.0
            feed: np.ndarray = frame
        else:
            normalised = (resized - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(IMAGENET_STD, np.float32)
            feed = normalised.transpose(2, 0, 1)[None]
        outputs = dict(zip(self._outputs, self.encoder.run(None, {self._input: np.ascontiguousarray(feed)})))
        frame_h, frame_w = (feed.shape[0], feed.shape[1]) if self.layout == "hwc" else (FRAME, FRAME)
        return {"outputs": outputs, "size": (height, width), "scaled": (new_h, new_w), "scale": (sx, sy),
                "frame": (frame_h, frame_w)}

    def decode(self, embedding: dict[str, Any], box: Sequence[float] | None,
               points: Sequence[tuple[float, float, int]]) -> tuple[np.ndarray, np.ndarray]:
        """Candidate masks (logits, M×H×W at the image's size) and their predicted IoUs (M) for one prompt."""
        coords, labels = point_prompts(box, points)
        sx, sy = embedding["scale"]
        frame_h, frame_w = embedding["frame"]
        # The prompt encoder measures coordinates in a frame of FRAME on its long side.
        to_prompt = FRAME / max(frame_h, frame_w)
        coords = coords * np.asarray([sx * to_prompt, sy * to_prompt], np.float32)
        feed: dict[str, Any] = {"point_coords": coords[None].astype(np.float32),
                                "point_labels": labels[None].astype(np.float32),
                                "mask_input": np.zeros((1, 1, 256, 256), np.float32),
                                "has_mask_input": np.zeros(1, np.float32)}
        outputs = embedding["outputs"]
        for name in self._decoder_inputs:
            if name in feed:
                continue
            if name == "orig_im_size":
                kind = self._decoder_inputs[name].type
                dtype = np.int32 if "int32" in kind else np.int64 if "int64" in kind else np.float32
                feed[name] = np.asarray(embedding["frame"], dtype)
            elif name in outputs:
                feed[name] = outputs[name]
            elif name in ("image_embeddings", "image_embed"):
                feed[name] = outputs.get("image_embeddings", outputs.get("image_embed"))
            else:
                raise WeightsUnavailable(f"{self.name}: the decoder's input {name} is not an encoder output "
                                         f"({', '.join(outputs)})")
            if feed[name] is None:
                raise WeightsUnavailable(f"{self.name}: the encoder gives no image embedding for the decoder")
        result = dict(zip(self._decoder_outputs, self.decoder.run(None, feed)))
        masks = np.asarray(result["masks"], np.float32)[0]
        scores = np.asarray(result["iou_predictions"], np.float32).reshape(-1)
        return self._to_image(masks, embedding), scores

    def decode_many(self, embedding: dict[str, Any], prompts: Sequence[tuple[Sequence[float] | None,
                                                                             Sequence[tuple[float, float, int]]]]
                    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """:meth:`decode` for each ``(box, points)`` of one image."""
        return [self.decode(embedding, box, points) for box, points in prompts]

    def _to_image(self, masks: np.ndarray, embedding: dict[str, Any]) -> np.ndarray:
        """Masks from the decoder's frame back to the image: the scaled image's part of the frame, resized."""
        height, width = embedding["size"]
        out_h, out_w = masks.shape[-2:]
        frame_h, frame_w = embedding["frame"]
        if self.layout == "hwc":  # the image sat top-left in the frame
            new_h, new_w = embedding["scaled"]
            masks = masks[:, :max(1, round(new_h * out_h / frame_h)), :max(1, round(new_w * out_w / frame_w))]
        return np.stack([cv2.resize(np.ascontiguousarray(m), (width, height), interpolation=cv2.INTER_LINEAR)
                         for m in masks])


__all__ = ["DEFAULT", "FRAME", "SPECS", "SamModel", "SamSpec", "get", "names", "open_model", "point_prompts",
           "resolve"]
