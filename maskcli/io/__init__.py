"""Image and mask files: decoding (:mod:`.decode`), encoding with atomic writes (:mod:`.encode`), and turning
command-line inputs into items with destinations (:mod:`.sources`). Conversions between file encodings and the
float32 conventions happen here and nowhere else."""

from maskcli.io.decode import DEFAULT_MAX_PIXELS, Image, decode_image, image_from_array, read_image

__all__ = ["DEFAULT_MAX_PIXELS", "Image", "decode_image", "image_from_array", "read_image"]
