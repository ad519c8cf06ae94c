"""Depthwise convolutions made for training on a CPU: a faster weight gradient for the 5x5 ones
(EfficientNet-Lite0 has nine), and fp32 for all of them inside a bf16 training step.

oneDNN has a depthwise kernel for the weight gradient of 3x3 convolutions (padding up to 1), but a
5x5 one falls back to its generic grouped kernel, which works on blocks of 16 channels: 10-19 ms a
layer for a 64-image step of Lite0 at 96 px on one thread, against 0.3-2 ms for the 3x3 layers, and
about a fifth of the step. The 5x5 gradient is four overlapping 3x3 ones on shifted windows of the
padded input (kernel rows and columns 0-2 and 2-4), which oneDNN computes with its fast kernel.
The forward pass and the input's gradient are PyTorch's own; the weight gradient is the same sum
in another order (equal to float tolerance, tested).

bf16 on a CPU: oneDNN's bf16 depthwise backward is slower than its fp32 one (Lite0 at 96 px on
one thread trained at 26 img/s in bf16, 55 in fp32), while the pointwise (1x1) convolutions that
hold nine tenths of Lite0's arithmetic are matrix products that bf16 instructions run about twice
as fast. So under bf16 autocast a training depthwise layer runs in fp32 (its input cast up, its
output fp32) and everything around it in bf16 (tlcore.train.precision.use_bf16 then picks bf16
for such a network's training steps). The default demo's training: 1.10 -> 0.92 s, the same
accuracy over 8 seeds; full fine-tuning 6.0 -> 4.4 s (`python -m tools.precisioncheck`).

`speed_up(model)` gives a model's depthwise convolutions these forward and backward passes; a
layer that is not training (eval mode, no gradient wanted, or not on the CPU) runs exactly as before.

Not for: building models (tlcore.models.backbones).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import Conv2dSame
from timm.layers.padding import pad_same
from torch import nn


def weight_grad(x: torch.Tensor, grad_out: torch.Tensor, kernel: int, stride: int, padding: int) -> torch.Tensor:
    """d(loss)/d(weight) of a depthwise convolution with an odd `kernel` of 5 or more:
    (B, C, H, W) input and (B, C, Ho, Wo) output gradient -> (C, 1, k, k)."""
    channels = x.shape[1]
    padded = F.pad(x, (padding,) * 4) if padding else x
    rows, cols = (grad_out.shape[2] - 1) * stride + 3, (grad_out.shape[3] - 1) * stride + 3
    piece = x.new_empty(channels, 1, 3, 3)  # only its shape is read
    out = x.new_empty(channels, 1, kernel, kernel)
    for top in range(0, kernel - 2, 2):
        for left in range(0, kernel - 2, 2):
            window = padded[:, :, top : top + rows, left : left + cols].contiguous(memory_format=torch.channels_last)
            args = (grad_out, window, piece, None, [stride] * 2, [0, 0], [1, 1], False, [0, 0], channels, [False, True, False])
            out[:, :, top : top + 3, left : left + 3] = torch.ops.aten.convolution_backward(*args)[1]
    return out


class _Depthwise(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, stride: int, padding: int):
        ctx.save_for_backward(x, weight)
        ctx.stride, ctx.padding = stride, padding
        return F.conv2d(x, weight, None, stride, padding, 1, weight.shape[0])

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        s, p = ctx.stride, ctx.padding
        grad_out = grad_out.contiguous(memory_format=torch.channels_last)
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            args = (grad_out, x, weight, None, [s, s], [p, p], [1, 1], False, [0, 0], weight.shape[0], [True, False, False])
            grad_x = torch.ops.aten.convolution_backward(*args)[0]
        if ctx.needs_input_grad[1]:
            grad_w = weight_grad(x, grad_out, weight.shape[-1], s, p)
        return grad_x, grad_w, None, None


def _applies(conv: nn.Conv2d) -> bool:
    k, s, p = conv.kernel_size, conv.stride, conv.padding
    square = k[0] == k[1] and s[0] == s[1] and isinstance(p, tuple) and p[0] == p[1]
    depthwise = conv.groups == conv.in_channels == conv.out_channels and conv.bias is None
    return square and depthwise and k[0] >= 5 and k[0] % 2 == 1 and conv.dilation == (1, 1)


def _trains_here(conv: nn.Conv2d, x: torch.Tensor) -> bool:
    return conv.training and torch.is_grad_enabled() and conv.weight.requires_grad and x.device.type == "cpu"


def _fp32():
    """In a bf16 training step (autocast on this CPU): the context that runs a depthwise layer in
    fp32; else None (the layer runs as PyTorch would)."""
    return torch.autocast("cpu", enabled=False) if torch.is_autocast_enabled("cpu") else None


class Fp32Conv2d(nn.Conv2d):
    """nn.Conv2d (a depthwise one) that trains in fp32 inside bf16 autocast on a CPU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _trains_here(self, x):
            return self._plain(x)
        fp32 = _fp32()
        if fp32 is None:
            return self._train(x)
        with fp32:
            return self._train(x.float())

    def _plain(self, x: torch.Tensor) -> torch.Tensor:
        return nn.Conv2d.forward(self, x)

    def _train(self, x: torch.Tensor) -> torch.Tensor:
        return self._plain(x)


class Fp32Conv2dSame(Fp32Conv2d, Conv2dSame):
    """timm's Conv2dSame (TensorFlow's "same" padding, computed per input), a depthwise one, that
    trains in fp32 inside bf16 autocast on a CPU."""

    def _plain(self, x: torch.Tensor) -> torch.Tensor:
        return Conv2dSame.forward(self, x)


class FastConv2d(Fp32Conv2d):
    """nn.Conv2d (a 5x5 depthwise one, symmetric padding) with the faster weight gradient, in fp32."""

    def _train(self, x: torch.Tensor) -> torch.Tensor:
        return _Depthwise.apply(x, self.weight, self.stride[0], self.padding[0])


class FastConv2dSame(FastConv2d, Fp32Conv2dSame):
    """timm's Conv2dSame with the faster weight gradient, in fp32."""

    def _train(self, x: torch.Tensor) -> torch.Tensor:
        x = pad_same(x, self.kernel_size, self.stride, self.dilation)
        return _Depthwise.apply(x, self.weight, self.stride[0], 0)


FASTER = {nn.Conv2d: FastConv2d, Conv2dSame: FastConv2dSame}  # 5x5 and larger (odd)
FP32 = {nn.Conv2d: Fp32Conv2d, Conv2dSame: Fp32Conv2dSame}  # any other depthwise layer


def _depthwise(conv: nn.Module) -> bool:
    return isinstance(conv, nn.Conv2d) and conv.groups > 1 and conv.groups == conv.in_channels == conv.out_channels


def speed_up(model: nn.Module) -> int:
    """Give `model`'s depthwise convolutions the faster weight gradient (5x5: `FASTER`) and fp32
    inside bf16 training steps (all of them); the same parameters and names: only the class
    changes. How many got the faster gradient."""
    fast = 0
    for m in model.modules():
        if type(m) in FASTER and _applies(m):
            m.__class__ = FASTER[type(m)]
            fast += 1
        elif type(m) in FP32 and _depthwise(m):
            m.__class__ = FP32[type(m)]
    return fast


def trains_depthwise_in_fp32(model: nn.Module) -> bool:
    """Every grouped convolution of `model` a depthwise one of this module's (`speed_up`), so that
    bf16 autocast never runs a depthwise backward in bf16. False for a network without any."""
    grouped = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    return bool(grouped) and all(isinstance(m, Fp32Conv2d) for m in grouped)
