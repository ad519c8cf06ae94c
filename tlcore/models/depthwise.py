"""A faster weight gradient for 5x5 depthwise convolutions on the CPU (EfficientNet-Lite0 has nine).

oneDNN has a depthwise kernel for the weight gradient of 3x3 convolutions (padding up to 1), but a
5x5 one falls back to its generic grouped kernel, which works on blocks of 16 channels: 10-19 ms a
layer for a 64-image step of Lite0 at 96 px on one thread, against 0.3-2 ms for the 3x3 layers, and
about a fifth of the step. The 5x5 gradient is four overlapping 3x3 ones on shifted windows of the
padded input (kernel rows and columns 0-2 and 2-4), which oneDNN computes with its fast kernel.
The forward pass and the input's gradient are PyTorch's own; the weight gradient is the same sum
in another order (equal to float tolerance, tested).

`speed_up(model)` gives a model's 5x5 depthwise convolutions this backward pass; a layer that is
not training (eval mode, no gradient wanted, or not on the CPU) runs exactly as before.

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


class FastConv2d(nn.Conv2d):
    """nn.Conv2d (a 5x5 depthwise one, symmetric padding) with the faster weight gradient."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _trains_here(self, x):
            return super().forward(x)
        return _Depthwise.apply(x, self.weight, self.stride[0], self.padding[0])


class FastConv2dSame(Conv2dSame):
    """timm's Conv2dSame (TensorFlow's "same" padding, computed per input) with the faster weight gradient."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _trains_here(self, x):
            return super().forward(x)
        x = pad_same(x, self.kernel_size, self.stride, self.dilation)
        return _Depthwise.apply(x, self.weight, self.stride[0], 0)


FASTER = {nn.Conv2d: FastConv2d, Conv2dSame: FastConv2dSame}


def speed_up(model: nn.Module) -> int:
    """Give `model`'s 5x5 depthwise convolutions the faster weight gradient (the same parameters
    and names: only the class changes); how many."""
    layers = [m for m in model.modules() if type(m) in FASTER and _applies(m)]
    for m in layers:
        m.__class__ = FASTER[type(m)]
    return len(layers)
