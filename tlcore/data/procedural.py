"""Procedural images: the offline pretraining source and two offline transfer targets.

With no internet there are no ImageNet weights, so the studio pretrains its own small
backbone (``studio_resnet``) on images that a program draws on the fly, in the spirit of
FractalDB (Kataoka et al., 2020): each *class* is one parameter set of a generator
family, and every image of that class is a fresh random variation of it (pose, size,
stroke width, colours, background, noise). Nothing is stored; a seed reproduces it all.

Generator families (all vectorised over the batch, on torch tensors, fast on a CPU):

- ``ifs``: iterated-function-system fractals (2-4 contractive affine maps), drawn by a
  chaos game that runs many chains in parallel and splats the points with ``index_add_``.
- ``glyph``: stroke glyphs, 2-4 cubic Bezier strokes, like letters of an invented script.
- ``texture``: two interfering gratings (orientation, frequency, sharpness).

Every image then gets a random pose (fractals: any rotation and a mirror), random colours
(never tied to the class), a gradient background with dead-leaves clutter behind the
shape, sometimes greyscale or blur, and noise: enough variation that 500 classes are not
learned to 100% (the shipped backbone reached about 60% after 640,000 images).

Class ``k`` of a universe ``seed`` always has the same parameters, whatever the number of
classes asked for, so held-out classes are simply ids outside the source range
(``HELDOUT_FIRST`` and up): same families, parameter sets the backbone never saw.

Offline transfer targets built here (signature ``(*, per_class, val_per_class,
image_size, seed) -> (classes, train_x, train_y, val_x, val_y)``, images uint8
``(N, 3, H, W)``, labels int64):

- ``similar_target``: held-out procedural classes (similar to the source).
- ``textured_digits``: scikit-learn's real 8x8 handwritten digits pasted on textured,
  coloured backgrounds (different from the source, and a domain shift from plain digits).

Not for: registering datasets (``tlcore.data.datasets``) or training (``tlcore.lab.pretrain_vision``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F

FAMILIES = ("ifs", "glyph", "texture")
# Fractals carry the most shape variety, so they get half the classes.
FAMILY_WEIGHTS = (0.5, 0.3, 0.2)
HELDOUT_FIRST = 1_000_000  # class ids from here on are never used for pretraining
UNIVERSE_SEED = 0  # the parameter universe shared by the source and the similar target

MAX_MAPS = 4  # IFS maps per class (2..4 used)
MAX_STROKES = 4  # Bezier strokes per glyph (2..4 used)
CHAOS_CHAINS = 64  # parallel chaos-game chains per image
CHAOS_SKIP = 4  # first steps of each chain are not drawn (chains start at one point)


# --------------------------------------------------------------------------- classes


def _class_generator(class_id: int, seed: int) -> torch.Generator:
    # One private stream per (universe, class): class k never depends on how many
    # classes were asked for, which is what makes "held-out" well defined.
    return torch.Generator().manual_seed((int(seed) << 32) + int(class_id))


def _uniform(g: torch.Generator, *shape: int, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=g)


def _rotation(theta: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(theta), torch.sin(theta)
    return torch.stack((torch.stack((c, -s), -1), torch.stack((s, c), -1)), -2)


def _class_params(class_id: int, seed: int) -> dict[str, torch.Tensor]:
    """All parameters of one class (every family's are drawn; only its own family's are used)."""
    g = _class_generator(class_id, seed)
    family = torch.multinomial(torch.tensor(FAMILY_WEIGHTS), 1, generator=g)

    # IFS: A = R(a) diag(s1, s2) R(b) with a random reflection, all maps contractive.
    n_maps = int(torch.randint(2, MAX_MAPS + 1, (1,), generator=g))
    s1 = _uniform(g, MAX_MAPS, low=0.35, high=0.85)
    s2 = s1 * _uniform(g, MAX_MAPS, low=0.25, high=1.0)
    reflect = torch.where(torch.rand(MAX_MAPS, generator=g) < 0.3, -1.0, 1.0)
    lin = (
        _rotation(_uniform(g, MAX_MAPS, high=2 * math.pi))
        @ torch.diag_embed(torch.stack((s1, s2 * reflect), -1))
        @ _rotation(_uniform(g, MAX_MAPS, high=2 * math.pi))
    )  # (M, 2, 2)
    shift = _uniform(g, MAX_MAPS, 2, low=-1.0, high=1.0)
    maps = torch.cat((lin.reshape(MAX_MAPS, 4), shift), -1)  # (M, 6): a b c d e f
    # Classic choice: pick a map with probability proportional to the area it keeps.
    prob = (s1 * s2 + 0.02) * (torch.arange(MAX_MAPS) < n_maps)
    ifs_cum = torch.cumsum(prob / prob.sum(), 0)
    ifs_cum[n_maps - 1 :] = 1.0

    # Glyph: cubic Bezier strokes; half of them start where the previous one ended.
    n_strokes = int(torch.randint(2, MAX_STROKES + 1, (1,), generator=g))
    ctrl = _uniform(g, MAX_STROKES, 4, 2, low=-0.8, high=0.8)
    chained = torch.rand(MAX_STROKES, generator=g) < 0.5
    for i in range(1, MAX_STROKES):
        if chained[i]:
            ctrl[i, 0] = ctrl[i - 1, 3]

    # Texture: two gratings; orientation (rad), frequency (cycles per image), sharpness.
    tex = torch.stack(
        (
            _uniform(g, 2, high=math.pi),
            _uniform(g, 2, low=1.5, high=6.0),
            _uniform(g, 2, low=0.5, high=6.0),
        ),
        -1,
    )  # (2, 3)
    tex_mode = torch.randint(0, 3, (1,), generator=g)  # 0 sum, 1 product, 2 max

    return {
        "family": family,
        "ifs_maps": maps,
        "ifs_cum": ifs_cum,
        "glyph_ctrl": ctrl,
        "glyph_n": torch.tensor([n_strokes]),
        "tex": tex,
        "tex_mode": tex_mode,
    }


class SourceSpec:
    """A set of procedural classes: ids ``first_class .. first_class + num_classes - 1``.

    ``seed`` chooses the parameter universe; the source and the similar target share it
    and differ in their class ids. ``render`` draws fresh images of any of these classes.
    """

    def __init__(self, num_classes: int, seed: int = UNIVERSE_SEED, *, first_class: int = 0):
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.seed = int(seed)
        self.first_class = int(first_class)
        params = [_class_params(first_class + i, seed) for i in range(num_classes)]
        stacked = {key: torch.stack([p[key] for p in params]) for key in params[0]}
        self.family = stacked["family"].squeeze(1)  # (C,) index into FAMILIES
        self.ifs_maps = stacked["ifs_maps"]  # (C, M, 6)
        self.ifs_cum = stacked["ifs_cum"]  # (C, M)
        self.glyph_ctrl = stacked["glyph_ctrl"]  # (C, S, 4, 2)
        self.glyph_n = stacked["glyph_n"].squeeze(1)  # (C,)
        self.tex = stacked["tex"]  # (C, 2, 3)
        self.tex_mode = stacked["tex_mode"].squeeze(1)  # (C,)
        self.ifs_center, self.ifs_scale = self._fit_fractals_to_frame()

    @property
    def class_ids(self) -> list[int]:
        return list(range(self.first_class, self.first_class + self.num_classes))

    def class_names(self) -> list[str]:
        return [f"{FAMILIES[int(f)]}-{k}" for f, k in zip(self.family, self.class_ids, strict=True)]

    def readable_names(self) -> list[str]:
        """Names a learner can read: 'fractal A', 'stroke glyph B', 'texture C', ..."""
        words = {"ifs": "fractal", "glyph": "stroke glyph", "texture": "texture"}
        return [f"{words[FAMILIES[int(f)]]} {chr(ord('A') + i % 26)}" for i, f in enumerate(self.family)]

    def _fit_fractals_to_frame(self) -> tuple[torch.Tensor, torch.Tensor]:
        # Attractors come in any size and place; measure each once, so that rendering
        # can centre it and scale it to fill the frame (robust extent: 1%..99% quantiles).
        g = torch.Generator().manual_seed(self.seed)
        pts = _chaos_game(self.ifs_maps, self.ifs_cum, chains=128, steps=16, generator=g)
        lo = torch.quantile(pts, 0.01, dim=1)  # (C, 2)
        hi = torch.quantile(pts, 0.99, dim=1)
        center = (lo + hi) / 2
        half = ((hi - lo) / 2).amax(-1).clamp_min(1e-3)
        return center, (1.0 / half).clamp_max(50.0)

    def render(self, labels: torch.Tensor, *, image_size: int, generator: torch.Generator) -> torch.Tensor:
        """Draw one fresh image per label (0-based index into this spec's classes).

        labels (N,) int64 -> uint8 images (N, 3, image_size, image_size).
        """
        labels = torch.as_tensor(labels, dtype=torch.long)
        n = labels.numel()
        mask = torch.zeros(n, image_size, image_size)
        family = self.family[labels]
        for f, draw in enumerate((self._ifs_mask, self._glyph_mask, self._texture_mask)):
            idx = (family == f).nonzero().squeeze(1)
            if idx.numel():
                mask[idx] = draw(labels[idx], image_size, generator)
        return _colourise(mask, generator)

    # Each family turns labels (n,) into a coverage mask (n, S, S) in [0, 1].

    def _ifs_mask(self, labels: torch.Tensor, size: int, g: torch.Generator) -> torch.Tensor:
        maps = self.ifs_maps[labels].clone()  # (n, M, 6)
        # Intra-class variation of the maps themselves (FractalDB perturbs parameters
        # the same way): a few percent on every coefficient changes the fine detail.
        maps = maps * (1 + 0.15 * (2 * torch.rand(maps.shape, generator=g) - 1))
        steps = max(24, (size * size) // (CHAOS_CHAINS * 2))
        pts = _chaos_game(maps, self.ifs_cum[labels], chains=CHAOS_CHAINS, steps=steps, generator=g)
        pts = (pts - self.ifs_center[labels, None]) * self.ifs_scale[labels, None, None]
        # Any rotation, and a mirror half the time: the class is the shape, not its pose.
        pts = _jitter_points(pts, g, max_rotation=math.pi, mirror=True)
        return _rasterise(pts, size, g, density=0.6 * size / 32)

    def _glyph_mask(self, labels: torch.Tensor, size: int, g: torch.Generator) -> torch.Tensor:
        n = labels.numel()
        ctrl = self.glyph_ctrl[labels] + 0.1 * torch.randn(n, MAX_STROKES, 4, 2, generator=g)
        points = 10 * size  # enough samples along the strokes to draw continuous lines
        stroke = (torch.rand(n, points, generator=g) * self.glyph_n[labels, None]).long()
        t = torch.rand(n, points, 1, generator=g)
        p = ctrl.gather(1, stroke[..., None, None].expand(n, points, 4, 2))  # (n, P, 4, 2)
        # Cubic Bezier in Bernstein form.
        pts = (1 - t) ** 3 * p[:, :, 0] + 3 * (1 - t) ** 2 * t * p[:, :, 1] + 3 * (1 - t) * t**2 * p[:, :, 2] + t**3 * p[:, :, 3]
        pts = _jitter_points(pts, g, max_rotation=0.6)
        return _rasterise(pts, size, g, density=1.0, thicken=True)

    def _texture_mask(self, labels: torch.Tensor, size: int, g: torch.Generator) -> torch.Tensor:
        n = labels.numel()
        tex = self.tex[labels]  # (n, 2, 3)
        # The whole pattern turns at random; the class is the angle *between* the gratings,
        # their frequencies and profiles.
        turn = math.pi * torch.rand(n, 1, generator=g)
        theta = tex[..., 0] + turn + 0.1 * torch.randn(n, 2, generator=g)
        freq = tex[..., 1] * (1 + 0.2 * (2 * torch.rand(n, 2, generator=g) - 1))
        sharp = tex[..., 2]
        phase = 2 * math.pi * torch.rand(n, 2, generator=g)
        yy, xx = _grid(size)  # (S, S) each, in [-1, 1]
        # (n, 2, S, S): position along each grating's direction, in cycles.
        along = torch.cos(theta)[..., None, None] * xx + torch.sin(theta)[..., None, None] * yy
        wave = torch.tanh(sharp[..., None, None] * torch.sin(math.pi * freq[..., None, None] * along + phase[..., None, None]))
        a, b = (wave[:, 0] + 1) / 2, (wave[:, 1] + 1) / 2
        mode = self.tex_mode[labels][:, None, None]
        return torch.where(mode == 0, (a + b) / 2, torch.where(mode == 1, a * b, torch.maximum(a, b)))


# --------------------------------------------------------------------------- drawing


def _chaos_game(maps: torch.Tensor, cum: torch.Tensor, *, chains: int, steps: int, generator: torch.Generator) -> torch.Tensor:
    """Points on each IFS attractor: maps (N, M, 6), cum (N, M) -> points (N, chains * steps', 2).

    Every chain starts at the fixed point of map 0, which lies on the attractor, so no
    burn-in is needed; only the first few steps are skipped because all chains share them.
    """
    n, m, _ = maps.shape
    a, b, c, d, e, f = maps.unbind(-1)  # each (N, M)
    # Fixed point of map 0: solve (I - A) x = t.
    det = (1 - a[:, 0]) * (1 - d[:, 0]) - b[:, 0] * c[:, 0]
    x0 = ((1 - d[:, 0]) * e[:, 0] + b[:, 0] * f[:, 0]) / det
    y0 = (c[:, 0] * e[:, 0] + (1 - a[:, 0]) * f[:, 0]) / det
    x = x0[:, None].expand(n, chains).clone()
    y = y0[:, None].expand(n, chains).clone()
    choice = torch.searchsorted(cum.contiguous(), torch.rand(n, steps * chains, generator=generator))
    choice = choice.clamp_max(m - 1).view(n, steps, chains)
    out = []
    for step in range(steps):
        k = choice[:, step]  # (N, chains)
        x, y = (
            a.gather(1, k) * x + b.gather(1, k) * y + e.gather(1, k),
            c.gather(1, k) * x + d.gather(1, k) * y + f.gather(1, k),
        )
        if step >= CHAOS_SKIP:
            out.append(torch.stack((x, y), -1))
    return torch.cat(out, 1)


def _jitter_points(pts: torch.Tensor, g: torch.Generator, *, max_rotation: float, mirror: bool = False) -> torch.Tensor:
    """Random pose per image: rotation, mirror, anisotropic scale, shift. pts (N, P, 2) -> (N, P, 2)."""
    n = pts.shape[0]
    rot = _rotation(max_rotation * (2 * torch.rand(n, generator=g) - 1))  # (N, 2, 2)
    scale = 0.45 + 0.5 * torch.rand(n, 1, generator=g)
    aspect = 1 + 0.2 * (2 * torch.rand(n, 2, generator=g) - 1)
    if mirror:
        aspect[:, 0] *= torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    shift = 0.3 * (2 * torch.rand(n, 1, 2, generator=g) - 1)
    return (pts @ rot.transpose(1, 2)) * (scale * aspect)[:, None, :] + shift


def _rasterise(pts: torch.Tensor, size: int, g: torch.Generator, *, density: float, thicken: bool = False) -> torch.Tensor:
    """Splat points in [-1, 1]^2 into coverage masks: pts (N, P, 2) -> (N, S, S) in [0, 1]."""
    n, p, _ = pts.shape
    ij = ((pts + 1) * (size / 2)).floor().long()  # (N, P, 2) pixel indices (x, y)
    inside = ((ij >= 0) & (ij < size)).all(-1)
    flat = torch.arange(n)[:, None] * (size * size) + ij[..., 1] * size + ij[..., 0]
    counts = torch.zeros(n * size * size)
    counts.index_add_(0, flat[inside], torch.ones(int(inside.sum())))
    counts = counts.view(n, 1, size, size)
    # Soft coverage: a pixel hit by a few points is fully inked, a stray point is faint.
    mask = 1 - torch.exp(-density * counts)
    if thicken:
        # Per-image stroke width: none, 3x3 or (on large images) 5x5 dilation.
        width = torch.randint(0, 2 + (size >= 48), (n,), generator=g)
        thick3 = F.max_pool2d(mask, 3, stride=1, padding=1)
        thick5 = F.max_pool2d(mask, 5, stride=1, padding=2)
        w = width[:, None, None, None]
        mask = torch.where(w == 0, mask, torch.where(w == 1, thick3, thick5))
    return mask.squeeze(1)


def _grid(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    lin = (torch.arange(size) + 0.5) / size * 2 - 1
    return torch.meshgrid(lin, lin, indexing="ij")


def _random_colours(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Foreground and background colours (n, 3) with enough contrast to see the shape."""
    fg = torch.rand(n, 3, generator=g)
    bg = torch.rand(n, 3, generator=g)
    low_contrast = (fg - bg).mean(-1).abs() < 0.3
    fg = torch.where(low_contrast[:, None], (bg.mean(-1, keepdim=True) < 0.5).float() * 0.8 + 0.2 * fg, fg)
    return fg, bg


def _background(n: int, size: int, g: torch.Generator) -> torch.Tensor:
    """Two-colour linear gradient in a random direction: (n, 3, S, S) in [0, 1]."""
    _, bg = _random_colours(n, g)
    other = (bg + 0.35 * torch.randn(n, 3, generator=g)).clamp(0, 1)
    angle = 2 * math.pi * torch.rand(n, generator=g)
    yy, xx = _grid(size)
    ramp = (torch.cos(angle)[:, None, None] * xx + torch.sin(angle)[:, None, None] * yy + 1) / 2
    return bg[..., None, None] * (1 - ramp[:, None]) + other[..., None, None] * ramp[:, None]


def _dead_leaves(img: torch.Tensor, g: torch.Generator, *, leaves: int) -> torch.Tensor:
    """Paint up to `leaves` random discs (dead-leaves clutter) on images (N, 3, S, S)."""
    n, _, size, _ = img.shape
    yy, xx = _grid(size)
    for _ in range(leaves):
        centre = 2 * torch.rand(n, 2, 1, 1, generator=g) - 1
        radius = 0.1 + 0.35 * torch.rand(n, 1, 1, generator=g)
        present = torch.rand(n, 1, 1, generator=g) < 0.6
        inside = ((xx - centre[:, 0]) ** 2 + (yy - centre[:, 1]) ** 2 < radius**2) & present  # (N, S, S)
        colour = torch.rand(n, 3, 1, 1, generator=g)
        # Half-transparent, so the clutter never hides the shape's contrast entirely.
        img = torch.where(inside[:, None], 0.5 * img + 0.5 * colour, img)
    return img


def _colourise(mask: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Ink a coverage mask (N, S, S) onto a random background, add noise -> uint8 (N, 3, S, S).

    Colours are random per image, never per class: the class lives in the shape only,
    so the backbone must learn shapes (what transfers), not a colour lookup.
    """
    n, size, _ = mask.shape
    fg, bg = _random_colours(n, g)
    back = _background(n, size, g)
    back = back - back.mean((2, 3), keepdim=True) + bg[..., None, None]
    back = _dead_leaves(back, g, leaves=3)  # clutter behind the shape
    m = mask[:, None]
    img = back * (1 - m) + fg[..., None, None] * m
    img = _degrade(img, g)
    noise = 0.08 * torch.rand(n, 1, 1, 1, generator=g)
    img = img + noise * torch.randn(img.shape, generator=g)
    return (img.clamp(0, 1) * 255).round().to(torch.uint8)


def _degrade(img: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Some images lose colour or sharpness, as real data often has (scans, thumbnails).

    A backbone that saw blurry and grey images during pretraining is not thrown by them
    later (the real digits are 8x8 upscaled, greyscale). (N, 3, S, S) -> same.
    """
    n, _, size, _ = img.shape
    grey = torch.rand(n, 1, 1, 1, generator=g) < 0.25
    img = torch.where(grey, img.mean(1, keepdim=True).expand_as(img), img)
    low = max(4, size // 4)
    small = F.interpolate(img, size=(low, low), mode="bilinear", antialias=True, align_corners=False)
    blurry = F.interpolate(small, size=(size, size), mode="bilinear", align_corners=False)
    blur = torch.rand(n, 1, 1, 1, generator=g) < 0.3
    return torch.where(blur, blurry, img)


# --------------------------------------------------------------------------- streams


def source_batches(
    spec: SourceSpec, *, batch_size: int, image_size: int, generator: torch.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless stream of fresh (uint8 images (B, 3, S, S), labels (B,)) with uniform labels."""
    while True:
        labels = torch.randint(0, spec.num_classes, (batch_size,), generator=generator)
        yield spec.render(labels, image_size=image_size, generator=generator), labels


# Images x pixels drawn at once. Drawing works in float32 with many temporaries (about 60
# bytes per pixel): 2,200 images at 224 px in one go peaked at 6.8 GB. Larger sets are drawn
# in consecutive chunks into one uint8 block; sets below this (every committed experiment,
# the app's defaults) are drawn in one go exactly as before, so their images are unchanged.
RENDER_PIXELS = 4_000_000


def _in_chunks(draw, items: torch.Tensor, image_size: int, generator: torch.Generator) -> torch.Tensor:
    """draw(items[i:j], image_size, generator) -> uint8 (j - i, 3, S, S), over consecutive chunks."""
    per = max(1, RENDER_PIXELS // (image_size * image_size))
    if len(items) <= per:
        return draw(items, image_size, generator)
    out = torch.empty((len(items), 3, image_size, image_size), dtype=torch.uint8)
    for i in range(0, len(items), per):
        out[i : i + per] = draw(items[i : i + per], image_size, generator)
    return out


def _balanced_labels(num_classes: int, count: int) -> torch.Tensor:
    return torch.arange(num_classes).repeat_interleave(count)


def similar_target(
    *, per_class: int, val_per_class: int, image_size: int, seed: int, num_classes: int = 10
) -> tuple[list[str], torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A target *similar* to the source: held-out procedural classes of the same families.

    The classes are fixed (the same task whatever the seed); the seed draws the images.
    """
    spec = SourceSpec(num_classes, UNIVERSE_SEED, first_class=HELDOUT_FIRST)
    g = torch.Generator().manual_seed(int(seed))
    train_y = _balanced_labels(num_classes, per_class)
    val_y = _balanced_labels(num_classes, val_per_class)

    def draw(labels, size, generator):
        return spec.render(labels, image_size=size, generator=generator)

    train_x = _in_chunks(draw, train_y, image_size, g)
    val_x = _in_chunks(draw, val_y, image_size, g)
    return spec.readable_names(), train_x, train_y, val_x, val_y


# --------------------------------------------------------------------------- digits


def split_digits(
    *, per_class: int, val_per_class: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """scikit-learn's real handwritten digits (shipped with it, no download), split per class.

    Returns train images (N, 8, 8) float in [0, 1], train labels, val images, val labels;
    train and val never share an image.
    """
    from sklearn.datasets import load_digits

    data = load_digits()
    images = torch.tensor(data.images, dtype=torch.float32) / 16.0  # (1797, 8, 8)
    targets = torch.tensor(data.target, dtype=torch.long)
    g = torch.Generator().manual_seed(int(seed))
    train_idx, val_idx = [], []
    for digit in range(10):
        idx = (targets == digit).nonzero().squeeze(1)
        need = per_class + val_per_class
        if need > idx.numel():
            raise ValueError(
                f"digits has only {idx.numel()} images of class {digit}; per_class + val_per_class = {need} is too many"
            )
        idx = idx[torch.randperm(idx.numel(), generator=g)]
        train_idx.append(idx[:per_class])
        val_idx.append(idx[per_class:need])
    train_idx, val_idx = torch.cat(train_idx), torch.cat(val_idx)
    return images[train_idx], targets[train_idx], images[val_idx], targets[val_idx]


def _paste_digits(digits: torch.Tensor, image_size: int, g: torch.Generator) -> torch.Tensor:
    """Digits (N, 8, 8) in [0, 1] onto textured colour backgrounds -> uint8 (N, 3, S, S)."""
    n = digits.shape[0]
    # Random pose: the digit is resampled through a small random affine transform.
    angle = 0.25 * (2 * torch.rand(n, generator=g) - 1)
    scale = 1.05 + 0.3 * torch.rand(n, generator=g)  # >1 in grid units = a smaller digit
    theta = torch.zeros(n, 2, 3)
    theta[:, :, :2] = _rotation(angle) * scale[:, None, None]
    theta[:, :, 2] = 0.15 * (2 * torch.rand(n, 2, generator=g) - 1)
    grid = F.affine_grid(theta, (n, 1, image_size, image_size), align_corners=False)
    ink = F.grid_sample(digits[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    # Texture: gratings of random orientation and frequency, tinted with two colours.
    yy, xx = _grid(image_size)
    ang = math.pi * torch.rand(n, 2, generator=g)
    freq = 2 + 6 * torch.rand(n, 2, generator=g)
    along = torch.cos(ang)[..., None, None] * xx + torch.sin(ang)[..., None, None] * yy
    tex = torch.sin(math.pi * freq[..., None, None] * along + 2 * math.pi * torch.rand(n, 2, 1, 1, generator=g))
    tex = ((tex[:, 0] * tex[:, 1]) + 1)[:, None] / 2  # (N, 1, S, S) in [0, 1]
    fg, bg = _random_colours(n, g)
    other = torch.rand(n, 3, generator=g)
    back = bg[..., None, None] * (1 - 0.5 * tex) + other[..., None, None] * 0.5 * tex
    img = back * (1 - ink) + fg[..., None, None] * ink
    img = img + 0.04 * torch.randn(img.shape, generator=g)
    return (img.clamp(0, 1) * 255).round().to(torch.uint8)


def textured_digits(
    *, per_class: int, val_per_class: int, image_size: int, seed: int
) -> tuple[list[str], torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A target *different* from the source: real handwritten digits on textured colour
    backgrounds (also the shifted domain in the domain-adaptation lesson)."""
    train, train_y, val, val_y = split_digits(per_class=per_class, val_per_class=val_per_class, seed=seed)
    g = torch.Generator().manual_seed(int(seed) + 7919)  # a stream apart from the split's
    classes = [str(d) for d in range(10)]
    return (
        classes,
        _in_chunks(_paste_digits, train, image_size, g),
        train_y,
        _in_chunks(_paste_digits, val, image_size, g),
        val_y,
    )
