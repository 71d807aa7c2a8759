"""A tiny reference evaluator of ONNX graphs (the ops the U²-Net exports use), for checking our torch port.

onnxruntime is not a dependency, so the published graph is interpreted node by node here, with numpy for the
shape arithmetic and torch's functional ops for the tensor maths. It is slow and only meant for tests.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper


def run_onnx(path: str, x: np.ndarray) -> list[np.ndarray]:
    """Evaluate the graph in ``path`` on input ``x`` (N×3×H×W float32) and return its outputs."""
    graph = onnx.load(path).graph
    values: dict[str, Any] = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    values[graph.input[0].name] = torch.from_numpy(x)
    for node in graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        args = [values[name] if name else None for name in node.input]
        op = node.op_type
        if op == "Constant":
            out = numpy_helper.to_array(attrs["value"])
        elif op == "Conv":
            pads = attrs.get("pads", [0, 0, 0, 0])
            assert pads[:2] == pads[2:]
            out = F.conv2d(args[0], torch.from_numpy(args[1].copy()), torch.from_numpy(args[2].copy()),
                           stride=attrs.get("strides", [1, 1]), padding=pads[:2],
                           dilation=attrs.get("dilations", [1, 1]), groups=attrs.get("group", 1))
        elif op == "Relu":
            out = torch.relu(args[0])
        elif op == "Sigmoid":
            out = torch.sigmoid(args[0])
        elif op == "Add":
            out = args[0] + args[1]
        elif op == "MaxPool":
            assert attrs.get("pads", [0, 0, 0, 0]) == [0, 0, 0, 0]
            out = F.max_pool2d(args[0], attrs["kernel_shape"], attrs["strides"], ceil_mode=bool(attrs["ceil_mode"]))
        elif op == "Concat":
            if isinstance(args[0], torch.Tensor):
                out = torch.cat(args, attrs["axis"])
            else:
                out = np.concatenate([np.asarray(a) for a in args], attrs["axis"])
        elif op == "Shape":
            out = np.array(args[0].shape, np.int64)
        elif op == "Gather":
            out = np.take(args[0], args[1], axis=attrs.get("axis", 0))
        elif op == "Unsqueeze":
            out = np.expand_dims(args[0], tuple(attrs["axes"]))
        elif op == "Slice":
            data, starts, ends, axes = args[0], args[1], args[2], args[3]
            index = [slice(None)] * data.ndim
            for start, end, axis in zip(starts, ends, axes):
                index[int(axis)] = slice(int(start), int(min(end, data.shape[int(axis)])))
            out = data[tuple(index)]
        elif op == "Cast":
            out = np.asarray(args[0]).astype(np.int64 if attrs["to"] == 7 else np.float32)
        elif op == "Resize":
            assert attrs["mode"] == b"linear" and attrs["coordinate_transformation_mode"] == b"pytorch_half_pixel"
            sizes = [int(s) for s in args[3]]
            out = F.interpolate(args[0], size=sizes[2:], mode="bilinear", align_corners=False)
        else:
            raise NotImplementedError(op)
        values[node.output[0]] = out
    return [values[o.name].numpy() for o in graph.output]
