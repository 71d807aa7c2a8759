"""The few conversions between sample types, in one place: integer samples to the float convention and back."""

from __future__ import annotations

import numpy as np

__all__ = ["to_unit_float"]


def to_unit_float(samples: np.ndarray) -> np.ndarray:
    """uint8/uint16 samples to float32 in [0, 1], in one pass (not a cast and then a scale).

    >>> to_unit_float(np.array([[0, 65535]], np.uint16))
    array([[0., 1.]], dtype=float32)
    """
    return np.multiply(samples, np.float32(1.0 / np.iinfo(samples.dtype).max), dtype=np.float32)
