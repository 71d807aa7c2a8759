"""Choosing the compute device and the precision a model runs in.

``auto`` picks the first CUDA device when there is one and the CPU otherwise; asking for CUDA on a machine without
it is a :class:`~maskcli.errors.DeviceUnavailable` (exit status 3), never a silent CPU run.

Precision policy:

* **GPU:** fp16 autocast (convolutions in half precision, reductions kept in fp32 by autocast) and
  ``channels_last`` memory format, which lets cuDNN use tensor-core kernels.
* **CPU:** fp32 with ``channels_last``: oneDNN's convolutions then run without layout reorders. Measured on the
  development machine (2 shared cores, torch 2.14.1, U²-Net-P at 320×320, batch 1, interleaved runs;
  ``python benchmarks/bench_cnn.py --sections cpu-model,bf16``, figures in ``benchmarks/results/cnn.md``):
  0.277 s per image with channels_last against 0.365 s without, outputs equal to 2e-5. bf16 autocast was
  slower (0.420 s; 0.364 s with channels_last) *and* changed the masks: IoU of the bf16 mask against the fp32
  mask 0.963 on average over the 100 horses, 0.378 at worst, below the 0.99 the policy asks. So the CPU runs
  fp32.

>>> parse("cuda:1")
('cuda', 1)
>>> parse("gpu")
Traceback (most recent call last):
...
maskcli.errors.OptionError: device: expected auto, cpu, cuda or cuda:N, not 'gpu'
"""

from __future__ import annotations

import dataclasses
import re
from typing import Literal, Optional

from maskcli.errors import DeviceUnavailable, OptionError

Precision = Literal["fp32", "fp16", "bf16"]

_PATTERN = re.compile(r"^(auto|cpu|cuda)(?::(\d+))?$")


def parse(name: str) -> tuple[str, Optional[int]]:
    """Split a ``--device`` value into its kind and index, checking the syntax only (no torch needed)."""
    match = _PATTERN.match(name.strip().lower())
    if not match or (match.group(2) is not None and match.group(1) != "cuda"):
        raise OptionError("device", f"expected auto, cpu, cuda or cuda:N, not {name!r}")
    index = match.group(2)
    return match.group(1), int(index) if index is not None else None


@dataclasses.dataclass(frozen=True)
class DevicePlan:
    """The resolved device (``"cpu"`` or ``"cuda:N"``), its precision and memory format."""

    device: str
    precision: Precision
    channels_last: bool

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")


def resolve(name: str = "auto", precision: Optional[Precision] = None) -> DevicePlan:
    """The device to run on for a ``--device`` value, checked against this machine.

    Parameters
    ----------
    name : str
        ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    precision : {"fp32", "fp16", "bf16"}, optional
        Override the policy (benchmarks use this); default fp16 on GPU and fp32 on CPU.

    Raises
    ------
    OptionError
        The value is not a device name.
    DeviceUnavailable
        CUDA was asked for and this machine (or this torch build) has none, or not that many.

    Examples
    --------
    >>> resolve("cpu")
    DevicePlan(device='cpu', precision='fp32', channels_last=True)
    """
    kind, index = parse(name)
    if kind == "cpu":
        return DevicePlan("cpu", precision or "fp32", True)
    import torch

    available = torch.cuda.is_available()
    if kind == "auto":
        if not available:
            return DevicePlan("cpu", precision or "fp32", True)
        index = 0
    elif not available:
        build = f"this torch {torch.__version__} is a CPU-only build" if torch.version.cuda is None else \
            "no CUDA device is visible (driver, CUDA_VISIBLE_DEVICES)"
        raise DeviceUnavailable(f"--device {name}: CUDA is not available ({build}); use --device cpu or auto")
    count = torch.cuda.device_count()
    index = index or 0
    if index >= count:
        raise DeviceUnavailable(f"--device {name}: this machine has {count} CUDA device(s), cuda:0 to "
                                f"cuda:{count - 1}")
    return DevicePlan(f"cuda:{index}", precision or "fp16", True)


def autocast_dtype(plan: DevicePlan):  # type: ignore[no-untyped-def]
    """The torch dtype to autocast to, or None for plain fp32."""
    import torch

    return {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}[plan.precision]
