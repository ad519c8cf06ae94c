"""What a model looks at (tlcore.explain.gradcam): Grad-CAM over one picture.

Contracts: the heat map is (size, size) in [0, 1] and the overlay (size, size, 3) uint8; the
map is taken at the registry's last body group for the offline backbone and torchvision's;
it lies on the object where the answer is known (a small CNN taught to find a bright
square); and a model shared with other learners is left as it was found (no hooks, no
gradients).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from tlcore.explain import gradcam
from tlcore.models import catalog
from tlcore.models.backbones import GroupedModel

SIZE = 32  # the toy pictures: (32, 32, 3)
SIDE = 8  # the bright square's side


def picture(rng: np.random.Generator, corner: tuple[int, int] | None) -> np.ndarray:
    """Dark noise, with a bright SIDE x SIDE square whose top-left corner is `corner`."""
    image = rng.integers(0, 60, (SIZE, SIZE, 3), dtype=np.uint8)
    if corner is not None:
        y, x = corner
        image[y : y + SIDE, x : x + SIDE] = 255
    return image


def square_finder(seed: int = 0) -> GroupedModel:
    """A tiny CNN trained for a few steps on "is there a bright square?" (class 1: yes), the
    square anywhere: to answer, it must find the square, so the square is where it looks."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = GroupedModel(
        [
            ("stem", nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())),  # (B, 8, 32, 32)
            ("stage1", nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU())),  # (B, 16, 16, 16)
            ("head", nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 2))),
        ],
        mean=(0.5,) * 3,
        std=(0.25,) * 3,
        name="square_finder",
    )
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(80):
        labels = rng.integers(0, 2, 32)
        images = [picture(rng, tuple(rng.integers(0, SIZE - SIDE, 2)) if y else None) for y in labels]
        x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)
        loss = nn.functional.cross_entropy(model(x), torch.from_numpy(labels))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()


@pytest.fixture(scope="module")
def finder() -> GroupedModel:
    model = square_finder()
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 64)
    x = torch.from_numpy(np.stack([picture(rng, tuple(rng.integers(0, SIZE - SIDE, 2)) if y else None) for y in labels])).permute(
        0, 3, 1, 2
    )
    with torch.no_grad():
        accuracy = (model(x).argmax(-1).numpy() == labels).mean()
    assert accuracy >= 0.95, f"the toy CNN did not learn the square ({accuracy:.0%}): the test below would mean nothing"
    return model


@pytest.mark.parametrize(
    "corner", [(2, 3), pytest.param((22, 21), marks=pytest.mark.fast), pytest.param((3, 22), marks=pytest.mark.fast)]
)
def test_the_map_lies_on_the_bright_square(finder, corner):
    image = picture(np.random.default_rng(2), corner)
    cam = gradcam.class_map(finder, image, size=SIZE)
    assert cam.target == 1 and cam.probability > 0.9  # "a square", sure of it
    assert cam.group == "stage1" and cam.grid == (16, 16)
    y, x = corner
    around = np.zeros((SIZE, SIZE), bool)
    around[max(y - 2, 0) : y + SIDE + 2, max(x - 2, 0) : x + SIDE + 2] = True  # the square and a 2 px rim: 12% of the picture
    share = cam.heat[around].sum() / cam.heat.sum()
    assert share > 0.6, f"only {share:.0%} of the map's mass is on the square"
    peak = np.unravel_index(cam.heat.argmax(), cam.heat.shape)
    assert around[peak], f"the map peaks at {peak}, off the square at {corner}"


@pytest.mark.fast
def test_the_overlay_is_the_picture_with_the_map_in_colour(finder):
    image = picture(np.random.default_rng(3), (4, 4))
    cam = gradcam.class_map(finder, image, size=SIZE)
    assert cam.heat.shape == (SIZE, SIZE) and cam.heat.dtype == np.float32
    assert cam.heat.min() >= 0 and cam.heat.max() <= 1 and cam.heat.max() > 0.99  # scaled to fill [0, 1]
    assert cam.overlay.shape == (SIZE, SIZE, 3) and cam.overlay.dtype == np.uint8
    hot = np.unravel_index(cam.heat.argmax(), cam.heat.shape)
    cold = np.unravel_index(cam.heat.argmin(), cam.heat.shape)
    assert cam.overlay[hot][0] > cam.overlay[hot][2]  # jet colours: red where the evidence is
    assert cam.overlay[cold][2] > cam.overlay[cold][0]  # blue where there is none


@pytest.mark.fast
def test_asking_for_another_class_explains_that_class(finder):
    image = picture(np.random.default_rng(4), (10, 10))
    square, nothing = (gradcam.class_map(finder, image, size=SIZE, target=c) for c in (1, 0))
    assert (square.target, nothing.target) == (1, 0)
    assert square.probability + nothing.probability == pytest.approx(1, abs=1e-5)
    assert not np.allclose(square.heat, nothing.heat)


@pytest.mark.fast
@pytest.mark.parametrize(
    "name, size, group, grid",
    [
        ("efficientnet_lite0", 64, "stage4", (2, 2)),  # the offline backbone (timm's architecture)
        ("resnet18", 96, "stage4", (3, 3)),  # a torchvision one, weights=None
    ],
)
def test_cnn_backbones_are_mapped_at_their_last_body_group(name, size, group, grid):
    model = catalog.build_model(name, 3, pretrained=False, image_size=size).eval()
    image = np.random.default_rng(0).integers(0, 256, (80, 120, 3), dtype=np.uint8)
    with torch.no_grad():
        before = model(torch.zeros(1, 3, size, size))
    cam = gradcam.class_map(model, image, size=size, target=2)
    assert (cam.group, cam.grid, cam.target) == (group, grid, 2)
    assert cam.heat.shape == (size, size) and 0 <= cam.heat.min() <= cam.heat.max() <= 1
    assert cam.overlay.shape == (size, size, 3) and cam.overlay.dtype == np.uint8
    # The model is shared with every learner's page runs: left as it was found.
    assert all(p.grad is None for p in model.parameters())
    assert not any(m._forward_hooks or m._backward_hooks for m in model.modules())
    assert not model.training
    with torch.no_grad():
        assert torch.equal(model(torch.zeros(1, 3, size, size)), before)


def test_a_transformer_is_mapped_where_its_patch_tokens_still_count():
    """ViT's head reads the class token only: at the last group's output the patch tokens get no
    gradient (an all-zero map); one group earlier they do, laid out as the patch grid."""
    model = catalog.build_model("vit_b_16", 2, pretrained=False, image_size=64).eval()
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    cam = gradcam.class_map(model, image, size=64)
    assert cam.group == "blocks6-8" and cam.grid == (4, 4)
    assert cam.heat.shape == (64, 64) and cam.heat.max() > 0.99


@pytest.mark.fast
def test_a_one_cell_feature_map_gives_a_flat_map_not_nan():
    """studio_resnet at 16 px ends in a 1 x 1 feature map: nothing can stand out, and the map
    says so by being zero everywhere (the page then calls it flat), never NaN."""
    model = catalog.build_model("studio_resnet", 2, pretrained=False, image_size=16).eval()
    cam = gradcam.class_map(model, np.full((20, 20, 3), 128, np.uint8), size=16)
    assert cam.grid == (1, 1) and cam.heat.shape == (16, 16)
    assert np.isfinite(cam.heat).all() and cam.heat.max() == 0


@pytest.mark.fast
def test_the_map_needs_no_package_beyond_torch(finder, monkeypatch):
    """Grad-CAM is the engine's own few lines (grad-cam's OpenCV, matplotlib and ttach, about
    230 MB, are not installed for it): blocked imports of them change nothing."""
    import sys

    for name in ("pytorch_grad_cam", "cv2", "matplotlib", "ttach", "captum"):
        monkeypatch.setitem(sys.modules, name, None)  # `import name` now raises ImportError
    cam = gradcam.class_map(finder, picture(np.random.default_rng(5), (12, 6)), size=SIZE)
    assert cam.target == 1 and cam.heat.max() > 0.99
