"""How an image becomes a model's input: one resize and one normalisation, carried by the model's spec.

As torchvision's weights carry their transforms, a :class:`~maskcli.cnn.specs.ModelSpec` carries a
:class:`Transforms` (``spec.transforms()``): the input shape (U²-Net: a 320×320 square; torchvision models: the
shorter side at 520, aspect kept), the resize (OpenCV's Lanczos for U²-Net, as its reference pre-processing;
``cv2.INTER_AREA``, an antialiased shrink like torchvision's, for the torchvision models), the U²-Net scaling by
the image's maximum, then the spec's mean and standard deviation. Inference and fine-tuning both resize through it,
so a model is trained on the inputs it later sees.

On a GPU the same transforms run on the device (:meth:`Transforms.to`): OpenCV's resize written as two matrix
products (:func:`resample_matrix`), so the GPU sees the CPU's inputs to float rounding and the host only decodes.

>>> import numpy as np
>>> from maskcli.cnn import specs
>>> transforms = specs.get("lraspp-mobilenet-v3").transforms()
>>> transforms.input_shape(1000, 500), transforms(np.zeros((1000, 500, 3), np.float32)).shape
((1040, 520), (3, 1040, 520))
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from maskcli.imageops import to_rgb, to_unit_float

if TYPE_CHECKING:
    import torch


def unit_floats(image: np.ndarray) -> np.ndarray:
    """Pixels as float32 in [0, 1]: integer samples scaled as decoding does (:func:`to_unit_float`), floats kept.

    >>> unit_floats(np.array([[0, 255]], np.uint8)).tolist()
    [[0.0, 1.0]]
    """
    return to_unit_float(image) if image.dtype.kind == "u" else np.asarray(image, np.float32)


@dataclasses.dataclass(frozen=True)
class Transforms:
    """The pre-processing of one model's input (built by :meth:`maskcli.cnn.specs.ModelSpec.transforms`).

    Attributes
    ----------
    size : int
        The square side (``square``), or the shorter side after resizing.
    square : bool
        Resize to ``size``×``size`` (salient models), or keep the aspect ratio (semantic models).
    interpolation : {"lanczos", "area"}
        ``cv2.INTER_LANCZOS4`` or ``cv2.INTER_AREA``.
    scale_by_max : bool
        Divide the resized image by its own maximum before normalising (the U²-Net reference).
    mean, std : tuple of float
        Per-channel normalisation, after the resize.
    """

    size: int
    square: bool
    interpolation: str
    scale_by_max: bool
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def input_shape(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) an image of that size is resized to.

        >>> Transforms(320, True, "lanczos", True, (0, 0, 0), (1, 1, 1)).input_shape(30, 40)
        (320, 320)
        """
        if self.square:
            return self.size, self.size
        scale = self.size / min(height, width)  # torchvision's resize_size: the shorter side
        return max(1, round(height * scale)), max(1, round(width * scale))

    def resize(self, image: np.ndarray, clip: bool = False) -> np.ndarray:
        """The image (float32 H×W or H×W×3 in [0, 1], or its uint8/uint16 samples) resized to the input shape as
        float32 h×w×3, scaled by its maximum where the spec says, not yet normalised. ``clip`` keeps the resize's
        overshoot (Lanczos rings) inside [0, 1] before that scaling, as fine-tuning's augmentations need."""
        rgb = np.ascontiguousarray(to_rgb(unit_floats(image)))
        height, width = self.input_shape(*rgb.shape[:2])
        flag = cv2.INTER_LANCZOS4 if self.interpolation == "lanczos" else cv2.INTER_AREA
        resized: np.ndarray = cv2.resize(rgb, (width, height), interpolation=flag)
        if clip:
            resized = np.clip(resized, 0.0, 1.0)
        if self.scale_by_max:
            resized = resized / max(float(resized.max()), 1e-6)
        return resized

    def normalise(self, resized: np.ndarray) -> np.ndarray:
        """A resized h×w×3 image as the model's C×h×w float32 input: less the mean, over the deviation."""
        normalised = (resized - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(normalised.transpose(2, 0, 1), dtype=np.float32)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """The model's C×h×w float32 input for one image, on the host."""
        return self.normalise(self.resize(image))

    def to(self, device: Any) -> DeviceTransforms:
        """These transforms as tensor operations on ``device`` (a torch device or its name)."""
        return DeviceTransforms(self, device)


@functools.lru_cache(maxsize=64)
def resample_matrix(source: int, target: int, interpolation: str) -> np.ndarray:
    """The target×source matrix that resizes one axis exactly as OpenCV does on the host: ``lanczos`` as
    ``cv2.INTER_LANCZOS4`` (8 taps, edges replicated), ``area`` as ``cv2.INTER_AREA`` (pixel-area averages when
    shrinking, OpenCV's own linear variant when enlarging). Resizing is then two matrix products, which a GPU does
    in microseconds, with the host's result to float rounding (``tests/cnn/test_speed.py``).

    >>> resample_matrix(4, 2, "area").tolist()
    [[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5]]
    """
    inverse = target / source  # OpenCV's own arithmetic, so that ties round the same way
    scale = 1.0 / inverse
    matrix = np.zeros((target, source), np.float64)
    for row in range(target):
        if interpolation == "lanczos":
            position = (row + 0.5) * scale - 0.5
            start = math.floor(position)
            taps = np.arange(start - 3, start + 5)
            distance = position - taps
            weights = np.sinc(distance) * np.sinc(distance / 4)
            np.add.at(matrix[row], np.clip(taps, 0, source - 1), weights / weights.sum())
        elif scale >= 1:
            low, high = row * scale, min((row + 1) * scale, source)
            taps = np.arange(math.floor(low), math.ceil(high))
            matrix[row, taps] = (np.minimum(taps + 1, high) - np.maximum(taps, low)) / (high - low)
        else:
            start = math.floor(row * scale)
            fraction = float(np.float32((row + 1) - (start + 1) * inverse))
            fraction = 0.0 if fraction <= 0 else fraction - math.floor(fraction)
            np.add.at(matrix[row], np.clip([start, start + 1], 0, source - 1), [1 - fraction, fraction])
    return matrix.astype(np.float32)


class DeviceTransforms:
    """:class:`Transforms` computed where a tensor lives, with their constant tensors (mean, deviation, resize
    matrices) kept on that device: a fresh copy from pageable host memory per image would make the host wait for
    the GPU's queue every time. The same code runs on CPU tensors in tests.

    >>> import torch
    >>> from maskcli.cnn import specs
    >>> prepare = specs.get("u2netp").transforms().to("cpu")
    >>> tuple(prepare(torch.rand(40, 30, 3)).shape)
    (3, 320, 320)
    """

    #: Resize matrices kept per device: a folder of many sizes stays bounded.
    MAX_MATRICES = 256

    def __init__(self, transforms: Transforms, device: Any) -> None:
        import torch

        self.transforms = transforms
        self.device = torch.device(device)
        self.mean = torch.tensor(transforms.mean, device=self.device).view(3, 1, 1)
        self.std = torch.tensor(transforms.std, device=self.device).view(3, 1, 1)
        self._matrices: dict[tuple[int, int], torch.Tensor] = {}

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """One image (H×W×3 or H×W: a float tensor in [0, 1], or uint8 samples, on this device) as the model's
        normalised 3×h×w input."""
        chw = image[None].expand(3, -1, -1) if image.ndim == 2 else image[..., :3].permute(2, 0, 1)
        height, width = self.transforms.input_shape(chw.shape[1], chw.shape[2])
        rows, columns = self._matrix(chw.shape[1], height), self._matrix(chw.shape[2], width)
        # 8-bit samples scale into [0, 1] as the host's to_unit_float does (a float32 multiply by 1/255).
        scale = 1.0 if image.is_floating_point() else 1.0 / 255.0
        samples = chw.float() if scale == 1.0 else chw.float() * scale
        resized = rows @ samples @ columns.T
        if self.transforms.scale_by_max:
            resized = resized / resized.max().clamp(min=1e-6)
        return (resized - self.mean) / self.std

    def _matrix(self, source: int, target: int) -> torch.Tensor:
        import torch

        matrix = self._matrices.get((source, target))
        if matrix is None:
            if len(self._matrices) > self.MAX_MATRICES:
                self._matrices.clear()
            matrix = torch.from_numpy(resample_matrix(source, target, self.transforms.interpolation)).to(self.device)
            self._matrices[source, target] = matrix
        return matrix


__all__ = ["DeviceTransforms", "Transforms", "resample_matrix", "unit_floats"]
