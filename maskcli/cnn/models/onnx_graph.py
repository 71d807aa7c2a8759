"""Any ONNX export as a torch module, run by onnxruntime: models with no torch architecture in maskcli.

ISNet and BiRefNet are published as ONNX graphs; porting each architecture to torch (as U²-Net is, so it can be
fine-tuned) is not needed to *run* them. :class:`OnnxGraph` wraps an onnxruntime session in an ``nn.Module``
whose ``forward`` takes the normalised batch N×3×h×w and returns the graph's first output, so the segmenter's
batching, pre- and post-processing work unchanged. onnxruntime is the optional extra ``[onnx]``; on a CUDA
device the session uses onnxruntime's CUDA provider when it has one (``onnxruntime-gpu``), else the CPU.

It cannot be trained (``maskcli train`` needs a torch architecture) and ignores torch's autocast: the graph runs
in the precision it was exported in.

>>> import torch
>>> OnnxGraph.__mro__[1] is torch.nn.Module
True
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from torch import nn

from maskcli.errors import SetupError, WeightsUnavailable

INSTALL_HINT = "pip install 'maskcli[onnx]'"


class OnnxGraph(nn.Module):
    """An ONNX file under onnxruntime, callable like a torch module (inference only).

    Parameters
    ----------
    path : str or Path
        The ONNX file.
    name : str
        The model's name, for messages.

    Raises
    ------
    SetupError
        onnxruntime is not installed.
    WeightsUnavailable
        The file is not an ONNX graph onnxruntime can load.
    """

    def __init__(self, path: Union[str, Path], name: str = "model") -> None:
        super().__init__()
        if importlib.util.find_spec("onnxruntime") is None:
            raise SetupError(f"model {name!r} is an ONNX graph run by onnxruntime, which is not installed: "
                             f"{INSTALL_HINT}")
        import onnxruntime

        self.path, self.name = str(path), name
        self._ort = onnxruntime
        self._sessions: dict[str, Any] = {}
        self._session("cpu")  # a bad file fails now, before the first image

    def _session(self, device: str) -> Any:
        providers: list[Any] = ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in self._ort.get_available_providers():
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": int(device.partition(":")[2] or 0)}))
        key = str(providers[0])
        if key not in self._sessions:
            options = self._ort.SessionOptions()
            options.log_severity_level = 3
            try:
                self._sessions[key] = self._ort.InferenceSession(self.path, options, providers=providers)
            except Exception as error:  # onnxruntime's own Fail / InvalidGraph / NoSuchFile kinds
                raise WeightsUnavailable(f"onnxruntime cannot load {self.path} for model {self.name!r}: "
                                         f"{type(error).__name__}: {error}") from None
        return self._sessions[key]

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """The graph's first output for a normalised float batch N×3×h×w, on the batch's device."""
        session = self._session(str(batch.device))
        name = session.get_inputs()[0].name
        array = np.ascontiguousarray(batch.detach().float().cpu().numpy())
        # Many exports fix the batch at 1: run image by image.
        outputs = [session.run(None, {name: array[i:i + 1]})[0] for i in range(array.shape[0])]
        return torch.from_numpy(np.concatenate(outputs).astype(np.float32)).to(batch.device)


__all__ = ["OnnxGraph", "INSTALL_HINT"]
