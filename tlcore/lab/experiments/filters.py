"""First-layer filters: the stem's 3x3 filters of the pretrained backbone beside a random one, the
"shallow layers learn general features" picture, as tiles (``first_layer_filters``), as one
picture of tiles (``tile_grid``: the app's filter chart draws with it too) and as a PNG
(``filters_image``).

Not for: drawing the app's chart (studio.plots.filters_figure), the command line (cli).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from tlcore.lab.experiments.results import RESULTS_DIR
from tlcore.models import catalog


def first_layer_filters(*, pretrained: bool = True, backbone: str = "studio_resnet") -> np.ndarray:
    """The stem's first conv filters as RGB tiles: (num_filters, k, k, 3) float in [0, 1].

    Each filter is scaled on its own (symmetric around grey), so its pattern shows, not
    its size. With pretrained=False the same architecture starts from a fixed random init.
    Kept for the process (two models built, about 1 s on the 2-core box): a copy each call.
    """
    return _filters(pretrained, backbone).copy()


@functools.lru_cache(maxsize=8)
def _filters(pretrained: bool, backbone: str) -> np.ndarray:
    torch.manual_seed(0)
    model = catalog.build_model(backbone, 2, pretrained=pretrained)
    conv = next(m for m in model.groups[model.group_names[0]].modules() if isinstance(m, torch.nn.Conv2d))
    w = conv.weight.detach().float()  # (C_out, 3, k, k)
    scale = w.abs().amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-8)
    tiles = 0.5 + 0.5 * w / scale
    return tiles.permute(0, 2, 3, 1).numpy()


def tile_grid(tiles: np.ndarray, zoom: int, cols: int = 8, gap: int = 2) -> np.ndarray:
    """(n, k, k, 3) in [0, 1] -> one uint8 picture (H, W, 3) of the tiles on white, each
    enlarged `zoom` times, `cols` a row, `gap` pixels apart. The app's filter chart
    (studio.plots.filters_figure) and the committed PNG (filters_image) both draw with it."""
    n, k = tiles.shape[0], tiles.shape[1]
    rows = -(-n // cols)
    cell = k * zoom + gap
    grid = np.full((rows * cell + gap, cols * cell + gap, 3), 255, dtype=np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        big = np.kron(np.clip(tile, 0, 1), np.ones((zoom, zoom, 1)))
        grid[gap + r * cell : gap + r * cell + k * zoom, gap + c * cell : gap + c * cell + k * zoom] = (big * 255).round()
    return grid


def filters_image(path: Path | str = RESULTS_DIR / "filters.png", *, zoom: int = 14, backbone: str = "studio_resnet") -> Path:
    """Write the pretrained and random first-layer filters side by side as a PNG."""
    from PIL import Image, ImageDraw

    panels = [
        tile_grid(first_layer_filters(pretrained=pretrained, backbone=backbone), zoom, gap=4) for pretrained in (True, False)
    ]
    gap = np.full((panels[0].shape[0], 24, 3), 255, dtype=np.uint8)
    canvas = np.concatenate([panels[0], gap, panels[1]], axis=1)
    top = 22
    image = Image.new("RGB", (canvas.shape[1], canvas.shape[0] + top), "white")
    image.paste(Image.fromarray(canvas), (0, top))
    draw = ImageDraw.Draw(image)
    source = "synthetic source" if catalog.backbone(backbone).pretrained_on == "synthetic" else "ImageNet"
    draw.text((4, 4), f"{backbone}: pretrained ({source})", fill="black")
    draw.text((panels[0].shape[1] + 28, 4), "random init", fill="black")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path
