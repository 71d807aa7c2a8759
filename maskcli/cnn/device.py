"""Choosing the compute device and the precision a model runs in.

``auto`` picks the first CUDA device when there is one and the CPU otherwise; asking for CUDA on a machine without
it is a :class:`~maskcli.errors.DeviceUnavailable` (exit status 3), never a silent CPU run.

Precision policy:

* **GPU:** fp32 with ``channels_last``. Half precision does not keep U²-Net-P's masks: on an NVIDIA H200 (torch
  2.11, ``python -m benchmarks.bench_cnn --sections gpu``), the IoU of the fp16-autocast mask against the fp32
  mask averaged 0.9936 over the 100 horses (0.934 at worst) and bf16's 0.955 (0.418 at worst), below the 0.995
  the policy asks. fp32 costs no throughput that shows: the GPU was busy 13 % of the time at fp16, the host's
  decoding and encoding being the limit. ``precision=`` still asks for fp16 or bf16 (benchmarks compare them).
* **CPU:** fp32 with ``channels_last``: oneDNN's convolutions then run without layout reorders. Measured on the
  development machine (2 shared cores, torch 2.14.1, U²-Net-P at 320×320, batch 1, interleaved runs;
  ``python -m benchmarks.bench_cnn --sections cpu-model,bf16``, figures in ``benchmarks/results/cnn.md``):
  0.277 s per image with channels_last against 0.365 s without, outputs equal to 2e-5. bf16 autocast was
  slower (0.420 s; 0.364 s with channels_last) *and* changed the masks: IoU of the bf16 mask against the fp32
  mask 0.963 on average over the 100 horses, 0.378 at worst, below the 0.99 the policy asks. So the CPU runs
  fp32.

**CPU threads** (:func:`cpu_threads`): the cores this process may use (``os.sched_getaffinity``, which honours
taskset and cgroup cpusets) less those other processes are busy on (the instantaneous count of runnable tasks in
``/proc/loadavg``, the lowest of a few samples), at least one. That many images go through the model at once, each
on one thread (inference engine, torch and OpenCV all at one thread each: :func:`limit_threads`, called once by
the runner), so the model's threads, the runner's decode and save threads and OpenCV never add up to more busy
threads than free cores: on 2 shared cores with one other CPU-bound process, 20 horse photos took 71–73 s with
torch's default 2 threads and 18–19 s with one.

>>> parse("cuda:1")
('cuda', 1)
>>> parse("gpu")
Traceback (most recent call last):
...
maskcli.errors.OptionError: device: expected auto, cpu, cuda or cuda:N, not 'gpu'
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import re
import time
from typing import Literal, Optional

from maskcli.cores import cpu_count
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
        Override the policy (benchmarks use this); default fp32 on both.

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
    if kind == "cpu" or (kind == "auto" and not cuda_driver_present()):
        # No NVIDIA driver: the CPU, decided without importing torch (2.5 s of a one-image run otherwise).
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
        raise DeviceUnavailable(f"`device={name!r}`: CUDA is not available ({build}); use `device='cpu'` or "
                                "`device='auto'`")
    count = torch.cuda.device_count()
    index = index or 0
    if index >= count:
        raise DeviceUnavailable(f"`device={name!r}`: this machine has {count} CUDA device(s), cuda:0 to "
                                f"cuda:{count - 1}")
    return DevicePlan(f"cuda:{index}", precision or "fp32", True)


def autocast_dtype(plan: DevicePlan):
    """The torch dtype to autocast to, or None for plain fp32."""
    import torch

    return {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}[plan.precision]


def cuda_driver_present() -> bool:
    """Whether an NVIDIA driver with at least one device is visible, asked of ``libcuda`` itself (milliseconds;
    no torch). False means no CUDA for any framework; True still needs a CUDA build of torch to use it."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    try:
        cuda = ctypes.CDLL("libcuda.so.1" if os.name != "nt" else "nvcuda.dll")
    except OSError:
        return False
    count = ctypes.c_int(0)
    try:
        return cuda.cuInit(0) == 0 and cuda.cuDeviceGetCount(ctypes.byref(count)) == 0 and count.value > 0
    except AttributeError:
        return False


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask: taskset, cgroup cpusets), at least 1."""
    return cpu_count()


def busy_elsewhere(samples: int = 5, interval: float = 0.002, loadavg: str = "/proc/loadavg") -> int:
    """Runnable tasks outside this process right now: the fewest seen in a few samples of ``/proc/loadavg``
    (a burst of short-lived tasks is not a busy core), less this process's own running threads. 0 where
    the kernel does not say (not Linux)."""
    seen = []
    for attempt in range(samples):
        try:
            with open(loadavg, encoding="ascii") as handle:
                running = int(handle.read().split()[3].split("/")[0])
        except (OSError, ValueError, IndexError):
            return 0
        seen.append(running - _own_running_threads())
        if attempt + 1 < samples:
            time.sleep(interval)
    return max(0, min(seen))


def _own_running_threads() -> int:
    """Threads of this process in state R (running or runnable), at least 1 (the one asking)."""
    running = 0
    try:
        for task in os.scandir("/proc/self/task"):
            try:
                with open(f"{task.path}/stat", encoding="ascii", errors="replace") as handle:
                    running += handle.read().rpartition(")")[2].split()[0] == "R"
            except (OSError, IndexError):
                continue
    except OSError:
        return 1
    return max(1, running)


def free_cores(busy: Optional[int] = None) -> int:
    """Cores free for this process now: :func:`usable_cores` less :func:`busy_elsewhere`, at least 1.

    >>> free_cores(busy=10**6)
    1
    >>> free_cores(busy=0) == usable_cores()
    True
    """
    return max(1, usable_cores() - (busy_elsewhere() if busy is None else busy))


def limit_threads(threads: int = 1) -> None:
    """Set OpenCV's threads and torch's intra-op pool (when torch is loaded) to ``threads`` each, for the whole
    process: its runner calls this once. One each suits a run whose parallelism comes from several images at once
    (one per free core), which never oversubscribes and, on U²-Net-P's many small layers, scales better than
    splitting one image over threads. (The CPU segmenter still spreads a lone image over the free cores itself.)

    >>> import cv2
    >>> before = cv2.getNumThreads()
    >>> limit_threads(1); cv2.getNumThreads()
    1
    >>> cv2.setNumThreads(before)
    """
    import sys

    import cv2

    cv2.setNumThreads(threads)
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
