"""Which accelerator to train on, and how to describe it to a learner.

Preference order: CUDA > Apple MPS > CPU. Nothing here allocates memory.
"""

from __future__ import annotations

import os
import threading

import torch


def pick_device(preference: str = "auto") -> torch.device:
    """`auto` picks cuda > mps > cpu; an explicit choice that is not available raises."""
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if preference == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is visible; use --device auto or cpu")
    if preference == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' was asked for but Apple MPS is not available; use --device auto or cpu")
    return torch.device(preference)


def describe_device(device: torch.device | str | None = None) -> str:
    """A short human name: 'NVIDIA H100 80GB HBM3 (CUDA)' or 'CPU (2 threads)'."""
    device = torch.device(device) if device is not None else pick_device()
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA)"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    return f"CPU ({torch.get_num_threads()} threads of {os.cpu_count()} cores)"


def nice_at_least(nice: int) -> bool:
    """The calling thread's nice value raised to `nice` where it is lower, never added to: a process
    started from a thread already at nice 10 and asked for 10 stays at 10 (os.nice(10) would make it
    19, the lowest priority there is). False where the system refuses."""
    try:
        tid = threading.get_native_id()
        if os.getpriority(os.PRIO_PROCESS, tid) < nice:
            os.setpriority(os.PRIO_PROCESS, tid, min(19, nice))
        return True
    except (AttributeError, OSError):
        return False


def lower_thread_priority(by: int) -> bool:
    """Lower the calling thread's CPU priority (its nice value) by `by`; False where the system
    has no per-thread priority (Linux has: setpriority on a thread id changes that thread only)."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + by))
        return True
    except (AttributeError, OSError):
        return False
