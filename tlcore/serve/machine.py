"""What a server process does to itself, not to any one job: keep freed memory for reuse while
it trains and give it back to the system after a job, pin a worker thread to its GPU, count the GPUs.

Not for: a run's threads and CPU priority (tlcore.train.device, which the lab's background
work uses too) or how many runs go at once (tlcore.serve.cores).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Callable


def _libc_function(name: str) -> Callable[..., int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return getattr(libc, name)  # glibc only
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _libc_function("malloc_trim")
_MALLOPT = _libc_function("mallopt")
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc's mallopt parameters (malloc.h)


GLIBC_DEFAULTS = {M_MMAP_MAX: 65536, M_TRIM_THRESHOLD: 128 * 1024}  # mallopt's values when nothing set them
KEEP = {M_MMAP_MAX: 0, M_TRIM_THRESHOLD: 1 << 30}


def keep_freed_memory(keep: bool = True) -> bool:
    """While runs train (`keep`): their large tensors come from the C heap and are reused step after
    step, instead of being mapped fresh from the system at every allocation (glibc maps any block
    over 32 MB, and gives back a heap's free top past its trim threshold). A fresh mapping is zeroed
    page by page on first touch: one epoch of Lite0's full fine-tune at 96 px on one thread faulted
    0.8 million pages (1 s of its 5 s in the kernel); with this, 0.05-0.1 million. The queue's worker
    threads allocate from glibc's per-thread heaps (64 MB each), which still hand back a heap that
    empties: a race of four faulted 0.6-1.0 million pages instead of 2.7-3.3 million (tools.racetime).

    Not `keep` (the queue has nothing left to train): glibc's own values again, so what pages and
    sessions free goes back to the system as before (kept on, a class of 30 ended 869 MB above its
    start instead of about 680). False where it cannot be set (not glibc)."""
    if _MALLOPT is None:
        return False
    return all(bool(_MALLOPT(param, value)) for param, value in (KEEP if keep else GLIBC_DEFAULTS).items())


def return_freed_memory() -> None:
    """Give the C heap's freed pages back to the system after a job. Without it glibc keeps a
    finished run's freed tensors resident (measured: about 650 MB after one default fine-tune),
    and a class server that ran many jobs holds its peak forever."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def freeze_what_is_loaded() -> int:
    """Leave the objects this process holds now (its modules, torch's and the libraries', the warm
    models and data) out of every later garbage collection (`gc.freeze`); returns how many.

    Python's full collection walks every tracked object, and a class server holds some 650,000 once
    Streamlit, torch, timm, scikit-learn and the warm-up are in: each one took 0.2-0.5 s, the
    interpreter held throughout, so a page's script and the run's step both waited. Measured over
    `python -m tools.loadtest --students 30` (a gc callback in the server): 12 full collections,
    3.0 s in all, two of 0.48-0.50 s during the class; frozen, the class's were 0.04-0.13 s
    (docs/class-load.md, session 43). What is frozen is still freed when its last reference goes;
    only a cycle among frozen objects stays (the startup's modules and caches: nothing that a
    class makes). Called once, after the warm-up."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def pin_cuda_device(index: int) -> None:
    """Make GPU `index` the calling worker thread's default device."""
    import torch

    torch.cuda.set_device(index)


def local_gpus() -> int:
    """GPUs this machine can train on (0 on a CPU-only machine)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0
