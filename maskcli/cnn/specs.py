"""The model zoo as data, like torchvision's weights enums: one frozen :class:`ModelSpec` per model.

A spec says where the weights come from (URL, file name, checksum, size, licence), how an image must be prepared
for them (input size, normalisation) and what comes out (a saliency map, or scores over ``categories``). The
pre-processing travels with the weights, so nothing else needs to know which model it is running. No torch here:
``maskcli models`` reads these without loading a framework.

>>> spec = get("lraspp-mobilenet-v3")
>>> spec.kind, spec.input_size, spec.categories[13]
('semantic', 520, 'horse')
>>> get("u2nep")
Traceback (most recent call last):
...
maskcli.errors.OptionError: model: unknown model 'u2nep'; did you mean 'u2netp'? Valid: ...
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Literal, Optional

from maskcli.errors import OptionError, did_you_mean

if TYPE_CHECKING:
    from maskcli.cnn.preprocess import Transforms

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: PASCAL VOC's 20 classes and the background, in the order of the torchvision models' output channels
#: (torchvision.models._meta._VOC_CATEGORIES).
VOC_CATEGORIES: tuple[str, ...] = (
    "__background__", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)

_REMBG = "https://github.com/danielgatis/rembg/releases/download/v0.0.0/"
_TORCHVISION = "https://download.pytorch.org/models/"


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Everything known about one pretrained model.

    Attributes
    ----------
    name : str
        The name used by ``--model``.
    kind : {"salient", "semantic"}
        ``salient``: one class-agnostic foreground map (the main subject). ``semantic``: scores over
        ``categories``, of which ``--classes`` picks the foreground.
    builder : str
        The architecture: a function of :mod:`maskcli.cnn.models.u2net` or of ``torchvision.models.segmentation``;
        ``onnx-graph``: none, the ONNX file runs as it is under onnxruntime
        (:mod:`maskcli.cnn.models.onnx_graph`).
    weights_format : {"onnx", "state_dict"}
        How the weights file stores its tensors.
    url, filename : str
        Where the weights are published, and the file's name in the cache.
    sha256 : str or None
        The file's SHA-256, or its first hex digits where only those are published (torchvision puts the first
        8 in the file name and checks that prefix); None where unknown.
    md5 : str or None
        The MD5 the publisher lists (rembg checks its downloads by MD5), used when no SHA-256 is known.
    size_bytes : int or None
        The exact file size where known. ``size_mb`` is the published approximate size.
    input_size : int
        Salient models: the square side the image is resized to. Semantic models: the shorter side after
        resizing (torchvision's ``resize_size``), any aspect ratio.
    gflops, params_millions : float or None
        Cost of one image at ``input_size``: torchvision's published figures; for U²-Net counted here
        (multiply-accumulates of every convolution at 320×320, as torchvision counts them).
    scale_by_max : bool
        Divide the image by its own maximum before normalising (the U²-Net reference pre-processing) instead
        of using it as it is in [0, 1].
    interpolation : {"lanczos", "area"}
        How the image is resized to the input: ``lanczos`` as the U²-Net reference (rembg resizes with PIL's
        LANCZOS; on weizmann_horses cv2's Lanczos scores mean IoU 0.890 against 0.885 for INTER_AREA and 0.876
        for bilinear), ``area`` for torchvision's antialiased bilinear resize.
    logits : bool
        Salient models: the first output is a logit map (a sigmoid makes it a probability before the min-max
        stretch), as BiRefNet's ONNX exports are; U²-Net and ISNet end in a sigmoid already.
    bundled : bool
        The weights file ships inside the package (``maskcli/cnn/weights_data/``), so the model works with no
        network and no cache; the resolver checks it against ``sha256`` like a download.
    measured : bool
        Whether maskcli's own benchmarks have scored this model's published weights (``accuracy`` says where);
        otherwise ``accuracy`` quotes the publisher.
    """

    name: str
    kind: Literal["salient", "semantic"]
    builder: str
    weights_format: Literal["onnx", "state_dict"]
    url: str
    filename: str
    sha256: Optional[str]
    md5: Optional[str]
    size_bytes: Optional[int]
    size_mb: float
    licence: str
    input_size: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    scale_by_max: bool = False
    interpolation: Literal["lanczos", "area"] = "area"
    categories: tuple[str, ...] = ()
    accuracy: str = ""
    gflops: Optional[float] = None
    params_millions: Optional[float] = None
    summary: str = ""
    source: str = ""
    logits: bool = False
    bundled: bool = False
    measured: bool = False

    @property
    def foreground_classes(self) -> tuple[str, ...]:
        """Every category but the background: the default of ``--classes``."""
        return tuple(c for c in self.categories if c != "__background__")

    @property
    def torchvision_file(self) -> bool:
        """True when torchvision's own hub cache may already hold this file."""
        return self.url.startswith(_TORCHVISION)

    def transforms(self, size: Optional[int] = None) -> Transforms:
        """How an image is prepared for this model (resize, scaling, normalisation), as torchvision's weights
        carry their transforms; ``size`` replaces :attr:`input_size` (fine-tuning at another size).

        >>> get("u2netp").transforms().input_shape(30, 40), get("fcn-resnet50").transforms(100).input_shape(30, 40)
        ((320, 320), (100, 133))
        """
        from maskcli.cnn.preprocess import Transforms

        return Transforms(size or self.input_size, self.kind == "salient", self.interpolation, self.scale_by_max,
                          self.mean, self.std)

    def checksum(self) -> str:
        """The checksum a download is held to, as ``algorithm:hex``, or ``unknown``.

        >>> get("u2netp").checksum()[:15]
        'sha256:309c8469'
        """
        if self.sha256:
            kind = "sha256" if len(self.sha256) == 64 else "sha256-prefix"
            return f"{kind}:{self.sha256}"
        return f"md5:{self.md5}" if self.md5 else "unknown"


def _u2(name: str, filename: str, builder: str, **fields: object) -> ModelSpec:
    return ModelSpec(name=name, kind="salient", builder=builder, weights_format="onnx", url=_REMBG + filename,
                     filename=filename, input_size=320, scale_by_max=True, interpolation="lanczos",
                     licence="Apache-2.0",
                     source="Qin et al., U²-Net, Pattern Recognition 106 (2020); ONNX export published by rembg",
                     **fields)  # type: ignore[arg-type]  # fields holds the remaining spec fields, each of its own type


def _tv(name: str, filename: str, builder: str, **fields: object) -> ModelSpec:
    # torchvision names each file after the first 8 hex digits of its SHA-256.
    prefix = filename.rsplit("-", 1)[1].split(".")[0]
    return ModelSpec(name=name, kind="semantic", builder=builder, weights_format="state_dict",
                     url=_TORCHVISION + filename, filename=filename, sha256=prefix, md5=None, size_bytes=None,
                     licence="BSD-3-Clause (torchvision); trained on COCO (subset of the 20 VOC classes)",
                     input_size=520, categories=VOC_CATEGORIES,
                     # The ignore below: fields holds the remaining spec fields, each of its own type.
                     source=f"torchvision.models.segmentation.{builder}, COCO_WITH_VOC_LABELS_V1", **fields)  # type: ignore[arg-type]


def _graph(name: str, filename: str, **fields: object) -> ModelSpec:
    # An ONNX export run as it is by onnxruntime: no torch architecture is needed, so any
    # export works. Pre-processing as the publisher of the export (rembg) runs it: Lanczos to a 1024² square,
    # divided by the image's maximum, then the spec's mean and std.
    return ModelSpec(name=name, kind="salient", builder="onnx-graph", weights_format="onnx", url=_REMBG + filename,
                     filename=filename, sha256=None, size_bytes=None, input_size=1024, scale_by_max=True,
                     # The ignore below: fields holds the remaining spec fields, each of its own type.
                     interpolation="lanczos", **fields)  # type: ignore[arg-type]


SPECS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        _u2("u2netp", "u2netp.onnx", "u2netp",
            sha256="309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8",
            md5="8e83ca70e441ab06c318d82300c84806", size_bytes=4_574_861, size_mb=4.6,
            accuracy="mean IoU 0.89 on weizmann_horses (measured, benchmarks/results/cnn.md); "
                     "DUTS-TE max F 0.848 (paper)",
            gflops=19.76, params_millions=1.13, bundled=True, measured=True,
            summary="U²-Net-P: small class-agnostic salient-object model (the main subject); the default, "
                    "shipped inside the package."),
        _u2("u2net", "u2net.onnx", "u2net", sha256=None, md5="60024c5c889badc19c04ad937298a77b",
            size_bytes=175_997_641, size_mb=176.0, accuracy="DUTS-TE max F 0.873 (paper)",
            gflops=58.6, params_millions=43.98,
            summary="U²-Net: the full salient-object model, slower and finer than u2netp."),
        _u2("u2net-human", "u2net_human_seg.onnx", "u2net", sha256=None,
            md5="c09ddc2e0104f800e3e1bb4652583d1f", size_bytes=None, size_mb=176.0,
            accuracy="no published benchmark", gflops=58.6, params_millions=43.98,
            summary="U²-Net fine-tuned for human segmentation (people only)."),
        _graph("isnet-general-use", "isnet-general-use.onnx", md5="fc16ebd8b0c10d971d3513d564d01e29",
               size_mb=179.0, mean=(0.5, 0.5, 0.5), std=(1.0, 1.0, 1.0),
               licence="Apache-2.0 (code and weights of github.com/xuebinqin/DIS); trained on DIS5K, whose "
                       "terms of use allow research and non-commercial use of the data",
               accuracy="not measured here (weights not downloadable in our test environment); DIS5K results "
                        "in Qin et al., ECCV 2022",
               source="Qin et al., Highly Accurate Dichotomous Image Segmentation (IS-Net), ECCV 2022; "
                      "isnet-general-use weights, ONNX export published by rembg (md5 as rembg checks it)",
               summary="ISNet general use: dichotomous segmentation, finer edges than U²-Net; 1024² input."),
        _graph("birefnet-general", "BiRefNet-general-epoch_244.onnx", md5="7a35a0141cbbc80de11d9c9a28f52697",
               size_mb=973.0, logits=True, licence="MIT (github.com/ZhengPeng7/BiRefNet)",
               accuracy="not measured here (weights not downloadable in our test environment); DIS5K, HRSOD "
                        "and COD results in Zheng et al., CAAI AIR 2024",
               source="Zheng et al., Bilateral Reference for High-Resolution Dichotomous Image Segmentation, "
                      "CAAI AIR 2024; general-use weights (epoch 244), ONNX export published by rembg",
               summary="BiRefNet general (Swin-L): the strongest open salient/dichotomous model here; slow on "
                       "CPU, 1024² input."),
        _graph("birefnet-general-lite", "BiRefNet-general-bb_swin_v1_tiny-epoch_232.onnx",
               md5="4fab47adc4ff364be1713e97b7e66334", size_mb=224.0, logits=True,
               licence="MIT (github.com/ZhengPeng7/BiRefNet)",
               accuracy="not measured here (weights not downloadable in our test environment)",
               source="Zheng et al., BiRefNet, CAAI AIR 2024; general-use weights with the Swin-T backbone "
                      "(epoch 232), ONNX export published by rembg",
               summary="BiRefNet general lite (Swin-T): BiRefNet at a quarter of the size; 1024² input."),
        _tv("lraspp-mobilenet-v3", "lraspp_mobilenet_v3_large-d234d4ea.pth", "lraspp_mobilenet_v3_large",
            size_mb=12.49, gflops=2.086, params_millions=3.22,
            accuracy="COCO-val2017-VOC-labels mIoU 57.9, pixel accuracy 91.2 (torchvision)",
            summary="LR-ASPP MobileNetV3-Large: the fastest semantic model, 21 VOC classes."),
        _tv("deeplabv3-mobilenet-v3", "deeplabv3_mobilenet_v3_large-fc3c493d.pth", "deeplabv3_mobilenet_v3_large",
            size_mb=42.301, gflops=10.452, params_millions=11.03,
            accuracy="COCO-val2017-VOC-labels mIoU 60.3, pixel accuracy 91.2 (torchvision)",
            summary="DeepLabV3 MobileNetV3-Large: light semantic model, 21 VOC classes."),
        _tv("deeplabv3-resnet50", "deeplabv3_resnet50_coco-cd0a2569.pth", "deeplabv3_resnet50",
            size_mb=160.515, gflops=178.722, params_millions=42.0,
            accuracy="COCO-val2017-VOC-labels mIoU 66.4, pixel accuracy 92.4 (torchvision)",
            summary="DeepLabV3 ResNet-50: accurate semantic model, 21 VOC classes."),
        _tv("deeplabv3-resnet101", "deeplabv3_resnet101_coco-586e9e4e.pth", "deeplabv3_resnet101",
            size_mb=233.217, gflops=258.743, params_millions=61.0,
            accuracy="COCO-val2017-VOC-labels mIoU 67.4, pixel accuracy 92.4 (torchvision)",
            summary="DeepLabV3 ResNet-101: the most accurate semantic model here, 21 VOC classes."),
        _tv("fcn-resnet50", "fcn_resnet50_coco-1167a1af.pth", "fcn_resnet50",
            size_mb=135.009, gflops=152.717, params_millions=35.32,
            accuracy="COCO-val2017-VOC-labels mIoU 60.5, pixel accuracy 91.4 (torchvision)",
            summary="FCN ResNet-50: classic fully convolutional semantic model, 21 VOC classes."),
        _tv("fcn-resnet101", "fcn_resnet101_coco-7ecb50ca.pth", "fcn_resnet101",
            size_mb=207.711, gflops=232.738, params_millions=54.31,
            accuracy="COCO-val2017-VOC-labels mIoU 63.7, pixel accuracy 91.9 (torchvision)",
            summary="FCN ResNet-101: fully convolutional semantic model, 21 VOC classes."),
    )
}

DEFAULT_MODEL = "u2netp"


def names() -> list[str]:
    """The model names, default first.

    >>> names()[:2]
    ['u2netp', 'u2net']
    """
    return list(SPECS)


def get(name: str) -> ModelSpec:
    """The spec of ``name``; an unknown name is an :class:`OptionError` that suggests the closest one."""
    try:
        return SPECS[name]
    except KeyError:
        hint = did_you_mean(name, SPECS)
        raise OptionError("model", f"unknown model {name!r}{hint} Valid: {', '.join(SPECS)}") from None


def parse_classes(spec: ModelSpec, classes: Optional[str]) -> tuple[int, ...]:
    """The output channels summed into the foreground for ``--classes`` (comma-separated names).

    None means every category but the background. Names are checked against the spec's categories.

    >>> spec = get("deeplabv3-resnet50")
    >>> parse_classes(spec, "person,horse")
    (15, 13)
    >>> parse_classes(spec, "hrose")
    Traceback (most recent call last):
    ...
    maskcli.errors.OptionError: classes: unknown class 'hrose' for deeplabv3-resnet50; did you mean 'horse'? ...
    """
    if spec.kind != "semantic":
        if classes is None:
            return ()
        semantic = ", ".join(n for n, s in SPECS.items() if s.kind == "semantic")
        raise OptionError("classes", f"{spec.name} is a salient-object model with no classes; `classes` works "
                                     f"with semantic models ({semantic})")
    if classes is None:
        return tuple(spec.categories.index(c) for c in spec.foreground_classes)
    chosen: list[int] = []
    for raw in classes.split(","):
        label = raw.strip()
        if not label:
            continue
        if label not in spec.categories:
            hint = did_you_mean(label, spec.categories)
            raise OptionError("classes", f"unknown class {label!r} for {spec.name}{hint} "
                                         f"Valid: {', '.join(spec.foreground_classes)}")
        index = spec.categories.index(label)
        if index not in chosen:
            chosen.append(index)
    if not chosen:
        raise OptionError("classes", f"no class named; valid: {', '.join(spec.foreground_classes)}")
    return tuple(chosen)
