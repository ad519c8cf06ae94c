"""What an ImageNet-pretrained backbone already knows, before any fine-tuning.

- `CATEGORIES`: the 1000 ImageNet class names in readable English (torchvision's list,
  which ships with torchvision: no download).
- `SAMPLE_PHOTOS`: real photographs bundled with scikit-image, each with the ImageNet
  classes a person would accept as right (the cat is one of ImageNet's five domestic cats).
- `top_k(model, image)`: the pretrained classifier's best guesses for one image.
- `measure_preprocessing(...)`: which input scaling a checkpoint expects, measured on the
  real photos instead of guessed (see the note on `LITE_MEAN` in tlcore.models.backbones).

Not for: fine-tuning (tlcore.train.trainer) or the backbone registry (tlcore.models.backbones).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from tlcore.models import backbones, catalog


@functools.lru_cache(maxsize=1)
def categories() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names, index = classifier output ("tabby", "espresso", ...)."""
    from torchvision.models import ResNet18_Weights

    return tuple(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


@dataclass(frozen=True)
class SamplePhoto:
    name: str  # scikit-image's function name in skimage.data (motorcycle_left: the stereo pair's left view)
    title_en: str
    title_ko: str
    accept: tuple[int, ...]  # ImageNet class ids a person would call right; () = no single answer


# ImageNet ids: 281 tabby, 282 tiger cat, 283 Persian, 284 Siamese, 285 Egyptian cat;
# 504 coffee mug, 967 espresso, 968 cup; 657 missile, 744 projectile, 812 space shuttle;
# 665 moped, 670 motor scooter.
SAMPLE_PHOTOS = (
    SamplePhoto("chelsea", "Chelsea the cat", "고양이 첼시", (281, 282, 283, 284, 285)),
    SamplePhoto("coffee", "A cup of coffee", "커피 한 잔", (504, 967, 968)),
    SamplePhoto("rocket", "A rocket on the launch pad", "발사대의 로켓", (657, 744, 812)),
    SamplePhoto("motorcycle_left", "A motorcycle", "오토바이", (665, 670)),
    SamplePhoto(
        "astronaut",
        "An astronaut (a portrait, no single ImageNet class)",
        "우주비행사 (한 가지 ImageNet 클래스로는 답이 없는 인물 사진)",
        (),
    ),
)


def sample_photo(name: str) -> np.ndarray:
    """A bundled photo as (H, W, 3) uint8; works offline (the files ship in scikit-image)."""
    from skimage import data

    if name not in {p.name for p in SAMPLE_PHOTOS}:
        raise ValueError(f"unknown sample photo {name!r}; choose one of: {', '.join(p.name for p in SAMPLE_PHOTOS)}")
    image = data.stereo_motorcycle()[0] if name == "motorcycle_left" else getattr(data, name)()
    return np.ascontiguousarray(image[..., :3])


def to_input(image: np.ndarray, size: int) -> torch.Tensor:
    """(H, W, 3) or (H, W) uint8 -> (1, 3, size, size) uint8: centre square, resized."""
    from PIL import Image

    from tlcore.data.datasets import pil_to_uint8

    return pil_to_uint8(Image.fromarray(np.asarray(image)), size).unsqueeze(0)


@torch.no_grad()
def probabilities(model, image: np.ndarray, size: int) -> torch.Tensor:
    """Softmax over the model's classes for one image: (num_classes,) float32."""
    model.eval()
    device = next(model.parameters()).device
    return model(to_input(image, size).to(device)).float().softmax(-1)[0].cpu()


def top_k_ids(model, image: np.ndarray, *, size: int = 224, k: int = 5) -> list[tuple[int, float]]:
    """The ImageNet classifier's k best guesses by class id: [(id, probability), ...] (an id, not a
    name: ImageNet has two classes named "crane", the bird and the machine, and two "maillot")."""
    values, indices = probabilities(model, image, size).topk(k)
    return [(int(i), float(v)) for v, i in zip(values.tolist(), indices.tolist())]


def top_k(model, image: np.ndarray, *, size: int = 224, k: int = 5) -> list[tuple[str, float]]:
    """The ImageNet classifier's k best guesses: [(class name, probability), ...]."""
    names = categories()
    return [(names[i], p) for i, p in top_k_ids(model, image, size=size, k=k)]


@functools.lru_cache(maxsize=2)
def imagenet_model(name: str = "efficientnet_lite0", size: int = 224):
    """The backbone with its pretrained 1000-class head, in eval mode (built once per process)."""
    return catalog.build_model(name, 1000, pretrained=True, image_size=size, imagenet_head=True).eval()


@functools.lru_cache(maxsize=2 * len(SAMPLE_PHOTOS))
def sample_top_ids(name: str, photo: str, k: int = 5) -> tuple[tuple[int, float], ...]:
    """`top_k_ids` of a bundled photo, once per process: most learners look at the same photos, and a
    server computes the first one's before it answers (studio.preload: a forward pass of 0.2-0.8 s
    on the 2-core box that a fresh server's first page waited for)."""
    return tuple(top_k_ids(imagenet_model(name), sample_photo(photo), k=k))


# ----------------------------------------------------------------------------- measuring the scaling

SCALINGS = {  # name -> (mean, std) applied to pixels in 0..1
    "imagenet mean/std": (backbones.IMAGENET_MEAN, backbones.IMAGENET_STD),
    "(x - 127) / 128": (backbones.LITE_MEAN, backbones.LITE_STD),
    "0..1, no normalisation": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
}


@torch.no_grad()
def measure_preprocessing(name: str = "efficientnet_lite0", *, size: int = 224) -> list[dict]:
    """For each candidate input scaling, on the bundled photos with an accepted answer:

    - accepted: photos whose top-1 is an accepted class;
    - p_accepted: mean probability the model puts on the accepted classes;
    - stem_bn_gap: how far the stem's pre-BatchNorm activations sit from the statistics
      the checkpoint's first BatchNorm saw in training, in standard deviations (mean over
      channels of |batch mean - running mean| / running std). The right scaling makes the
      photos look to the first layer like the data it was trained on.
    """
    model = imagenet_model(name, size)
    stem = model.groups["stem"]
    conv, bn = stem[0], stem[1]
    photos = [p for p in SAMPLE_PHOTOS if p.accept]
    images = torch.cat([to_input(sample_photo(p.name), size) for p in photos]).float() / 255
    rows = []
    for label, (mean, std) in SCALINGS.items():
        x = (images - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
        # (B, 3, S, S) -> the model minus its own normalisation
        logits = model.forward_from(x, 0)
        probs = logits.softmax(-1)
        top1 = probs.argmax(-1).tolist()
        accepted = sum(t in p.accept for t, p in zip(top1, photos))
        p_acc = float(np.mean([probs[i, list(p.accept)].sum().item() for i, p in enumerate(photos)]))
        pre_bn = conv(x)  # (B, 32, S/2, S/2)
        batch_mean = pre_bn.mean(dim=(0, 2, 3))
        gap = ((batch_mean - bn.running_mean).abs() / (bn.running_var + bn.eps).sqrt()).mean().item()
        rows.append(
            {
                "scaling": label,
                "accepted": accepted,
                "photos": len(photos),
                "p_accepted": round(p_acc, 3),
                "stem_bn_gap": round(gap, 3),
            }
        )
    return rows
