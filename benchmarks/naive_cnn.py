"""The naive reference loop for the CNN benchmark: what a one-off script does with the same libraries.

One image at a time, fp32, the model's output brought back to the full image size *before* the probability is
computed (U²-Net: the fused map upsampled, then stretched to [0, 1]; semantic models: all 21 class logits
upsampled, then the softmax at full resolution), and the mask written before the next image is read. The model
itself is maskcli's (same weights, same pre-processing), so only the loop differs.

    python -m benchmarks.naive_cnn IMAGES_DIR OUT_DIR --model u2netp --weights ../shared/weights/u2netp.onnx
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from maskcli.cnn import specs
from maskcli.cnn.loading import build_model


def _input(spec: specs.ModelSpec, rgb: np.ndarray) -> torch.Tensor:
    height, width = rgb.shape[:2]
    if spec.kind == "salient":
        size = (spec.input_size, spec.input_size)
    else:
        scale = spec.input_size / min(height, width)
        size = (round(width * scale), round(height * scale))
    flag = cv2.INTER_LANCZOS4 if spec.interpolation == "lanczos" else cv2.INTER_AREA
    x = cv2.resize(rgb, size, interpolation=flag)
    if spec.scale_by_max:
        x = x / max(float(x.max()), 1e-6)
    x = (x - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32))[None]


def run(images: list[Path], out: Path, model_name: str, weights: str) -> float:
    """Segment ``images`` one by one into ``out``; returns the seconds taken (model load excluded)."""
    spec = specs.get(model_name)
    model = build_model(spec, weights)
    out.mkdir(parents=True, exist_ok=True)
    foreground = [i for i, c in enumerate(spec.categories) if c != "__background__"]
    start = time.perf_counter()
    for path in images:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255
        height, width = rgb.shape[:2]
        with torch.no_grad():
            out_map = model(_input(spec, rgb))
            if spec.kind == "salient":
                full = F.interpolate(out_map, size=(height, width), mode="bilinear", align_corners=False)[0, 0]
                mask = (full - full.min()) / (full.max() - full.min() + 1e-8)
            else:
                logits = F.interpolate(out_map["out"], size=(height, width), mode="bilinear", align_corners=False)
                mask = torch.softmax(logits, dim=1)[0, foreground].sum(0)
        cv2.imwrite(str(out / (path.stem + ".png")), (mask.clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--model", default="u2netp")
    parser.add_argument("--weights", required=True)
    parser.add_argument("--limit", type=int, default=0)
    args = parser.parse_args()
    files = sorted(p for p in args.images.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"})
    files = files[: args.limit] if args.limit else files
    seconds = run(files, args.out, args.model, args.weights)
    print(f"{len(files)} images in {seconds:.2f} s: {len(files) / seconds:.2f} img/s", file=sys.stderr)


if __name__ == "__main__":
    os.environ.setdefault("MASKCLI_OFFLINE", "1")
    main()
