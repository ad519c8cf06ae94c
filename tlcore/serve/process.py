"""What a server process does to itself, not to any one job: give freed memory back to the
system, pin a worker thread to its GPU, count the GPUs.

Not for: a run's threads and CPU priority (tlcore.train.device, which the lab's background
work uses too) or how many runs go at once (tlcore.serve.cores).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable


def _libc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim  # glibc only
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _libc_trim()


def return_freed_memory() -> None:
    """Give the C heap's freed pages back to the system after a job. Without it glibc keeps a
    finished run's freed tensors resident (measured: about 650 MB after one default fine-tune),
    and a class server that ran many jobs holds its peak forever."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def pin_cuda_device(index: int) -> None:
    """Make GPU `index` the calling worker thread's default device."""
    import torch

    torch.cuda.set_device(index)


def local_gpus() -> int:
    """GPUs this machine can train on (0 on a CPU-only machine)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0
