"""What a model looks at: a class activation map (Grad-CAM) over one picture.

Grad-CAM (Selvaraju et al., 2017) asks the deepest feature map that still has a layout,
(B, C, h, w), which of its cells raised one class's score: each channel is weighted by the
mean gradient of that score with respect to it, the weighted channels are summed, negative
evidence is cut (ReLU), and the (h, w) map is scaled up to the picture. It is written here, in a
few lines over the layer groups the engine already splits a model at (`forward_to` /
`forward_from`), not taken from the `grad-cam` package: that package computes the same map
(the same channel weights, ReLU and min-max scaling, checked against it) but brings OpenCV,
matplotlib and ttach, about 230 MB installed and 1.5-3 s of imports, for this one map. Captum
would bring matplotlib too, and its LayerGradCam needs the same hand-made split of the model.

Which layer: the backbone registry's layer groups, not a per-model choice. The map is taken
where the last body group (the one before "head") hands its features to the head: for a CNN
that is the last conv block (EfficientNet-Lite0's 1280 x 7 x 7 at 224 px, ResNet's layer4).
A vision transformer's head reads only the class token, so no gradient reaches the patch
tokens at that point; there the map is taken one group earlier (its patch tokens laid out
as a 14 x 14 grid).

- `class_map(model, image, size=..., target=None)`: the heat map and the overlay for one
  picture and one class (by default the model's own top class).

Not for: ranking classes (tlcore.models.imagenet, tlcore.train.finetuned) or text models.
"""

from __future__ import annotations

import copy
import math
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from tlcore.models.backbones import GroupedModel


class ClassMap(NamedTuple):
    heat: np.ndarray  # (H, W) float32 in [0, 1]: 1 where the evidence for the class is strongest
    overlay: np.ndarray  # (H, W, 3) uint8: the heat map in colour over the picture the model saw
    target: int  # the class index the map explains
    probability: float  # the model's probability for that class
    group: str  # the layer group whose output the map is made of ("stage4")
    grid: tuple[int, int]  # that output's (h, w) cells, before scaling up to the picture


def _tail(groups: list[nn.Module]) -> nn.Module:
    """The groups after the map's layer as a private copy whose weights need no gradient: the model
    itself is shared with every learner's page runs and is never touched (no hook, no gradient,
    no mode change), and backward runs through these last groups only (the body below needs no
    gradient: the map is made of that layer's activations and their gradients)."""
    return nn.Sequential(*copy.deepcopy(groups)).requires_grad_(False).eval()


def jet(heat: np.ndarray) -> np.ndarray:
    """(H, W) in [0, 1] -> (H, W, 3) float RGB in the jet colours: dark blue (0), cyan, yellow, dark red (1)."""
    x = 4.0 * heat[..., None]
    return np.clip(1.5 - np.abs(x - np.array([3.0, 2.0, 1.0], np.float32)), 0.0, 1.0)


def _tokens_to_grid(tokens: torch.Tensor) -> torch.Tensor:
    """(B, 1 + P, D) patch tokens after the class token -> (B, D, sqrt P, sqrt P)."""
    patches = tokens[:, 1:]
    side = math.isqrt(patches.shape[1])
    return patches.reshape(patches.shape[0], side, side, patches.shape[2]).permute(0, 3, 1, 2)


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def class_map(
    model: GroupedModel, image: np.ndarray, *, size: int, target: int | None = None, image_weight: float = 0.55
) -> ClassMap:
    """Grad-CAM for one picture: `image` (H, W, 3) uint8 is centre-cropped and resized to
    `size` as the model sees it; `target` is the class to explain (None: the model's top class).
    The overlay blends the picture (weight `image_weight`) with the map in the jet colours
    (red: strong evidence, blue: none)."""
    from tlcore.models.imagenet import to_input

    x = to_input(image, size).to(_device(model))  # (1, 3, size, size) uint8
    k = len(model.group_names) - 1  # groups before the head
    reshape = None
    with torch.no_grad():
        features = model.forward_to(x, k)  # (1, C, h, w), or (1, 1 + P, D) for a transformer
        if features.dim() == 3:  # tokens: the head reads the class token only; take the map one group earlier
            k, reshape = k - 1, _tokens_to_grid
            features = model.forward_to(x, k)
        probs = model.forward_from(features, k).float().softmax(-1)[0]  # (num_classes,)
    grid = tuple((reshape(features) if reshape else features).shape[-2:])
    target = int(probs.argmax()) if target is None else int(target)
    tail = _tail(list(model.groups.values())[k:])
    with torch.enable_grad():
        acts = features.detach().float().requires_grad_()
        score = tail(acts)[0, target]  # the class's logit, before the softmax
        (grads,) = torch.autograd.grad(score, acts)
    if reshape:
        acts, grads = reshape(acts.detach()), reshape(grads)  # tokens -> (1, D, side, side)
    weights = grads.mean(dim=(2, 3), keepdim=True)  # (1, C, 1, 1): how much each channel raised the score
    cam = torch.relu((weights * acts.detach()).sum(dim=1, keepdim=True))  # (1, 1, h, w): positive evidence only
    cam = torch.nn.functional.interpolate(cam, size=(size, size), mode="bilinear", align_corners=False)[0, 0]
    span = cam.max() - cam.min()
    # min-max to [0, 1]; a flat map (a 1x1 grid, or no positive evidence: the upsampling's rounding
    # aside) stays 0, never NaN nor rounding noise stretched to full scale
    flat = span <= 1e-3 * cam.abs().max() or span <= 1e-12
    heat = (torch.zeros_like(cam) if flat else (cam - cam.min()) / span).cpu().numpy()
    heat = np.clip(np.nan_to_num(heat), 0.0, 1.0).astype(np.float32)
    picture = x[0].permute(1, 2, 0).cpu().numpy().astype(np.float32) / 255  # (size, size, 3) in [0, 1]
    blend = (1 - image_weight) * jet(heat) + image_weight * picture
    overlay = np.uint8(255 * blend / blend.max())
    return ClassMap(heat, overlay, target, float(probs[target]), model.group_names[k - 1], grid)
