"""Loading a model: which engine runs a weights file, and the loaded model itself.

Inference (:mod:`.infer`), fine-tuning (:mod:`.training`) and the ONNX export of a fine-tuned U²-Net
(:mod:`.prepare`) all load their models here, so a weights file means one thing everywhere: a published state
dict or ONNX file, or a checkpoint written by ``maskcli train`` (checked against the spec's architecture). torch is
imported only when a torch model is built; an ONNX model under onnxruntime never loads it.

>>> from maskcli.cnn import specs
>>> from maskcli.cnn.device import DevicePlan
>>> engine_for(specs.get("lraspp-mobilenet-v3"), "x.pth", DevicePlan("cpu", "fp32", True))
'torch'
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Union

from maskcli.cnn import onnxrt
from maskcli.cnn.device import DevicePlan
from maskcli.cnn.specs import ModelSpec
from maskcli.cnn.weights import check_architecture, load_state, read_checkpoint
from maskcli.errors import OptionError, SetupError, WeightsUnavailable

if TYPE_CHECKING:
    from torch import nn

Engine = Literal["auto", "torch", "onnxruntime"]
ENGINES: tuple[str, ...] = ("auto", "torch", "onnxruntime")


def engine_for(spec: ModelSpec, path: Union[str, Path], plan: DevicePlan, engine: str = "auto") -> str:
    """The engine that runs this model: ``auto`` takes onnxruntime for an ONNX weights file on the CPU when it
    is installed (no torch to import, and faster: ``benchmarks/results/rembg.md``), torch otherwise.

    Raises
    ------
    OptionError
        Not an engine name, or onnxruntime asked for weights that are not an ONNX file.
    SetupError
        onnxruntime asked for and not installed.

    Examples
    --------
    >>> from maskcli.cnn import specs
    >>> engine_for(specs.get("u2netp"), "x.onnx", DevicePlan("cuda:0", "fp32", True))
    'torch'
    """
    if engine not in ENGINES:
        raise OptionError("engine", f"expected one of {', '.join(ENGINES)}, not {engine!r}")
    is_onnx = spec.weights_format == "onnx" and Path(path).suffix.lower() == ".onnx"
    if engine == "onnxruntime" and not is_onnx:
        raise OptionError("engine", f"onnxruntime runs ONNX files; {Path(path).name} is not one (use torch)")
    if engine == "onnxruntime" and not onnxrt.available():
        raise SetupError(f"engine onnxruntime: onnxruntime is not installed ({onnxrt.INSTALL_HINT})")
    if engine == "auto":
        return "onnxruntime" if is_onnx and not plan.is_cuda and onnxrt.available() else "torch"
    return engine


def new_model(spec: ModelSpec) -> nn.Module:
    """An untrained module of ``spec``'s architecture (the module inference runs and training fine-tunes)."""
    from maskcli.cnn.models import new_module

    return new_module(spec)


def model_from_checkpoint(spec: ModelSpec, checkpoint: dict, path: Union[str, Path]) -> nn.Module:
    """The fine-tuned model a checkpoint of ``maskcli train`` holds, checked against ``spec``'s architecture."""
    check_architecture(spec, checkpoint.get("meta", {}), path)
    return load_state(new_model(spec), checkpoint.get("model"), path, f"{spec.name} ({spec.builder})")


def build_model(spec: ModelSpec, path: Union[str, Path]) -> nn.Module:
    """The spec's architecture with the weights of ``path`` loaded, on the CPU, in eval mode: a published file or
    a fine-tuned checkpoint.

    Raises
    ------
    WeightsUnavailable
        The file cannot be read, or holds another architecture (missing, unexpected or mis-shaped tensors).
    """
    if spec.builder == "onnx-graph":
        from maskcli.cnn.models.onnx_graph import OnnxGraph

        return OnnxGraph(path, spec.name).eval()
    import torch

    checkpoint = read_checkpoint(path)
    if checkpoint is not None:  # fine-tuned by `maskcli train`
        return model_from_checkpoint(spec, checkpoint, path).eval()
    model = new_model(spec)
    if spec.weights_format == "onnx":
        from maskcli.cnn.models import u2net

        u2net.load_onnx_weights(model, path)
        return model.eval()
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception:  # pickle, zip and OS errors alike mean "not a torch state dict"; torch's own text is
        # many lines about weights_only that say nothing about the cause
        hint = " (an ONNX file, the format of the u2net models)" if str(path).lower().endswith(".onnx") else ""
        raise WeightsUnavailable(f"{path} is not a weights file for model {spec.name!r}: it cannot be read as a "
                                 f"torch state dict{hint}") from None
    if isinstance(state, dict) and isinstance(state.get("model", state.get("state_dict")), dict):
        state = state.get("model", state.get("state_dict"))  # training checkpoints wrap the weights
    if not isinstance(state, dict):
        raise WeightsUnavailable(f"{path} is not a state dict (it holds a {type(state).__name__})")
    # The auxiliary head only helps training; the published files carry it, random or custom ones may not.
    state = {k: v for k, v in state.items() if not k.startswith("aux_classifier.")}
    return load_state(model, state, path, f"{spec.name} ({spec.builder}, {len(spec.categories)} classes)").eval()


def load(spec: ModelSpec, path: Union[str, Path], plan: DevicePlan, classes: Sequence[int], engine: str) -> Any:
    """The model that runs ``path`` on ``engine`` (as :func:`engine_for` resolved it): an
    :class:`~maskcli.cnn.onnxrt.OnnxModel` reading out ``classes`` for onnxruntime, else a torch module
    (:func:`build_model`)."""
    if engine == "onnxruntime":
        channels = list(classes) or [i for i, c in enumerate(spec.categories) if c != "__background__"]
        return onnxrt.OnnxModel(spec, path, plan.device, channels)
    return build_model(spec, path)


__all__ = ["ENGINES", "Engine", "build_model", "engine_for", "load", "model_from_checkpoint", "new_model"]
