"""U²-Net and U²-Net-P (Qin et al., *Pattern Recognition* 106, 2020) as plain torch modules.

The published weights come as ONNX exports with BatchNorm folded into the convolutions, so every "REBNCONV" block
of the paper is a convolution with a bias followed by a ReLU here. :func:`load_onnx_weights` copies the ONNX
initialisers into a module, convolution by convolution in graph order, checking every shape, kernel, padding and
dilation, so a file of another architecture is refused rather than turned into a garbage mask.

>>> import torch
>>> net = u2netp().eval()
>>> with torch.inference_mode():
...     net(torch.zeros(2, 3, 64, 64)).shape
torch.Size([2, 1, 64, 64])
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

import torch
import torch.nn.functional as F
from torch import nn

from maskcli.errors import WeightsUnavailable

# (height, in, mid, out); height 0 is the dilated, pool-free "RSU-4F" block.
Stage = tuple[int, int, int, int]

U2NETP_CONFIG: dict[str, list] = {
    "encoder": [(7, 3, 16, 64), (6, 64, 16, 64), (5, 64, 16, 64), (4, 64, 16, 64), (0, 64, 16, 64), (0, 64, 16, 64)],
    "decoder": [(0, 128, 16, 64), (4, 128, 16, 64), (5, 128, 16, 64), (6, 128, 16, 64), (7, 128, 16, 64)],
    "side": [64, 64, 64, 64, 64, 64],
}
U2NET_CONFIG: dict[str, list] = {
    "encoder": [(7, 3, 32, 64), (6, 64, 32, 128), (5, 128, 64, 256), (4, 256, 128, 512), (0, 512, 256, 512),
                (0, 512, 256, 512)],
    "decoder": [(0, 1024, 256, 512), (4, 1024, 128, 256), (5, 512, 64, 128), (6, 256, 32, 64), (7, 128, 16, 64)],
    "side": [64, 64, 128, 256, 512, 512],
}


class ConvReLU(nn.Module):
    """3×3 convolution (BatchNorm folded into its bias) and ReLU; padding equals dilation so size is kept."""

    def __init__(self, in_ch: int, out_ch: int, dilation: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, padding=dilation, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv(x), inplace=True)


def _upsample_like(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    # The reference code's F.upsample(mode="bilinear") exports as Resize(linear, pytorch_half_pixel), which is
    # align_corners=False.
    if x.shape[2:] == target.shape[2:]:
        return x
    return F.interpolate(x, size=target.shape[2:], mode="bilinear", align_corners=False)


def _pool(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, 2, stride=2, ceil_mode=True)


class RSU(nn.Module):
    """Residual U-block of ``height`` levels (RSU-7 … RSU-4): an encoder-decoder inside a residual connection.

    Sub-modules are registered in the order the reference forward pass runs them, which is the order of the
    convolutions in the exported ONNX graph; :func:`load_onnx_weights` relies on it.
    """

    def __init__(self, height: int, in_ch: int, mid_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv_in = ConvReLU(in_ch, out_ch)
        self.encoder = nn.ModuleList(
            [ConvReLU(out_ch, mid_ch)] + [ConvReLU(mid_ch, mid_ch) for _ in range(height - 2)]
            + [ConvReLU(mid_ch, mid_ch, dilation=2)]
        )
        self.decoder = nn.ModuleList(
            [ConvReLU(mid_ch * 2, mid_ch) for _ in range(height - 2)] + [ConvReLU(mid_ch * 2, out_ch)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_in = self.conv_in(x)
        skips = []
        h = x_in
        last = len(self.encoder) - 1
        for i, conv in enumerate(self.encoder):
            h = conv(h)
            if i < last:
                skips.append(h)
                if i < last - 1:  # no pooling before the innermost two levels
                    h = _pool(h)
        for conv in self.decoder:
            skip = skips.pop()
            h = conv(torch.cat((_upsample_like(h, skip), skip), 1))
        return h + x_in


class RSU4F(nn.Module):
    """RSU-4F: the residual U-block with dilations (1, 2, 4, 8) instead of pooling, for the coarsest stages."""

    def __init__(self, in_ch: int, mid_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv_in = ConvReLU(in_ch, out_ch)
        self.encoder = nn.ModuleList(
            [ConvReLU(out_ch, mid_ch, 1), ConvReLU(mid_ch, mid_ch, 2), ConvReLU(mid_ch, mid_ch, 4),
             ConvReLU(mid_ch, mid_ch, 8)]
        )
        self.decoder = nn.ModuleList(
            [ConvReLU(mid_ch * 2, mid_ch, 4), ConvReLU(mid_ch * 2, mid_ch, 2), ConvReLU(mid_ch * 2, out_ch, 1)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_in = self.conv_in(x)
        skips = []
        h = x_in
        for conv in self.encoder:
            h = conv(h)
            skips.append(h)
        h = skips.pop()
        for conv in self.decoder:
            h = conv(torch.cat((h, skips.pop()), 1))
        return h + x_in


def _stage(config: Stage) -> nn.Module:
    height, in_ch, mid_ch, out_ch = config
    return RSU4F(in_ch, mid_ch, out_ch) if height == 0 else RSU(height, in_ch, mid_ch, out_ch)


class U2Net(nn.Module):
    """The two-level nested U-structure; ``forward`` returns the fused saliency map d0 as a probability.

    Parameters
    ----------
    config : dict
        :data:`U2NETP_CONFIG` or :data:`U2NET_CONFIG` (the stages' heights and channel counts).
    side_outputs : bool
        Return the six side maps too (as the reference does, for deep supervision); inference needs only d0.
    """

    def __init__(self, config: dict[str, list], side_outputs: bool = False) -> None:
        super().__init__()
        self.side_outputs = side_outputs
        self.encoder = nn.ModuleList([_stage(c) for c in config["encoder"]])
        self.decoder = nn.ModuleList([_stage(c) for c in config["decoder"]])
        self.side = nn.ModuleList([nn.Conv2d(ch, 1, 3, padding=1) for ch in config["side"]])
        self.outconv = nn.Conv2d(len(config["side"]), 1, 1)

    def forward(self, x: torch.Tensor) -> Union[torch.Tensor, tuple[torch.Tensor, ...]]:
        fused, *sides = self.logits(x)
        if self.side_outputs:
            return (torch.sigmoid(fused), *(torch.sigmoid(s) for s in sides))
        return torch.sigmoid(fused)

    def logits(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The fused map d0 and the six side maps before the sigmoid (training takes its losses on these, where
        binary cross-entropy is exact and safe under mixed precision)."""
        features = []
        h = x
        for i, stage in enumerate(self.encoder):
            if i:
                h = _pool(h)
            h = stage(h)
            features.append(h)
        decoded = [features.pop()]  # the innermost stage feeds the decoder and the sixth side output
        h = decoded[0]
        for stage in self.decoder:
            skip = features.pop()
            h = stage(torch.cat((_upsample_like(h, skip), skip), 1))
            decoded.append(h)
        decoded.reverse()  # finest first: stage1d, stage2d, ..., stage6
        sides = [conv(feature) for conv, feature in zip(self.side, decoded)]
        sides = [sides[0]] + [_upsample_like(s, sides[0]) for s in sides[1:]]
        return (self.outconv(torch.cat(sides, 1)), *sides)


def u2netp() -> U2Net:
    """U²-Net-P: about 1.13 M parameters, the light variant."""
    return U2Net(U2NETP_CONFIG)


def u2net() -> U2Net:
    """U²-Net: about 44 M parameters (also the architecture of the human-segmentation weights)."""
    return U2Net(U2NET_CONFIG)


def _conv_attributes(node: object) -> dict[str, tuple[int, ...]]:
    import onnx

    # The ignore below: onnx.helper's stubs lack it.
    attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}  # type: ignore[attr-defined]
    return {key: tuple(attributes.get(key, default)) for key, default in
            (("dilations", (1, 1)), ("pads", (0, 0, 0, 0)), ("strides", (1, 1)), ("kernel_shape", ()))}


def load_onnx_weights(module: nn.Module, path: Union[str, Path]) -> nn.Module:
    """Copy the convolution weights of an exported ONNX graph into ``module``, in graph order.

    The graph's convolutions run in the order the module registers its ``Conv2d`` layers (the export traced the
    same forward pass), so the n-th Conv node feeds the n-th ``Conv2d``. Every weight and bias shape, and every
    kernel, padding, stride and dilation is checked, and the counts must agree.

    Raises
    ------
    WeightsUnavailable
        The file is not a readable ONNX model, or it holds another architecture.

    Examples
    --------
    >>> load_onnx_weights(u2netp(), "missing.onnx")
    Traceback (most recent call last):
    ...
    maskcli.errors.WeightsUnavailable: cannot read ONNX weights missing.onnx: ...
    """
    import onnx
    from onnx import numpy_helper

    try:
        graph = onnx.load(str(path)).graph
    except Exception as error:  # onnx raises several kinds (protobuf DecodeError, OSError)
        raise WeightsUnavailable(f"cannot read ONNX weights {path}: {error}") from None
    arrays = {init.name: init for init in graph.initializer}
    for node in graph.node:  # some exporters hold weights in Constant nodes instead of initialisers
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            arrays.setdefault(node.output[0], node.attribute[0].t)
    nodes = [node for node in graph.node if node.op_type == "Conv"]
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]

    def wrong(detail: str) -> WeightsUnavailable:
        return WeightsUnavailable(
            f"{path} does not hold the weights of this architecture ({type(module).__name__}): {detail}"
        )

    if len(nodes) != len(convs):
        raise wrong(f"{len(nodes)} convolutions in the file, {len(convs)} in the model")
    with torch.no_grad():
        for index, (node, conv) in enumerate(zip(nodes, convs)):
            if len(node.input) != 3 or node.input[1] not in arrays or node.input[2] not in arrays:
                raise wrong(f"convolution {index} has no constant weight and bias")
            weight = numpy_helper.to_array(arrays[node.input[1]])
            bias = numpy_helper.to_array(arrays[node.input[2]])
            attributes = _conv_attributes(node)
            expected = {
                "weight": tuple(conv.weight.shape), "bias": (conv.out_channels,),
                "kernel_shape": tuple(conv.kernel_size), "dilations": tuple(conv.dilation),
                "strides": tuple(conv.stride), "pads": tuple(conv.padding) * 2,
            }
            found = {"weight": weight.shape, "bias": bias.shape, **attributes}
            if not attributes["kernel_shape"]:
                found["kernel_shape"] = weight.shape[2:]
            for key, value in expected.items():
                if tuple(found[key]) != value:
                    raise wrong(f"convolution {index} ({node.name or node.output[0]}): {key} {tuple(found[key])}, "
                                f"expected {value}")
            conv.weight.copy_(torch.from_numpy(weight.copy()))
            assert conv.bias is not None
            conv.bias.copy_(torch.from_numpy(bias.copy()))
    return module
