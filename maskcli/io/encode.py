"""Masks and images to bytes, and bytes to files atomically.

Masks are written as PNG: a hard mask as 0/255, 1-bit where it helps (smaller files, same pixels); a soft mask as
8-bit, or 16-bit on request. Images are written in the format asked for, keeping the ICC profile and EXIF where the
format allows, upright (the orientation tag was reset when decoding).

Every file is written to a hidden temp file in its destination folder and renamed over the destination, so a
reader never sees a partial file, even when the process is killed mid-write.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import io
import os
import secrets
import struct
import sys
import tempfile
import threading
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image as PILImage

from maskcli.errors import OptionError, OutputError, OutputTaken, OutputUnavailable, WriteStopped
from maskcli.imageops import to_unit_float
from maskcli.io.decode import Image
from maskcli.masks import is_hard

#: Prefix of the temp files: hidden, and recognisable if a killed process leaves one behind.
TEMP_PREFIX = ".maskcli-tmp-"

#: Output formats by the suffixes that name them.
FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF"}
SUFFIX_OF = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp", "MPO": ".jpg"}


def check_bits(bits: int) -> None:
    """The one rule for a mask's bits per pixel: 8 or 16 (an :class:`OptionError` of ``bits`` otherwise)."""
    if bits not in (8, 16):
        raise OptionError("bits", f"must be 8 or 16, not {bits}")


def encode_mask(mask: np.ndarray, *, bits: int = 8, hard: bool | None = None) -> bytes:
    """PNG bytes of a mask: hard masks 1-bit black/white, soft ones 8- or 16-bit grey.

    ``hard`` says whether the mask is hard when the caller already knows (it is checked otherwise).

    >>> data = encode_mask(np.array([[0, 1]], np.float32))
    >>> data[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    """
    check_bits(bits)
    if is_hard(mask) if hard is None else hard:
        return encode_binary_mask(_quantise(mask, 255, np.uint8))
    peak = 65535 if bits == 16 else 255
    dtype = np.uint16 if bits == 16 else np.uint8
    ok, buffer = cv2.imencode(".png", _quantise(mask, peak, dtype))
    if not ok:
        raise OutputError("OpenCV could not encode the mask as PNG")
    return buffer.tobytes()


def encode_binary_mask(binary: np.ndarray) -> bytes:
    """PNG bytes of a hard mask given as uint8 0/255: 1-bit black/white.

    >>> cv2.imdecode(np.frombuffer(encode_binary_mask(np.array([[0, 255]], np.uint8)), np.uint8), -1)
    array([[  0, 255]], dtype=uint8)
    """
    # OpenCV's bilevel PNG: same pixels as 0/255 once read back, an eighth of the raw size. zlib's fastest level
    # suits 1-bit rows: on 1 MP masks it took 1.0 ms against 2.0 ms at the default, and the files were smaller
    # (2.6 kB against 3.8 kB).
    ok, buffer = cv2.imencode(".png", binary, [cv2.IMWRITE_PNG_BILEVEL, 1, cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise OutputError("OpenCV could not encode the mask as PNG")
    return buffer.tobytes()


def mask_from_array(array: np.ndarray) -> np.ndarray:
    """A mask file's pixels (uint8/uint16, or with channels) to the mask convention.

    A grey file is the mask; a file with alpha gives its alpha; an RGB file gives its grey level.

    >>> mask_from_array(np.array([[0, 255]], np.uint8))
    array([[0., 1.]], dtype=float32)
    """
    if array.ndim == 3:
        if array.shape[2] in (2, 4):
            array = array[..., -1]
        else:
            array = array[..., :3].max(axis=2) if array.shape[2] >= 3 else array[..., 0]
    if array.dtype == bool:
        return array.astype(np.float32)
    if np.issubdtype(array.dtype, np.integer):
        return array.astype(np.float32) * np.float32(1.0 / np.iinfo(array.dtype).max)
    return np.clip(array.astype(np.float32), 0.0, 1.0)


def read_mask(path: str | os.PathLike[str], *, max_pixels: int | None = None) -> np.ndarray:
    """Read a mask file (any readable image) into the mask convention; alpha wins when present."""
    from maskcli.io.decode import DEFAULT_MAX_PIXELS, read_image

    image = read_image(path, max_pixels=max_pixels or DEFAULT_MAX_PIXELS)
    return mask_from_image(image)


def mask_from_image(image: Image) -> np.ndarray:
    """The mask a decoded image file carries: its alpha if it has one, else its grey level."""
    if image.alpha is not None:
        return image.alpha
    if image.pixels.ndim == 3:
        return image.pixels.max(axis=2)
    return image.pixels


def encode_image(
    pixels: np.ndarray,
    *,
    format: str,
    bit_depth: int = 8,
    quality: int = 92,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
) -> bytes:
    """Bytes of an image in ``format`` (PNG, JPEG, WEBP, TIFF).

    ``pixels``: float32 in [0, 1], H×W (grey), H×W×3 (RGB) or H×W×4 (RGBA, straight alpha), or samples already
    of the format's type (see :func:`sample_type`; written as they are). ``bit_depth`` 16 is kept where the format
    holds it (PNG, TIFF); 32 (float samples) is kept as float32 by TIFF and written as 16-bit by PNG; JPEG and WebP
    are 8-bit. An alpha result asked for as JPEG is an error: flatten it on a background colour first.

    >>> from PIL import Image as PILImage
    >>> grey = np.array([[0.0, 0.25, 1.0]], np.float32)
    >>> [PILImage.open(io.BytesIO(encode_image(grey, format=f, bit_depth=b))).mode
    ...  for f, b in (("TIFF", 32), ("TIFF", 16), ("PNG", 32), ("JPEG", 16))]
    ['F', 'I;16', 'I;16', 'L']
    """
    format = format.upper()
    if format == "JPG":
        format = "JPEG"
    if format not in ("PNG", "JPEG", "WEBP", "TIFF", "BMP"):
        raise OptionError("format", f"cannot write {format!r}; choose png, jpg, webp or tiff")
    has_alpha = pixels.ndim == 3 and pixels.shape[2] == 4
    if has_alpha and format in ("JPEG", "BMP"):
        raise OptionError(
            "format", f"{format} has no transparency; choose png, webp or tiff, or give a background colour"
        )
    if not 1 <= quality <= 100:
        raise OptionError("quality", f"must be between 1 and 100, not {quality}")
    kind = sample_type(format, bit_depth)
    if kind is np.float32:
        return _encode_float_tiff(quantise(pixels, np.float32), icc_profile, exif)
    array = pixels if pixels.dtype == kind else quantise(pixels, kind)
    if format == "PNG":
        # OpenCV writes PNG twice as fast as Pillow and holds 16-bit colour; metadata goes in as chunks.
        return _with_png_chunks(_encode_cv2(array, format, quality), icc_profile, exif)
    needs_pillow = bool(icc_profile or exif) or format == "WEBP"
    if not needs_pillow and format in ("JPEG", "TIFF", "BMP"):
        return _encode_cv2(array, format, quality)
    return _encode_pillow(array, format, quality, icc_profile, exif)


def sample_type(format: str, bit_depth: int) -> type:
    """The sample type a file of ``format`` holds for a source of ``bit_depth`` (8, 16 or 32 for float).

    >>> [sample_type(f, b).__name__ for f, b in (("PNG", 16), ("JPEG", 16), ("TIFF", 32), ("PNG", 32))]
    ['uint16', 'uint8', 'float32', 'uint16']
    """
    format = "JPEG" if format.upper() == "JPG" else format.upper()
    if bit_depth == 32 and format == "TIFF":
        return np.float32
    return np.uint16 if bit_depth >= 16 and format in ("PNG", "TIFF") else np.uint8


def quantise(pixels: np.ndarray, kind: type) -> np.ndarray:
    """Pixels (float in [0, 1], or integer samples of another type) as samples of ``kind`` (see
    :func:`sample_type`): rounded to nearest and saturated, or clipped floats.

    >>> quantise(np.array([[0.5, 2.0]], np.float32), np.uint16)
    array([[32768, 65535]], dtype=uint16)
    """
    if pixels.dtype == kind:
        return pixels
    if pixels.dtype in (np.uint8, np.uint16):
        pixels = to_unit_float(pixels)
    if kind is np.float32:
        return np.clip(pixels, 0.0, 1.0).astype(np.float32, copy=False)
    return _quantise(pixels, int(np.iinfo(kind).max), kind)


def _quantise(pixels: np.ndarray, peak: int, dtype: type) -> np.ndarray:
    """Float [0, 1] to integers, rounded to nearest and saturated.

    For 8 bits OpenCV does it in one pass (about 1 ms per RGBA megapixel, against 19 ms for numpy's clip, scale,
    round and cast, which were the largest cost of a cut-out after PNG encoding).

    >>> _quantise(np.array([[-0.1, 0.0, 0.5, 1.0, 1.5]], np.float32), 255, np.uint8)
    array([[  0,   0, 128, 255, 255]], dtype=uint8)
    >>> _quantise(np.array([[1.0]], np.float32), 255, np.uint8).shape
    (1, 1)
    """
    # OpenCV reads a 1×1 array next to a scalar as a scalar too (cv2.max of a 1×1 and 0.0 gives 4×1): numpy there.
    one_pixel = pixels.shape[0] * pixels.shape[1] == 1
    if dtype is np.uint8 and pixels.dtype == np.float32 and (pixels.ndim == 2 or pixels.shape[2] in (3, 4)) \
            and not one_pixel:
        return cv2.convertScaleAbs(cv2.max(pixels, 0.0), alpha=float(peak))
    return (np.clip(pixels, 0.0, 1.0) * peak + 0.5).astype(dtype)


def _encode_float_tiff(pixels: np.ndarray, icc_profile: bytes | None, exif: bytes | None) -> bytes:
    """float32 TIFF: grey through Pillow (mode F, metadata kept), colour through OpenCV (Pillow has no float
    colour mode)."""
    array = np.clip(pixels, 0.0, 1.0).astype(np.float32, copy=False)
    if array.ndim == 3:
        return _encode_cv2(array, "TIFF", 100)
    return _encode_pillow(array, "TIFF", 100, icc_profile, exif)


def _encode_cv2(array: np.ndarray, format: str, quality: int) -> bytes:
    if array.ndim == 3:
        code = cv2.COLOR_RGBA2BGRA if array.shape[2] == 4 else cv2.COLOR_RGB2BGR
        array = cv2.cvtColor(array, code)
    suffix = SUFFIX_OF[format]
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if format == "JPEG" else []
    ok, buffer = cv2.imencode(suffix, array, params)
    if not ok:
        raise OutputError(f"OpenCV could not encode the image as {format}")
    return buffer.tobytes()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _with_png_chunks(png: bytes, icc_profile: bytes | None, exif: bytes | None) -> bytes:
    """Insert an ICC profile (iCCP) and EXIF (eXIf) right after the PNG's header chunk, where readers expect them.

    >>> from PIL import Image as PILImage
    >>> png = _encode_cv2(np.zeros((2, 3), np.uint8), "PNG", 90)
    >>> exif = PILImage.Exif(); exif[0x0110] = "maskcli"
    >>> PILImage.open(io.BytesIO(_with_png_chunks(png, None, exif.tobytes()))).getexif()[0x0110]
    'maskcli'
    """
    if not icc_profile and not exif:
        return png
    header_end = 8 + 8 + 13 + 4  # signature, then IHDR: length, type, 13 bytes of data, CRC
    extra = b""
    if icc_profile:
        extra += _png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc_profile))
    if exif:
        extra += _png_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif)
    return png[:header_end] + extra + png[header_end:]


def _encode_pillow(
    array: np.ndarray, format: str, quality: int, icc_profile: bytes | None, exif: bytes | None
) -> bytes:
    if array.ndim == 3 and array.dtype != np.uint8:
        # Pillow holds no 16-bit or float colour (PNG, the usual case, never comes here); metadata is dropped.
        return _encode_cv2(array, format, quality)
    picture = PILImage.fromarray(array)  # uint16 gives I;16, float32 gives F
    options: dict[str, object] = {}
    if icc_profile:
        options["icc_profile"] = icc_profile
    if exif and format in ("JPEG", "PNG", "WEBP", "TIFF"):
        options["exif"] = exif
    if format in ("JPEG", "WEBP"):
        options["quality"] = quality
    buffer = io.BytesIO()
    picture.save(buffer, format=format, **options)
    return buffer.getvalue()


_STOPPING = False
# Held from the stop check to the end of the rename, so that once stop_writes returns no rename is under way in
# any thread of this process. Reentrant: in a worker, stop_writes runs in a signal handler, on the very thread
# that may hold it.
_RENAMING = threading.RLock()


def stop_writes() -> None:
    """From now on, :func:`write_atomic` in this process renames nothing: a stopping run leaves no new file.

    Returns once no rename is under way in another thread: every file renamed before is in place and its writer
    will report it.
    """
    global _STOPPING
    with _RENAMING:
        _STOPPING = True


def resume_writes() -> None:
    """Allow renames again (a new run in the same process, after an interrupted one)."""
    global _STOPPING
    _STOPPING = False


def write_atomic(path: str | os.PathLike[str], data: bytes, *, replace: bool = True) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder and a rename.

    The folder is created if missing. The file gets the permissions of any new file (0666 less the process's
    umask, applied by the system when the temp file is created: nothing here reads or changes the umask). On any
    failure the temp file is removed and :class:`OutputError` says why; when the folder can take no file at all
    (read-only file system, no permission, no space left) the error is
    :class:`~maskcli.errors.OutputUnavailable`, which stops a batch: every other item would fail the same way.

    ``replace=False``: a file at ``path`` is never replaced, even one that appeared after the caller looked (another
    process writing into the same folder): the final step is an exclusive rename, and
    :class:`~maskcli.errors.OutputTaken` says the file is there.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     write_atomic(f"{folder}/a.png", b"first")
    ...     try:
    ...         write_atomic(f"{folder}/a.png", b"second", replace=False)
    ...     except OutputTaken:
    ...         pass
    ...     open(f"{folder}/a.png", "rb").read(), sorted(os.listdir(folder))
    (b'first', ['a.png'])
    """
    path = Path(path)
    # The temp file's name prefix is claimed before the file exists, so that whatever stops this write (an
    # exception here, or a process ending while this thread writes, see discard_temp_files) finds the file.
    claim = (os.fspath(path.parent), f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-")
    temp_name = None
    try:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temp_name = _create_temp(path, claim)
        except OSError as error:
            raise _write_error(error, f"cannot write in {path.parent}") from None
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        with _RENAMING:
            if _STOPPING:
                raise WriteStopped(f"{path}: not written, the run is stopping")
            rename_into(temp_name, path, replace=replace)
    except BaseException as error:
        _remove_claimed(claim, temp_name)
        if isinstance(error, OSError):
            raise _write_error(error, f"cannot write {path}") from None
        raise
    finally:
        with _TEMPS_LOCK:
            _CLAIMS.discard(claim)


# Temp files this process is writing, as (folder, name prefix): claimed before each file is created.
_CLAIMS: set[tuple[str, str]] = set()
_TEMPS_LOCK = threading.Lock()


def _remove_claimed(claim: tuple[str, str], name: str | None) -> None:
    """Remove a claimed temp file: by its name when known, else by its prefix (it may exist, unnamed yet)."""
    if name is not None:
        with contextlib.suppress(OSError):
            os.unlink(name)
        return
    folder, prefix = claim
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if entry.name.startswith(prefix):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def discard_temp_files() -> None:
    """Remove every temp file this process's writes hold now, and let no new one be made (:func:`stop_writes`).

    For a process that ends without waiting for its writing threads (an interrupted run's last moment): a thread
    cut off between creating its temp file and renaming it would otherwise leave a partial file behind.
    """
    stop_writes()
    with _TEMPS_LOCK:
        for claim in list(_CLAIMS):
            _remove_claimed(claim, None)


_RENAME_NOREPLACE = 1
_AT_FDCWD = -100


def rename_into(source: str | os.PathLike[str], target: str | os.PathLike[str], *, replace: bool) -> None:
    """Move a finished temp file to its name: over an existing file with ``replace``, else never over one (an
    exclusive rename; :class:`~maskcli.errors.OutputTaken` when a file appeared there meanwhile)."""
    if replace:
        os.replace(source, target)
        return
    try:
        _rename_exclusive(os.fspath(source), Path(target))
    except FileExistsError:
        raise OutputTaken(os.fspath(target)) from None


def _rename_exclusive(source: str, target: Path) -> None:
    """Rename ``source`` to ``target`` unless ``target`` exists (:class:`FileExistsError`), in one step.

    Linux's ``renameat2(RENAME_NOREPLACE)`` where the kernel and file system have it; else a hard link (which
    fails on an existing name) and an unlink of the temp name; on a file system without hard links, a check and
    a rename, which leaves a moment for a file to appear.
    """
    renameat2 = _renameat2()
    if renameat2 is not None:
        if renameat2(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), _RENAME_NOREPLACE) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise OSError(code, os.strerror(code), os.fspath(target))
    try:
        os.link(source, target)
    except FileExistsError:
        raise
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fspath(target)) from None
        os.replace(source, target)
        return
    os.unlink(source)


@functools.lru_cache(maxsize=1)
def _renameat2() -> Any:
    """libc's ``renameat2``, or None (another system, or a C library without it)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def remove_temp_files(folders: Iterable[str | os.PathLike[str]], pids: Iterable[int]) -> None:
    """Remove the temp files that the processes ``pids`` left in ``folders``: a worker killed in the middle of
    :func:`write_atomic` cannot remove its own. Other processes' temp files (another run writing into the same
    folder) are left alone."""
    prefixes = tuple(f"{TEMP_PREFIX}{pid}-" for pid in pids)
    if not prefixes:
        return
    for folder in set(map(Path, folders)):
        with contextlib.suppress(OSError):
            for entry in os.scandir(folder):
                if entry.name.startswith(prefixes):
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)


def remove_temp_files_of_dead_processes(folders: Iterable[str | os.PathLike[str]]) -> None:
    """Remove the temp files in ``folders`` whose writing process (named in the file's name) no longer runs on
    this machine. Only for folders that no other machine writes into: a process elsewhere is not seen here."""
    pids = set()
    for folder in set(map(Path, folders)):
        with contextlib.suppress(OSError):
            for entry in os.scandir(folder):
                pid = entry.name[len(TEMP_PREFIX):].split("-", 1)[0]
                if entry.name.startswith(TEMP_PREFIX) and pid.isdigit() and not _alive(int(pid)):
                    pids.add(int(pid))
    remove_temp_files(folders, pids)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, owned by someone else
        return True
    return True


def _create_temp(path: Path, claim: tuple[str, str]) -> tuple[int, str]:
    """A new, exclusive temp file beside ``path`` named with the claimed prefix, with the mode a new file gets
    (0666 less the umask); none once the run is stopping."""
    # The pid in the name lets a parent that killed this process remove what it left (remove_temp_files).
    with _TEMPS_LOCK:  # a discard_temp_files either sees the claim or comes before the file is made
        if _STOPPING:
            raise WriteStopped(f"{path}: not written, the run is stopping")
        _CLAIMS.add(claim)
        handle, name = tempfile.mkstemp(prefix=claim[1], suffix=path.suffix, dir=path.parent)
    try:
        os.fchmod(handle, 0o666 & ~_umask(path.parent))
    except (AttributeError, OSError):  # no fchmod (Windows), or a file system without modes: keep mkstemp's
        pass
    return handle, name


def _umask(folder: Path) -> int:
    """The process's umask, read without changing it (``os.umask`` can only be read by setting it, process-wide,
    which would race with other threads creating files): from /proc where Linux gives it, else from the mode a
    probe file gets."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    probe = os.path.join(folder, f"{TEMP_PREFIX}{secrets.token_hex(8)}")
    handle = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        return 0o666 & ~os.fstat(handle).st_mode & 0o777
    finally:
        os.close(handle)
        os.unlink(probe)


#: Errors that say the output folder can take no file: the batch stops at the first.
_FOLDER_UNAVAILABLE = {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _write_error(error: OSError, what: str) -> OutputError | OutputUnavailable:
    reason = "permission denied" if isinstance(error, PermissionError) else (error.strerror or str(error))
    if error.errno in _FOLDER_UNAVAILABLE:
        return OutputUnavailable(f"{what}: {reason}; stopping")
    return OutputError(f"{what}: {reason}")

