"""The ONNX file onnxruntime runs for a U²-Net weights file: prepared once, then cached by the file's SHA-256.

Two kinds of U²-Net weights are prepared before onnxruntime runs them:

* **a checkpoint fine-tuned by** ``maskcli train`` (a torch file) is exported to ONNX, so it runs on the CPU as
  fast as the bundled model and later runs never import torch (the first run does, once, to export it);
* **a published ONNX export** (the bundled U²-Net-P among them) gets ``half_pixel`` coordinates in its Resize
  nodes instead of ``pytorch_half_pixel``. The two differ only for an output one pixel long, which U²-Net's
  upsampling never makes from an input of 32 pixels or more, so the masks stay equal (outputs within 3e-7), but
  onnxruntime has a fast kernel for the first only: U²-Net-P at 320×320 on one thread took 0.28 CPU-s per image
  against 0.31 (interleaved, 3 rounds of 4 images, 2 shared cores; the exported checkpoints run at the same
  0.28).

The prepared file lives in the weights cache, ``prepared/SHA256.onnx``; a checkpoint's export has
``SHA256.json`` beside it with what the spec needs from the checkpoint (architecture, pre-processing), written
first, so that a present ``.onnx`` means a complete entry. Both are written atomically, so concurrent runs may
prepare the same file. Where the cache cannot be written, the original file runs (a checkpoint through torch).

>>> import os, tempfile
>>> from unittest import mock
>>> from maskcli.cnn import device, specs, weights
>>> home = tempfile.TemporaryDirectory()
>>> with mock.patch.dict(os.environ, {"MASKCLI_HOME": home.name}):
...     path, spec = runnable(specs.get("u2netp"), weights.resolve(specs.get("u2netp")), device.resolve("cpu"))
>>> path.parent.name, spec.name
('prepared', 'u2netp')
>>> home.cleanup()
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

from maskcli.cnn import onnxrt
from maskcli.cnn.device import DevicePlan
from maskcli.cnn.specs import ModelSpec
from maskcli.cnn.weights import (
    PREPROCESSING,
    cache_dir,
    check_architecture,
    checkpoint_meta,
    digest,
    is_torch_file,
    spec_for_weights,
    with_preprocessing,
)
from maskcli.errors import MaskcliError

#: The builders whose architecture maskcli defines in torch and whose graphs it knows (:mod:`.models.u2net`).
U2NET_BUILDERS = ("u2net", "u2netp")
#: Below this input size an upsampled map could be one pixel long, where the two Resize modes differ.
MIN_INPUT = 32


def prepared_dir() -> Path:
    """The cache folder of prepared files: ``prepared/`` beside the downloaded weights."""
    return cache_dir() / "prepared"


def runnable(spec: ModelSpec, path: str | Path, plan: DevicePlan, engine: str = "auto"
             ) -> tuple[Path, ModelSpec]:
    """The weights file to run and the spec that goes with it: the prepared ONNX file where onnxruntime will run
    a U²-Net (``engine`` onnxruntime, or ``auto`` on the CPU), else ``path`` itself with the spec its checkpoint
    asks for (:func:`~maskcli.cnn.weights.spec_for_weights`).

    Raises
    ------
    WeightsUnavailable
        A checkpoint of another architecture than ``spec``'s, or a file that cannot be read.
    """
    path = Path(path)
    onnxruntime = engine == "onnxruntime" or (engine == "auto" and not plan.is_cuda and onnxrt.available())
    if not onnxruntime or spec.kind != "salient" or spec.builder not in U2NET_BUILDERS:
        return path, spec_for_weights(spec, path)
    if is_torch_file(path):
        return _exported(spec, path) or (path, spec_for_weights(spec, path))
    if path.suffix.lower() != ".onnx" or spec.input_size < MIN_INPUT:
        return path, spec
    return _rewritten(spec, path) or path, spec


def _exported(spec: ModelSpec, path: Path) -> tuple[Path, ModelSpec] | None:
    """A checkpoint's ONNX export and its spec, from the cache or made now; None for a torch file that is not a
    maskcli checkpoint, or when the cache cannot be written."""
    key = digest(path)
    target, facts = prepared_dir() / f"{key}.onnx", prepared_dir() / f"{key}.json"
    if target.is_file() and facts.is_file():
        try:
            meta = json.loads(facts.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = None
        if isinstance(meta, dict):
            check_architecture(spec, meta, path)
            return target, with_preprocessing(spec, meta)
    meta = checkpoint_meta(path)  # imports torch: this once
    if meta is None:
        return None
    check_architecture(spec, meta, path)
    tuned = with_preprocessing(spec, meta)
    keep = {k: meta[k] for k in ("builder", "base_model", *PREPROCESSING) if k in meta}
    graph = _export(tuned, path)
    if not _store(facts, json.dumps(dict(keep, checkpoint_sha256=key), indent=1).encode()) or \
            not _store(target, graph):
        return None
    return target, tuned


def _export(spec: ModelSpec, path: Path) -> bytes:
    """The fine-tuned U²-Net as ONNX bytes: one input (1×3×size×size) and one output, the fused probability map
    (the first output of the published exports)."""
    import torch

    from maskcli.cnn.loading import build_model

    model = build_model(spec, path)
    sample = torch.zeros(1, 3, spec.input_size, spec.input_size)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter warns that it is the older one; the newer needs onnxscript, not a dependency.
        warnings.simplefilter("ignore")
        # A file object works where the stubs say a path.
        torch.onnx.export(model, (sample,), buffer, input_names=["input"], output_names=["mask"],  # type: ignore[arg-type]
                          opset_version=17, dynamo=False)
    return buffer.getvalue()


def _rewritten(spec: ModelSpec, path: Path) -> Path | None:
    """The published export with ``half_pixel`` Resize nodes, from the cache or made now; None when the cache
    cannot be written."""
    target = prepared_dir() / f"{digest(path)}.onnx"
    if target.is_file():
        return target
    import onnx

    try:
        model = onnx.load(str(path))
    except Exception:  # noqa: BLE001 (protobuf and OS errors alike): onnxruntime names the fault when it loads it
        return None
    for node in model.graph.node:
        if node.op_type == "Resize":
            for attribute in node.attribute:
                if attribute.name == "coordinate_transformation_mode" and attribute.s == b"pytorch_half_pixel":
                    attribute.s = b"half_pixel"
    return target if _store(target, model.SerializeToString()) else None


def _store(target: Path, content: bytes) -> bool:
    """Write ``content`` atomically; False where the cache cannot be written (a read-only home)."""
    from maskcli.io.files import write_atomic

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, content)
    except (OSError, MaskcliError):
        return False
    return True


__all__ = ["MIN_INPUT", "U2NET_BUILDERS", "prepared_dir", "runnable"]
