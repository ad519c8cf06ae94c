"""Precision and memory layout: where bf16 autocast and channels-last pay, and where not.

Weights, optimiser state and the loss always stay fp32; only activations may run in bf16.
"""

from __future__ import annotations

import functools

import torch

from tlcore.models import depthwise


def use_bf16(device: torch.device, precision: str = "auto", train_model=None) -> bool:
    """auto: bf16 autocast on CUDA GPUs that support it, and on CPUs with native bf16
    instructions (AVX512-BF16 or AMX); fp32 elsewhere.

    Weights, optimiser state and the loss stay fp32. Measured on a 2-core AMD EPYC with
    AVX512-BF16 (digits, studio_resnet, 3 seeds): the same accuracy as fp32 (full fine-tune
    89.3% vs 89.2%) in a third of the time. Without native bf16 it would be emulated and slow.
    Depthwise convolutions on CPUs: oneDNN's bf16 depthwise backward is slower than fp32
    (EfficientNet-Lite0 at 96 px, one thread: 26 img/s in bf16 vs 55 in fp32; its no-grad forward
    still gains from bf16: 370 vs 250 img/s). A network whose depthwise layers train in fp32
    inside autocast (tlcore.models.depthwise: Lite0) trains in bf16 around them (the default
    demo's training 1.10 -> 0.92 s, `python -m tools.precisioncheck`); the training steps (`train_model` given) of any other
    network with depthwise convolutions stay fp32.
    """
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if train_model is not None and has_depthwise_conv(train_model) and not depthwise.trains_depthwise_in_fp32(train_model):
        return False
    return device.type == "cpu" and cpu_has_native_bf16()


def has_depthwise_conv(model: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.Conv2d) and m.groups > 1 for m in model.modules())


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def prefers_channels_last(device: torch.device) -> bool:
    """NHWC memory layout: faster convolutions with cuDNN and oneDNN (measured here on CPU:
    +6% full fine-tune, +8% frozen feature pass for ResNet-18 at 64 px, and bf16 max-pooling
    stops being a hot spot)."""
    return device.type in ("cuda", "cpu")


def autocast_for(device: torch.device, precision: str = "auto", train_model=None) -> functools.partial:
    """A factory of autocast contexts: weights stay fp32, activations run in bf16 where it pays
    (pass `train_model` for the contexts of training steps; see use_bf16).

    The choice is made here, once, and handed down as a plain value: torch.autocast with its
    arguments bound, so the batch sources and the feature cache (tlcore.data.feature_cache) open
    the context, and read how it computes, without calling back into this module."""
    enabled = use_bf16(device, precision, train_model)
    kind = device.type if device.type in ("cuda", "cpu") else "cpu"
    return functools.partial(torch.autocast, kind, dtype=torch.bfloat16, enabled=enabled and device.type in ("cuda", "cpu"))
