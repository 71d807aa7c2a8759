"""The few conversions between sample types, in one place: integer samples to the float convention and back."""

from __future__ import annotations

import numpy as np

__all__ = ["to_unit_float", "bands", "BAND_PIXELS"]

#: Pixel-by-pixel work on a large image goes in bands of rows of about this many pixels: a quarter megapixel keeps
#: the float temporaries of a band to a few MB, small beside any large image, and large enough that the loop
#: costs nothing measurable.
BAND_PIXELS = 1 << 18


def to_unit_float(samples: np.ndarray) -> np.ndarray:
    """uint8/uint16 samples to float32 in [0, 1], in one pass (not a cast and then a scale).

    >>> to_unit_float(np.array([[0, 65535]], np.uint16))
    array([[0., 1.]], dtype=float32)
    """
    return np.multiply(samples, np.float32(1.0 / np.iinfo(samples.dtype).max), dtype=np.float32)


def bands(height: int, width: int, pixels: int | None = None) -> list[slice]:
    """Row ranges covering ``height`` rows in bands of about ``pixels`` pixels (default :data:`BAND_PIXELS`).

    >>> bands(10, 4, pixels=12)
    [slice(0, 3, None), slice(3, 6, None), slice(6, 9, None), slice(9, 10, None)]
    """
    rows = max(1, (BAND_PIXELS if pixels is None else pixels) // max(width, 1))
    return [slice(top, min(height, top + rows)) for top in range(0, height, rows)]
