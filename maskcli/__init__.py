"""maskcli: make image segmentation masks and apply them.

The library under the ``maskcli`` command. Everything works on numpy arrays: images are float32 grey H×W or RGB
H×W×3 in [0, 1]; masks are float32 H×W in [0, 1], hard masks holding exactly 0 and 1.

>>> import maskcli
>>> from pathlib import Path
>>> coins = Path(maskcli.__file__).parents[1] / "samples" / "coins.png"  # the repository's sample images
>>> image = maskcli.read_image(coins)
>>> mask = maskcli.segment(image.pixels, "otsu")
>>> cutout = maskcli.apply(image.pixels, mask, "cutout")
>>> mask.shape, mask.dtype, cutout.shape, round(float(mask.mean()), 3)
((303, 384), dtype('float32'), (303, 384, 4), 0.392)

A batch, from folders to files, runs through the same runner as the command (see :func:`maskcli.batch.apply_batch`
and :mod:`maskcli.pipeline`).

Importing this package is cheap: heavy modules (OpenCV, scikit-image, torch) load when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from maskcli._version import __version__

if TYPE_CHECKING:
    import numpy as np

    from maskcli.io.decode import Image


def read_image(path: str, **options: Any) -> Image:
    """Read an image file into the image convention (see :func:`maskcli.io.decode.read_image`).

    Parameters
    ----------
    path : str or path
        The file (JPEG, PNG, TIFF, WebP, BMP).
    **options
        ``max_pixels`` (refuse larger images), ``gray`` (decode as grey).

    Returns
    -------
    Image
        float32 pixels in [0, 1], alpha apart, with the bit depth and metadata needed to write it back.
    """
    from maskcli.io.decode import read_image as _read

    return _read(path, **options)


def read_mask(path: str) -> np.ndarray:
    """Read a mask file into the mask convention (see :func:`maskcli.io.masks.read_mask`).

    Parameters
    ----------
    path : str or path
        A grey mask file (a file with alpha gives its alpha; RGB its grey level).

    Returns
    -------
    ndarray
        float32 H×W in [0, 1].
    """
    from maskcli.io.masks import read_mask as _read

    return _read(path)


def write_mask(path: str, mask: np.ndarray, *, bits: int = 8) -> None:
    """Write a mask as PNG, atomically (hard masks 1-bit, soft 8- or 16-bit).

    Parameters
    ----------
    path : str or path
        The PNG file to write (its folder is created; a reader never sees a partial file).
    mask : ndarray
        float32 H×W in [0, 1].
    bits : {8, 16}
        Bits per pixel of a soft mask.
    """
    from maskcli.io.files import write_atomic
    from maskcli.io.masks import encode_mask

    write_atomic(path, encode_mask(mask, bits=bits))


def segment(image: np.ndarray, method: str = "otsu", **options: Any) -> np.ndarray:
    """The mask of ``image`` made by the named method with its options.

    Parameters
    ----------
    image : ndarray
        float32 grey H×W or RGB H×W×3 in [0, 1].
    method : str
        A registered method (``maskcli methods`` lists them).
    **options
        The method's options (text or typed values).

    Returns
    -------
    ndarray
        The mask: float32 H×W in [0, 1].

    Refinement settings (``fill_holes``, ``min_size``, ``feather`` ...) are not method options: run
    :func:`maskcli.refine.refinement` on the result.
    """
    from maskcli.methods import methods

    return methods.create(method, options)(image)


def apply(image: np.ndarray, mask: np.ndarray, mode: str = "cutout", **options: Any) -> np.ndarray:
    """Composite ``image`` with ``mask`` in the named mode (``cutout``, ``color``, ``blur`` ...).

    Parameters
    ----------
    image : ndarray
        float32 grey H×W or RGB H×W×3 in [0, 1].
    mask : ndarray
        float32 H×W in [0, 1], the image's size.
    mode : str
        A registered compositing mode (``maskcli modes`` lists them).
    **options
        The mode's options.

    Returns
    -------
    ndarray
        The composite, float32 in [0, 1] (RGBA H×W×4 for modes with transparency).
    """
    from maskcli.composite import modes

    return modes.create(mode, options)(image, mask)


def fine_tune(images: str, masks: str, output: str, **settings: Any) -> Any:
    """Fine-tune a U²-Net on image/mask folders and write the best model to ``output`` (see
    :func:`maskcli.train.fine_tune`; ``settings`` are :class:`maskcli.train.TrainSettings` fields)."""
    from maskcli.train import TrainSettings
    from maskcli.train import fine_tune as _fine_tune

    return _fine_tune(images, masks, output, TrainSettings(**settings))


__all__ = ["__version__", "apply", "fine_tune", "read_image", "read_mask", "segment", "write_mask"]
