"""Files and bytes to images that follow the one image convention.

An :class:`Image` holds float32 pixels in [0, 1] (grey H×W or RGB H×W×3), its alpha channel apart, upright (EXIF
orientation applied, so a mask always matches the image as it is displayed), and beside them what a writer needs to
keep: the source's bit depth, format, ICC profile and EXIF (orientation reset).

Pixels are decoded by OpenCV where it is exact and fastest (8- and 16-bit grey, RGB and RGBA in the common formats)
and by Pillow otherwise (palette, CMYK, 1-bit, LA, float TIFF ...). Pillow always reads the header first: it
identifies the format, guards the pixel limit before any pixel is decoded, and carries the metadata.

8-bit and 16-bit grey PNGs go through Pillow too (same samples): libpng inside OpenCV prints its errors ("libpng error:
Not enough image data") straight to the terminal, with no file name, and Pillow decodes these PNGs within a few per cent
of OpenCV's time (18.7 against 18.0 ms for a 1200×900 photo, equal for masks). 16-bit colour PNGs need OpenCV (Pillow
reduces them to 8 bits): their compressed data is checked for completeness first, so libpng never meets a short stream.
"""

from __future__ import annotations

import io
import os
import warnings
import zlib
from typing import Any, BinaryIO

import cv2
import numpy as np
from PIL import Image as PILImage
from PIL import ImageOps, UnidentifiedImageError

from maskcli.errors import InputError, PixelLimit
from maskcli.imageops import to_unit_float
from maskcli.io import DEFAULT_MAX_PIXELS  # defined there so that reading it costs no decoder
from maskcli.io.files import read_regular_file

#: Formats maskcli reads, as Pillow names them.
READABLE_FORMATS = ("JPEG", "PNG", "TIFF", "WEBP", "BMP", "GIF", "AVIF", "HEIF")  # JPEG also opens MPO
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".tif", ".tiff", ".webp", ".bmp", ".gif", ".heic",
                            ".heif", ".hif", ".avif"})
#: ISO base media brands of HEIF stills (phones' HEIC photos): read through pillow-heif's Pillow plugin.
_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")

_ORIENTATION_TAG = 0x0112
_FAST_FORMATS = {"JPEG", "PNG", "WEBP", "BMP", "TIFF", "MPO"}


class Image:
    """A decoded image: pixels in the one image convention plus what is needed to write it back.

    Attributes
    ----------
    pixels : ndarray
        float32, H×W (grey) or H×W×3 (RGB), values in [0, 1], upright. Made from ``samples`` on first use when the
        image was decoded from integer samples, so a caller that works on those never pays for (or holds) floats.
    samples : ndarray or None
        The source's integer samples (uint8 or uint16, grey H×W or RGB H×W×3, upright) when it had them: methods
        with an integer path (histogram thresholds, Canny) read them directly. None for float sources.
    alpha : ndarray or None
        float32 H×W in [0, 1] when the source had transparency.
    bit_depth : int
        8, 16 or 32: the precision of the source's samples, kept when writing (32: float samples, as in a
        float32 TIFF, kept as float where the output format holds it).
    format : str or None
        The source's format as Pillow names it (``"JPEG"``, ``"PNG"`` ...), None for arrays.
    icc_profile, exif : bytes or None
        Colour profile and EXIF block of the source; the EXIF orientation is reset to 1 (pixels are upright).

    >>> image = Image(samples=np.array([[0, 255]], np.uint8))
    >>> image.pixels, image.bit_depth
    (array([[0., 1.]], dtype=float32), 8)
    """

    def __init__(self, pixels: np.ndarray | None = None, alpha: np.ndarray | None = None, bit_depth: int | None = None,
                 format: str | None = None, icc_profile: bytes | None = None, exif: bytes | None = None, *,
                 samples: np.ndarray | None = None) -> None:
        if pixels is None and samples is None:
            raise ValueError("an Image needs pixels or samples")
        self._pixels = pixels
        self.samples = samples
        self._shape: tuple[int, ...] = ()
        self.alpha = alpha
        if bit_depth is None:
            bit_depth = 16 if samples is not None and samples.dtype == np.uint16 else 8
        self.bit_depth = bit_depth
        self.format = format
        self.icc_profile = icc_profile
        self.exif = exif
        #: What the reader noticed and the user should hear about (more frames than the one used).
        self.warnings: list[str] = []

    @property
    def pixels(self) -> np.ndarray:
        if self._pixels is None:
            if self.samples is None:
                raise ValueError("the pixels of this image were released")
            self._pixels = to_unit_float(self.samples)
        return self._pixels

    @pixels.setter
    def pixels(self, value: np.ndarray) -> None:
        self._pixels = value
        self.samples = None  # no longer the same picture

    def release(self) -> None:
        """Let the pixel data go, keeping the size and what a writer needs (format, depth, profile, EXIF): for a
        caller done with the pixels whose result is still to be written."""
        self._shape = self.shape
        self._pixels = self.samples = None

    @property
    def shape(self) -> tuple[int, ...]:
        data = self.samples if self._pixels is None else self._pixels
        return self._shape if data is None else tuple(data.shape)

    @property
    def height(self) -> int:
        return int(self.shape[0])

    @property
    def width(self) -> int:
        return int(self.shape[1])

    @property
    def is_gray(self) -> bool:
        return len(self.shape) == 2


def read_image(path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS, gray: bool = False) -> Image:
    """Read an image file (``gray``: as grey levels, Rec. 601 luma, for callers that look at nothing else).

    Raises :class:`~maskcli.errors.InputError` with a one-line reason for anything that is not a readable image:
    a folder, an empty or truncated file, an unknown format, a declared size over ``max_pixels``.

    >>> import maskcli
    >>> from pathlib import Path
    >>> image = read_image(Path(maskcli.__file__).parents[1] / "samples" / "coins.png")
    >>> image.pixels.dtype, image.is_gray, image.bit_depth
    (dtype('float32'), True, 8)
    """
    data = read_regular_file(path)
    return decode_image(data, max_pixels=max_pixels, gray=gray)


def max_encoded_bytes(max_pixels: int) -> int:
    """The most bytes an encoded image within ``max_pixels`` can need: 16 bytes a pixel (float32 RGBA, stored
    uncompressed, the largest sample layout maskcli reads) plus 16 MiB of headers and metadata.

    >>> max_encoded_bytes(1_000_000)
    32777216
    """
    return max_pixels * 16 + (16 << 20)


def read_bounded(stream: BinaryIO, max_pixels: int = DEFAULT_MAX_PIXELS) -> bytes:
    """All of a stream (stdin) that can hold one image within ``max_pixels``; more is refused, not read on."""
    limit = max_encoded_bytes(max_pixels)
    read = stream.read
    data = read(limit + 1)
    if len(data) > limit:
        raise InputError(
            f"more than {limit:,} bytes, more than an image within the pixel limit of {max_pixels:,} can need"
        )
    return bytes(data)


def decode_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, gray: bool = False) -> Image:
    """Decode an encoded image held in memory (see :func:`read_image`)."""
    if not data:
        raise InputError("empty file")
    header = _open_header(data, max_pixels)
    try:
        exif = _read_exif(header)
    except Exception as error:
        raise InputError(f"cannot decode image ({_reason(error)})") from None
    orientation = int(exif.get(_ORIENTATION_TAG, 1) or 1)
    if header.format == "TIFF":
        _keep_descriptive_tags(exif)
    pixels = _decode_fast(data, header, gray=gray) if header.format in _FAST_FORMATS else None
    if pixels is not None:
        pixels = _orient(pixels, orientation)
        image = _from_array(pixels, bgr=True)
    else:
        image = _decode_with_pillow(header)
    if gray and header.format == "PNG" and header.mode in ("RGB", "RGBA") and image.samples is not None \
            and image.samples.dtype == np.uint8:  # the PNGs OpenCV decoded before: its grey levels, no alpha
        image.samples, image.alpha = _libpng_luma(image.samples), None
    if gray and not image.is_gray:
        if image.samples is not None:
            image.samples = cv2.cvtColor(image.samples, cv2.COLOR_RGB2GRAY)
        else:
            image.pixels = cv2.cvtColor(image.pixels, cv2.COLOR_RGB2GRAY)
    image.format = header.format
    frames = _frame_count(header)
    if frames > 1:
        image.warnings.append(f"{header.format} with {frames} frames; only the first is used")
    image.icc_profile = header.info.get("icc_profile") or None
    if len(exif):
        if orientation != 1:
            exif[_ORIENTATION_TAG] = 1
        image.exif = exif.tobytes()
    return image


def _frame_count(header: PILImage.Image) -> int:
    """Frames (GIF), pages (TIFF) or pictures (WebP) in the file; an MPO's second picture is a phone's preview,
    not a frame."""
    if header.format == "MPO":
        return 1
    try:
        return int(getattr(header, "n_frames", 1))
    except Exception:  # counting walks the file: a damaged later frame is not this image's concern
        return 1


def _read_exif(header: PILImage.Image) -> PILImage.Exif:
    """The EXIF block, read from the header alone.

    For a PNG, ``getexif()`` would read on through all the pixel data looking for a late eXIf chunk (about 5 ms per
    megapixel, as much as decoding it); the PNG specification puts eXIf before the pixel data, where Pillow has
    already read it into ``info``.
    """
    if header.format != "PNG" or "XML:com.adobe.xmp" in header.info:
        return header.getexif()  # Pillow also takes the orientation from an XMP packet, as viewers do
    exif = PILImage.Exif()
    raw = header.info.get("exif")
    if raw:
        exif.load(raw)
    return exif


#: TIFF tags that describe a picture rather than lay out its pixels (Pillow's EXIF of a TIFF is its whole first
#: directory): size, strips, sample format and predictor must come from the pixels written, not from the source,
#: or a cropped or re-encoded TIFF is unreadable.
_DESCRIPTIVE_TIFF_TAGS = frozenset({
    0x010E, 0x010F, 0x0110, _ORIENTATION_TAG, 0x011A, 0x011B, 0x0128, 0x0131, 0x0132, 0x013B, 0x8298,
    0x8769, 0x8825,  # the EXIF and GPS directories
})


def _keep_descriptive_tags(exif: PILImage.Exif) -> None:
    for tag in [tag for tag in exif if tag not in _DESCRIPTIVE_TIFF_TAGS]:
        del exif[tag]


def _open_past_pillows_limit(data: bytes) -> Any:
    """The header of an image Pillow's own bomb guard refused, opened by its format's plugin as ``Image.open``
    would (the caller checks the size against maskcli's limit)."""
    PILImage.init()
    for format in READABLE_FORMATS:
        if format not in PILImage.OPEN:  # HEIF before pillow-heif added it
            continue
        factory, accept = PILImage.OPEN[format]
        if accept is None or accept(data[:16]):
            return factory(io.BytesIO(data), "")
    raise UnidentifiedImageError("no plugin accepts this image")


def _heif_plugin(data: bytes) -> None:
    """Make Pillow read HEIF when ``data`` is a HEIF still: pillow-heif adds its plugin to Pillow's formats (AVIF
    is Pillow's own)."""
    if data[4:8] != b"ftyp" or data[8:12] not in _HEIF_BRANDS or "HEIF" in PILImage.OPEN:
        return
    try:
        import pillow_heif
    except ImportError:
        raise InputError("HEIC/HEIF photos need pillow-heif: pip install 'maskcli[heif]'") from None
    pillow_heif.register_heif_opener()


def _open_header(data: bytes, max_pixels: int) -> PILImage.Image:
    _heif_plugin(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            PILImage.init()
            # HEIF is among Pillow's formats only once pillow-heif added it (a HEIF file's first read).
            formats = [format for format in READABLE_FORMATS if format in PILImage.OPEN]
            header = PILImage.open(io.BytesIO(data), formats=formats)
    except PILImage.DecompressionBombError:
        # maskcli's own limit (``max_pixels``, per call, checked below) rules, not Pillow's process-wide one,
        # which a library must leave as it is for the program that imports it.
        header = _open_past_pillows_limit(data)
    except UnidentifiedImageError:
        raise InputError("not a readable image (unknown format or corrupt header)") from None
    except Exception as error:  # Pillow raises many kinds on corrupt headers
        raise InputError(f"corrupt image header ({_reason(error)})") from None
    width, height = header.size
    if width <= 0 or height <= 0:
        raise InputError(f"image declares an empty size {width}×{height}")
    if width * height > max_pixels:
        raise PixelLimit(
            f"image is {width}×{height} = {width * height:,} pixels, over the limit of {max_pixels:,} "
            "(raise it with `max_pixels` if you trust this file)"
        )
    return header


def _is_complete(data: bytes, fmt: str | None) -> bool:
    """Cheap end-of-stream checks: OpenCV would accept or loudly reject a truncated file; Pillow explains it."""
    if fmt in ("JPEG", "MPO"):
        return data.rstrip(b"\x00")[-2:] == b"\xff\xd9"
    if fmt == "PNG":
        return b"IEND" in data[-64:]
    return True


def _sample_bits(header: Any) -> int:
    if header.mode.startswith("I;16"):
        return 16
    if header.format == "PNG" and header.mode in ("RGB", "RGBA"):
        # Pillow reduces 16-bit colour PNGs to 8 bits; the IHDR's bit depth byte tells the truth.
        return int(header.fp.getvalue()[24]) if hasattr(header.fp, "getvalue") else 8
    if header.format == "TIFF" and header.mode in ("RGB", "RGBA"):
        bits = header.tag_v2.get(258, (8,))
        return int(bits[0] if isinstance(bits, tuple) else bits)
    return 8


def _decode_fast(data: bytes, header: PILImage.Image, *, gray: bool = False) -> np.ndarray | None:
    """OpenCV decode for plain grey/RGB/RGBA at 8 or 16 bits; None to let Pillow do it.

    With ``gray`` a colour image comes out as grey levels, and the alpha channel is dropped (orientation is
    applied by the caller, as for colour).
    """
    if header.mode not in ("L", "RGB", "RGBA", "I;16", "I;16B", "I;16L") or not _is_complete(data, header.format):
        return None
    if getattr(header, "n_frames", 1) > 1 and header.format != "MPO":
        return None
    bits = _sample_bits(header)
    if bits not in (8, 16):
        return None
    if header.format == "PNG" and (bits == 8 or header.mode.startswith("I;16") or not _png_data_complete(data, header)):
        return None  # Pillow decodes it (or explains what is wrong) without writing to the terminal
    flags = cv2.IMREAD_UNCHANGED
    if gray and header.mode in ("RGB", "RGBA"):
        flags = cv2.IMREAD_GRAYSCALE | cv2.IMREAD_ANYDEPTH | cv2.IMREAD_IGNORE_ORIENTATION
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if pixels is None or pixels.dtype not in (np.uint8, np.uint16):
        return None
    if pixels.shape[:2] != (header.size[1], header.size[0]):
        return None
    return pixels


#: libpng's fixed-point luma (red 9797, green 19234, blue 3737 in 1/32768, truncated), which OpenCV's grey PNG
#: decode uses: as floats and floored it is exact for all 2**24 colours, and twice as fast as integer maths in numpy.
_LIBPNG_LUMA = (np.array([9797, 19234, 3737], np.float32) / 32768).reshape(1, 3)


def _libpng_luma(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB to the grey levels libpng would have decoded.

    >>> _libpng_luma(np.array([[[255, 255, 255], [255, 0, 0], [10, 200, 30]]], np.uint8))
    array([[255,  76, 123]], dtype=uint8)
    """
    return np.floor(cv2.transform(rgb.astype(np.float32), _LIBPNG_LUMA)).astype(np.uint8)


def _png_data_complete(data: bytes, header: PILImage.Image) -> bool:
    """Whether a PNG's compressed stream is whole and long enough for its rows (checked before libpng sees it).

    >>> import cv2, numpy as np
    >>> good = cv2.imencode(".png", np.full((4, 5, 3), 60000, np.uint16))[1].tobytes()
    >>> complete = lambda data: _png_data_complete(data, PILImage.open(io.BytesIO(data)))
    >>> complete(good), complete(good[:-30] + good[-12:])  # the end of its data cut off
    (True, False)
    """
    stream = zlib.decompressobj()
    produced, position = 0, 8
    try:
        while position + 8 <= len(data):
            length = int.from_bytes(data[position:position + 4], "big")
            kind = data[position + 4:position + 8]
            if kind == b"IDAT":
                pending = data[position + 8:position + 8 + length]
                while pending:  # in slices, so that checking never holds the whole raw image
                    produced += len(stream.decompress(pending, 1 << 20))
                    pending = stream.unconsumed_tail
            elif kind == b"IEND":
                break
            position += 12 + length
    except zlib.error:
        return False
    width, height = header.size
    channels = {"RGB": 3, "RGBA": 4}.get(header.mode, 1)
    interlaced = bool(header.info.get("interlace"))
    needed = 0 if interlaced else height * (1 + width * channels * _sample_bits(header) // 8)
    return stream.eof and produced >= needed


def _decode_with_pillow(header: PILImage.Image) -> Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            header.load()
            upright = ImageOps.exif_transpose(header) or header
    except Exception as error:
        raise InputError(f"cannot decode image ({_reason(error)})") from None
    mode = upright.mode
    if mode in ("P", "PA"):
        upright = upright.convert("RGBA" if "transparency" in upright.info or mode == "PA" else "RGB")
    elif mode in ("1", "LA", "L"):
        upright = upright.convert("LA" if mode == "LA" else "L")
    elif mode in ("I", "F"):
        array = np.asarray(upright, dtype=np.float32)
        # Float samples in [0, 1] are the convention already (and are written back as float); anything else is
        # read as 16-bit levels.
        unit = mode == "F" and bool(array.size) and float(np.nanmax(array)) <= 1.0
        pixels = np.clip(array if unit else array * np.float32(1 / 65535), 0, 1)
        return Image(pixels=np.nan_to_num(pixels, copy=False), bit_depth=32 if unit else 16)
    elif mode not in ("RGB", "RGBA", "I;16", "I;16B", "I;16L"):
        upright = upright.convert("RGB")  # CMYK, YCbCr, LAB, HSV
    array = np.asarray(upright)
    if upright.mode == "LA":
        return _split_alpha(array, gray=True)
    return _from_array(array, bgr=False)


def _split_alpha(array: np.ndarray, *, gray: bool) -> Image:
    samples = np.ascontiguousarray(array[..., 0] if gray else array[..., :3])
    return Image(samples=samples, alpha=to_unit_float(array[..., -1]))


def _from_array(array: np.ndarray, *, bgr: bool) -> Image:
    """uint8/uint16 H×W, H×W×3 or H×W×4 (BGR order from OpenCV, RGB from Pillow) to an :class:`Image`."""
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("="))
    alpha = None
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim == 3 and array.shape[2] == 2:
        return _split_alpha(array, gray=True)
    if array.ndim == 3 and array.shape[2] == 4:
        alpha = array[..., 3]
        array = array[..., :3]
    if bgr and array.ndim == 3:
        array = cv2.cvtColor(np.ascontiguousarray(array), cv2.COLOR_BGR2RGB)
    return Image(samples=array, alpha=None if alpha is None else to_unit_float(alpha))


def _orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1–8) to pixels decoded as stored, as Pillow's ``exif_transpose`` does."""
    transform = _ORIENTATIONS.get(orientation)
    return pixels if transform is None else np.ascontiguousarray(transform(pixels))


_ORIENTATIONS = {
    2: lambda p: p[:, ::-1],  # mirrored
    3: lambda p: p[::-1, ::-1],  # upside down
    4: lambda p: p[::-1],  # mirrored upside down
    5: lambda p: np.swapaxes(p, 0, 1),  # transpose
    6: lambda p: np.rot90(p, -1),  # turned: rotate 90° clockwise to show
    7: lambda p: np.swapaxes(p[::-1, ::-1], 0, 1),  # transverse
    8: lambda p: np.rot90(p, 1),  # rotate 90° counter-clockwise to show
}


def _reason(error: Exception) -> str:
    text = str(error).strip().rstrip(".")
    if "truncated" in text.lower():
        return "file is truncated"
    return text or type(error).__name__


def image_from_array(array: np.ndarray) -> Image:
    """Wrap an in-memory uint8/uint16/float array (RGB order) as an :class:`Image`, for library users.

    >>> float(image_from_array(np.full((2, 2), 255, np.uint8)).pixels.max())
    1.0
    """
    if array.dtype in (np.uint8, np.uint16):
        return _from_array(array, bgr=False)
    pixels = np.asarray(array, dtype=np.float32)
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        return Image(pixels=pixels[..., :3].copy(), alpha=pixels[..., 3].copy())
    return Image(pixels=pixels)
