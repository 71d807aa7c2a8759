"""Finding a model's weights file: ``--weights PATH``, then the package, then the cache, then a verified download.

Resolution order, for a :class:`~maskcli.cnn.specs.ModelSpec`:

1. a local file the user names (``--weights PATH``); its checksum is not checked, since it may be the user's own
   training, but loading it checks the architecture;
2. the copy shipped inside the package (``maskcli/cnn/weights_data/``, specs with ``bundled=True``: the default
   U²-Net-P, 4.6 MB), checked against the spec's SHA-256, so the default model works offline on a fresh install;
3. the cache: ``$MASKCLI_HOME/models/``, else the platform's user cache folder (``~/.cache/maskcli/models`` on
   Linux); for torchvision models also torchvision's own hub cache (``torch.hub.get_dir()/checkpoints``);
4. a download from the spec's URL, checked against its checksum, written to a temporary file in the cache and
   renamed into place only once verified, so an interrupted or corrupt download never leaves a file that looks
   valid.

``MASKCLI_OFFLINE=1`` forbids step 4. Whenever no file can be had, one :class:`WeightsUnavailable` says which
model, which file was expected, where it is published and how to provide it.

>>> import tempfile
>>> from unittest import mock
>>> from maskcli.cnn import specs
>>> home = tempfile.TemporaryDirectory()
>>> with mock.patch.dict(os.environ, {"MASKCLI_HOME": home.name}):
...     resolve(specs.get("u2netp"), offline=True).relative_to(BUNDLED).as_posix()
'u2netp.onnx'
>>> with mock.patch.dict(os.environ, {"MASKCLI_HOME": home.name}):
...     resolve(specs.get("u2net"), offline=True)
Traceback (most recent call last):
...
maskcli.errors.WeightsUnavailable: no weights for model 'u2net': ...u2net.onnx does not exist ...
>>> home.cleanup()
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Optional, Union

from maskcli.cnn.specs import ModelSpec
from maskcli.errors import OptionError, WeightsUnavailable

#: ``progress(done_bytes, total_bytes_or_None)``, called as a download advances (the CLI draws a bar with it).
Progress = Callable[[int, Optional[int]], None]
#: ``fetch(url) -> (stream, total_bytes_or_None)``: the network, replaceable in tests.
Fetch = Callable[[str], "tuple[BinaryIO, Optional[int]]"]

_CHUNK = 1 << 20

#: The folder of weights shipped inside the package (see its NOTICE.md and LICENSE).
BUNDLED = Path(__file__).resolve().parent / "weights_data"


def bundled_path(spec: ModelSpec) -> Optional[Path]:
    """The packaged copy of ``spec``'s weights, if the spec is bundled and the file is installed."""
    if not spec.bundled:
        return None
    path = BUNDLED / spec.filename
    return path if path.is_file() else None


def cache_dir() -> Path:
    """The folder that holds downloaded weights: ``$MASKCLI_HOME/models``, else the user cache folder.

    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"MASKCLI_HOME": "/srv/maskcli"}):
    ...     cache_dir().as_posix()
    '/srv/maskcli/models'
    """
    home = os.environ.get("MASKCLI_HOME")
    if home:
        return Path(home).expanduser() / "models"
    import platformdirs

    return Path(platformdirs.user_cache_dir("maskcli")) / "models"


def cache_path(spec: ModelSpec) -> Path:
    """Where the cache keeps ``spec``'s file (whether or not it is there)."""
    return cache_dir() / spec.filename


def torch_hub_checkpoints() -> Path:
    """torchvision's download folder, ``torch.hub.get_dir()/checkpoints``, without importing torch for it.

    torch.hub's rule: ``$TORCH_HOME/hub``, else ``$XDG_CACHE_HOME/torch/hub``, else ``~/.cache/torch/hub``; if
    torch is already imported its answer (which honours ``torch.hub.set_dir``) is used.
    """
    if "torch" in sys.modules:
        import torch.hub

        return Path(torch.hub.get_dir()) / "checkpoints"
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.join("~", ".cache")), "torch"
    )
    return Path(torch_home).expanduser() / "hub" / "checkpoints"


def find_cached(spec: ModelSpec) -> Optional[Path]:
    """The local file of ``spec``, if any: the packaged copy, then maskcli's cache, then torchvision's."""
    bundled = bundled_path(spec)
    if bundled is not None:
        return bundled
    candidates = [cache_path(spec)]
    if spec.torchvision_file:
        candidates.append(torch_hub_checkpoints() / spec.filename)
    return next((path for path in candidates if path.is_file()), None)


def offline_mode() -> bool:
    """True when ``MASKCLI_OFFLINE`` is set to a true value: no download is attempted."""
    return os.environ.get("MASKCLI_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _unavailable(spec: ModelSpec, reason: str) -> WeightsUnavailable:
    return WeightsUnavailable(
        f"no weights for model {spec.name!r}: {cache_path(spec)} does not exist and {reason}. "
        f"Fetch {spec.url} where there is network access and copy it to that path (its checksum is checked "
        f"on first use), or pass `weights=PATH` (a local file)."
    )


def digest(path: Union[str, Path], algorithm: str = "sha256") -> str:
    """The hex digest of a file, read in chunks."""
    hasher = hashlib.new(algorithm)
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def _matches(spec: ModelSpec, sha256: str, md5: str) -> bool:
    if spec.sha256:
        return sha256.startswith(spec.sha256.lower())
    if spec.md5:
        return md5 == spec.md5.lower()
    return True  # nothing published to check against: loading still checks the architecture


def verify(spec: ModelSpec, path: Union[str, Path]) -> Path:
    """Check a cached file against the spec's checksum; a mismatch is a :class:`WeightsUnavailable`.

    A verified file in the cache gets a small ``.verified`` stamp (its size and modification time), so the hash of
    a large file is computed once, not on every run. The packaged copy is small and may sit in a read-only or
    version-controlled folder: it is hashed each time (about 10 ms) and never stamped.
    """
    path = Path(path)
    if path.parent == BUNDLED:
        sha256 = digest(path, "sha256")
        if not _matches(spec, sha256, ""):
            raise WeightsUnavailable(
                f"the packaged weights {path} for model {spec.name!r} have checksum sha256:{sha256}, expected "
                f"{spec.checksum()}: the installation is damaged; reinstall maskcli or pass `weights=PATH`."
            )
        return path
    stamp = path.with_name(path.name + ".verified")
    status = path.stat()
    mark = f"{status.st_size} {status.st_mtime_ns}"
    try:
        if stamp.read_text() == mark:
            return path
    except OSError:
        pass
    sha256, md5 = digest(path, "sha256"), digest(path, "md5")
    if not _matches(spec, sha256, md5):
        expected = spec.checksum()
        found = f"md5:{md5}" if expected.startswith("md5") else f"sha256:{sha256}"
        raise WeightsUnavailable(
            f"the weights file {path} for model {spec.name!r} is corrupt or not the published file: checksum "
            f"{found}, expected {expected}. Delete it and run `maskcli models download {spec.name}`, or pass "
            f"`weights=PATH`."
        )
    try:
        stamp.write_text(mark)
    except OSError:
        pass  # a read-only cache still works; it is hashed again next time
    return path


def _urllib_fetch(url: str) -> tuple[BinaryIO, Optional[int]]:
    request = urllib.request.Request(url, headers={"User-Agent": "maskcli"})
    response = urllib.request.urlopen(request, timeout=30)  # noqa: S310 (https URLs from the specs)
    length = response.headers.get("Content-Length")
    return response, int(length) if length and length.isdigit() else None


def download(spec: ModelSpec, *, progress: Optional[Progress] = None, fetch: Optional[Fetch] = None,
             destination: Optional[Path] = None) -> Path:
    """Download ``spec``'s file into the cache, verify it, and return its path.

    The bytes go to a temporary file beside the destination, hashed as they arrive; only a complete file with
    the right checksum is renamed into place. Any network failure is a :class:`WeightsUnavailable`.
    """
    if offline_mode():
        raise _unavailable(spec, "downloads are off (MASKCLI_OFFLINE is set)")
    destination = destination or cache_path(spec)
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WeightsUnavailable(f"cannot create the weights cache {destination.parent}: {error}") from None
    fetch = fetch or _urllib_fetch
    handle, temp_name = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".part", dir=destination.parent)
    sha256, md5 = hashlib.sha256(), hashlib.md5()
    try:
        with os.fdopen(handle, "wb") as out:
            try:
                stream, total = fetch(spec.url)
                done = 0
                with stream:
                    for chunk in iter(lambda: stream.read(_CHUNK), b""):
                        out.write(chunk)
                        sha256.update(chunk)
                        md5.update(chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress(done, total)
            except (urllib.error.URLError, OSError, ValueError) as error:  # no network, refused, timed out
                reason = getattr(error, "reason", None) or error
                raise _unavailable(spec, f"the download from {spec.url} failed ({reason})") from None
            if total is not None and done != total:
                raise _unavailable(spec, f"the download stopped after {done} of {total} bytes")
        if not _matches(spec, sha256.hexdigest(), md5.hexdigest()):
            raise WeightsUnavailable(
                f"the download of model {spec.name!r} from {spec.url} has checksum sha256:{sha256.hexdigest()}, "
                f"expected {spec.checksum()}; it was discarded"
            )
        if spec.size_bytes is not None and done != spec.size_bytes:  # the one check where no checksum is known
            raise _unavailable(spec, f"the download from {spec.url} has {done} bytes, not the published "
                                     f"{spec.size_bytes}; it was discarded")
        os.replace(temp_name, destination)
    except BaseException:
        try:
            os.unlink(temp_name)
        except OSError:
            pass
        raise
    verify(spec, destination)  # writes the stamp
    return destination


def resolve(spec: ModelSpec, weights: Union[str, Path, None] = None, *, offline: Optional[bool] = None,
            progress: Optional[Progress] = None, fetch: Optional[Fetch] = None) -> Path:
    """The weights file to load for ``spec``: ``weights`` if given, else the cache, else a download.

    Parameters
    ----------
    weights : path, optional
        A local file (``--weights``). It must exist; its checksum is not checked.
    offline : bool, optional
        Forbid downloading (default: the ``MASKCLI_OFFLINE`` environment variable).
    progress, fetch : callable, optional
        See :func:`download`.

    Raises
    ------
    WeightsUnavailable
        No file, a file with the wrong checksum, or a failed download.
    OptionError
        ``weights`` names something that is not a regular file (a FIFO, a device, a folder).
    """
    if weights is not None:
        from maskcli.io.files import regular_file_problem

        path = Path(weights).expanduser()
        problem = regular_file_problem(path)
        if problem == "no such file":
            raise WeightsUnavailable(f"`weights={str(weights)!r}`: no such file (weights for model {spec.name!r})")
        if problem is not None:  # a FIFO or a device: a wrong value, not a missing file
            raise OptionError("weights", f"{weights}: {problem}")
        return path
    cached = find_cached(spec)
    if cached is not None:
        return verify(spec, cached)
    if offline_mode() if offline is None else offline:
        raise _unavailable(spec, "downloads are off (MASKCLI_OFFLINE is set)")
    return download(spec, progress=progress, fetch=fetch)


# --- Fine-tuned checkpoints (``maskcli train``) --------------------------------------------------------------------
#
# A checkpoint is a torch file holding a plain dict: ``format`` (CHECKPOINT_FORMAT), ``model`` (the state dict) and
# ``meta`` (base model, training size, normalisation, threshold, data fingerprint, scores, maskcli version). It is
# read with ``weights_only=True``, so loading one never runs code from the file.

#: The value of a checkpoint's ``format`` key.
CHECKPOINT_FORMAT = "maskcli-checkpoint/1"
#: The spec fields a checkpoint's ``meta`` may override: the pre-processing the model was trained with.
PREPROCESSING = ("input_size", "mean", "std", "scale_by_max", "interpolation")


def is_torch_file(path: Union[str, Path]) -> bool:
    """Whether ``path`` is a torch file (a checkpoint or a state dict), told without importing torch: torch.save
    writes a zip archive, and four bytes tell it from an ONNX protobuf."""
    try:
        with open(path, "rb") as stream:
            return stream.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def read_checkpoint(path: Union[str, Path]) -> Optional[dict]:
    """The checkpoint dict in ``path``, or None when the file is not a maskcli checkpoint (an ONNX file, a plain
    torch state dict).

    Raises
    ------
    WeightsUnavailable
        The file looks like a torch file but cannot be read.
    """
    path = Path(path)
    if not is_torch_file(path):
        return None
    import torch

    try:
        content = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:  # zip, pickle and OS errors alike: a damaged file
        raise WeightsUnavailable(f"cannot read {path}: {type(error).__name__}: {error}") from None
    if isinstance(content, dict) and content.get("format") == CHECKPOINT_FORMAT:
        return content
    return None


def checkpoint_meta(path: Union[str, Path]) -> Optional[dict]:
    """The ``meta`` dict of a maskcli checkpoint, or None for any other weights file."""
    content = read_checkpoint(path)
    return None if content is None else dict(content.get("meta", {}))


def spec_for_weights(spec: ModelSpec, path: Union[str, Path]) -> ModelSpec:
    """``spec`` as the weights in ``path`` need it: a fine-tuned checkpoint brings its own pre-processing
    (training size, normalisation); any other file leaves the spec as it is.

    Raises
    ------
    WeightsUnavailable
        The checkpoint was fine-tuned from another architecture than ``spec``'s (one line, naming both).
    """
    meta = checkpoint_meta(path)
    if meta is None:
        return spec
    check_architecture(spec, meta, path)
    return with_preprocessing(spec, meta)


def with_preprocessing(spec: ModelSpec, meta: dict) -> ModelSpec:
    """``spec`` with the pre-processing a checkpoint's ``meta`` records (training size, normalisation).

    >>> from maskcli.cnn import specs
    >>> with_preprocessing(specs.get("u2netp"), {"input_size": 96, "mean": [0.5, 0.5, 0.5]}).input_size
    96
    """
    import dataclasses

    changes: dict[str, Any] = {key: tuple(meta[key]) if isinstance(meta[key], list) else meta[key]
               for key in PREPROCESSING if key in meta}
    return dataclasses.replace(spec, **changes)


def check_architecture(spec: ModelSpec, meta: dict, path: Union[str, Path]) -> None:
    """Refuse a checkpoint whose architecture is not ``spec``'s, in one line."""
    builder = meta.get("builder")
    if builder != spec.builder:
        base = meta.get("base_model", "another model")
        raise WeightsUnavailable(f"{path} was fine-tuned from {base} (architecture {builder}), not {spec.name} "
                                 f"(architecture {spec.builder}); pass `model={base!r}`")


def load_state(model: Any, state: Any, path: Union[str, Path], label: str) -> Any:
    """Load a state dict into a torch ``model`` after checking that every tensor is there with its shape.

    Raises
    ------
    WeightsUnavailable
        Missing, unexpected or mis-shaped tensors: the file holds another architecture (``label`` names this one).
    """
    if not isinstance(state, dict):
        raise WeightsUnavailable(f"{path} is not a state dict (it holds a {type(state).__name__})")
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    misshaped = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or misshaped:
        details = [f"{len(keys)} {kind} (e.g. {keys[0]})" for kind, keys in
                   (("missing", missing), ("unexpected", unexpected), ("wrong shape", misshaped)) if keys]
        raise WeightsUnavailable(f"{path} does not hold the weights of {label}: {'; '.join(details)}")
    model.load_state_dict(state)
    return model


def save_checkpoint(path: Union[str, Path], content: dict) -> Path:
    """Write a torch file atomically (:func:`maskcli.io.files.write_atomic`: a temporary file in the destination
    folder, renamed into place), so an interrupted save never leaves a half-written checkpoint."""
    import io

    import torch

    from maskcli.io.files import write_atomic

    buffer = io.BytesIO()
    torch.save(content, buffer)
    write_atomic(path, buffer.getvalue())
    return Path(path)
