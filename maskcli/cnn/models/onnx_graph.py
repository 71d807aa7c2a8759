"""Any ONNX export as a torch module, run by onnxruntime: models with no torch architecture in maskcli.

ISNet and BiRefNet are published as ONNX graphs; porting each architecture to torch (as U²-Net is, so it can be
fine-tuned) is not needed to *run* them. :class:`OnnxGraph` wraps an onnxruntime session in an ``nn.Module``
whose ``forward`` takes the normalised batch N×3×h×w and returns the graph's first output, so the segmenter's
batching, pre- and post-processing work unchanged. onnxruntime is a dependency; on a CUDA
device the session uses onnxruntime's CUDA provider when it has one (``onnxruntime-gpu``), else the CPU.

It cannot be trained (``maskcli train`` needs a torch architecture) and ignores torch's autocast: the graph runs
in the precision it was exported in.

>>> import torch
>>> OnnxGraph.__mro__[1] is torch.nn.Module
True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Union

import torch
from torch import nn

from maskcli.cnn import onnxrt


class OnnxGraph(nn.Module):
    """An ONNX file under onnxruntime, callable like a torch module (inference only).

    The session (its thread policy, providers and load errors) and the run come from :mod:`maskcli.cnn.onnxrt`,
    the one onnxruntime path; on a CUDA device without onnxruntime's CUDA provider the graph runs on the CPU.

    Parameters
    ----------
    path, name : str or Path, str
        The ONNX file and the model's name, as :func:`maskcli.cnn.onnxrt.session` takes them (and raises its
        ``SetupError`` without onnxruntime, its ``WeightsUnavailable`` for a file it cannot load).
    """

    def __init__(self, path: Union[str, Path], name: str = "model") -> None:
        super().__init__()
        self.path, self.name = str(path), name
        self._sessions: dict[str, Any] = {}
        self._session("cpu")  # a bad file fails now, before the first image

    def _session(self, device: str) -> Any:
        if device not in self._sessions:
            self._sessions[device] = onnxrt.session(self.path, self.name, device, cpu_fallback=True)
        return self._sessions[device]

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """The graph's first output for a normalised float batch N×3×h×w, on the batch's device."""
        out = onnxrt.run_graph(self._session(str(batch.device)), batch.detach().float().cpu().numpy())
        return torch.from_numpy(out.astype("float32", copy=False)).to(batch.device)


__all__ = ["OnnxGraph"]
