"""Image and mask files: safe reading and atomic writing under a run's write gate (:mod:`.files`), decoding
(:mod:`.decode`), the image codec (:mod:`.encode`), the mask codec (:mod:`.masks`), inputs to items (:mod:`.sources`)
and outputs to folders or streams (:mod:`.sinks`). Conversions between file encodings and the float32 conventions
happen here and nowhere else.

Importing this package is cheap (the command line reads the default limit from it): no decoder loads with it.
"""

from __future__ import annotations

#: Default pixel limit: 200 megapixels (a 14 142 × 14 142 image, about 2.4 GB as float32 RGB).
DEFAULT_MAX_PIXELS = 200_000_000


__all__ = ["DEFAULT_MAX_PIXELS"]
