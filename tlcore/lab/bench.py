"""`python -m tlcore bench`: our trainer against a tutorial-style reference loop, in one process.

The reference is written the way the PyTorch transfer-learning tutorial writes it: an
ImageFolder of image files read through a DataLoader with CPU transforms, `.item()` on the
loss every batch, and for feature extraction a forward pass through the frozen body on
every batch of every epoch. Both loops get the same model, the same images (written to a
temporary folder), the same epochs and batch size; both are timed from the image files
to the last evaluation, so our one-time decoding and feature caching are counted.
On a GPU, measure at --image-size 224.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from tlcore.core.commands import Command, Flags
from tlcore.core.fields import setting
from tlcore.core.spreadsheet import safe_frame
from tlcore.data import datasets
from tlcore.models import backbones, catalog
from tlcore.train import image_batches, precision, strategies, trainer
from tlcore.train.config import run_flags
from tlcore.train.device import describe_device, pick_device


def write_image_folder(data: datasets.ImageData, root: Path) -> None:
    """Save the training and validation images as PNG files, one folder per class (ImageFolder layout)."""
    from PIL import Image

    for split, xs, ys in (("train", data.train_x, data.train_y), ("val", data.val_x, data.val_y)):
        for i, (x, y) in enumerate(zip(xs, ys)):
            folder = root / split / data.classes[int(y)]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(x.permute(1, 2, 0).numpy()).save(folder / f"{i:05d}.png")


def reference_loop(
    model: backbones.GroupedModel,
    root: Path,
    *,
    epochs: int,
    batch_size: int,
    frozen: bool,
    device: torch.device,
    lr: float = 1e-3,
    workers: int | None = None,
) -> float:
    """The tutorial's train_model, condensed. Returns training images per second."""
    from torchvision import datasets as tvd
    from torchvision import transforms

    mean, std = model.mean.flatten().tolist(), model.std.flatten().tolist()
    tf = {
        "train": transforms.Compose([transforms.RandomHorizontalFlip(), transforms.ToTensor(), transforms.Normalize(mean, std)]),
        "val": transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)]),
    }
    image_sets = {s: tvd.ImageFolder(str(root / s), tf[s]) for s in ("train", "val")}
    workers = min(4, os.cpu_count() or 1) if workers is None else workers  # the tutorial uses 4
    loaders = {
        s: torch.utils.data.DataLoader(image_sets[s], batch_size=batch_size, shuffle=True, num_workers=workers)
        for s in ("train", "val")
    }
    net = nn.Sequential(*model.groups.values()).to(device)  # normalisation happens in the transforms
    if frozen:  # "ConvNet as fixed feature extractor": requires_grad off, only the new head in the optimiser
        for p in net.parameters():
            p.requires_grad = False
        for p in model.groups["head"].parameters():
            p.requires_grad = True
    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=lr, momentum=0.9)
    criterion = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for _ in range(epochs):
        for phase in ("train", "val"):
            net.train() if phase == "train" else net.eval()
            running_loss, running_corrects = 0.0, 0
            for inputs, labels in loaders[phase]:
                inputs, labels = inputs.to(device), labels.to(device)
                optimizer.zero_grad()
                with torch.set_grad_enabled(phase == "train"):
                    outputs = net(inputs)
                    _, preds = torch.max(outputs, 1)
                    loss = criterion(outputs, labels)
                    if phase == "train":
                        loss.backward()
                        optimizer.step()
                running_loss += loss.item() * inputs.size(0)  # a host sync every batch, as in the tutorial
                running_corrects += torch.sum(preds == labels.data).item()
    return len(image_sets["train"]) * epochs / (time.perf_counter() - start)


def ours(
    backbone: str,
    root: Path,
    *,
    epochs: int,
    batch_size: int,
    frozen: bool,
    image_size: int,
    device: torch.device,
    lr: float = 1e-3,
    channels_last: bool | None = None,
) -> tuple[float, dict]:
    """The studio's trainer on the same image files. Returns (training images per second, result).

    Like the reference, the model is built before the clock starts; decoding the files is timed.
    """
    train_files, val_files = datasets.folder_files(root / "train"), datasets.folder_files(root / "val")
    torch.manual_seed(0)
    model = catalog.build_model(backbone, len(train_files), pretrained=False, image_size=image_size)
    start = time.perf_counter()
    classes, train_x, train_y, _ = datasets.decode_files(train_files, image_size=image_size)
    _, val_x, val_y, _ = datasets.decode_files(val_files, image_size=image_size)
    data = datasets.ImageData(classes, train_x, torch.as_tensor(train_y), val_x, torch.as_tensor(val_y))
    groups = model.group_names
    plan = (
        strategies.linear_probe(groups, lr=lr, head_lr_mult=1.0) if frozen else strategies.full(groups, lr=lr, head_lr_mult=1.0)
    )
    channels_last = precision.prefers_channels_last(device) if channels_last is None else channels_last
    model = model.to(device, memory_format=torch.channels_last) if channels_last else model.to(device)
    source = image_batches.TensorSource(data, device, "flip", channels_last)
    opts = trainer.FitOptions(epochs, batch_size, "sgd", 0.0, log_every=10**9)
    result = trainer.fit(model, plan, source, opts, device=device, emit=lambda _e: None)
    n_train = source.n_train
    return n_train * epochs / (time.perf_counter() - start), result


def _folder_images(root: Path) -> tuple[int, int]:
    train = sum(1 for _ in (root / "train").rglob("*.png"))
    return train, sum(1 for _ in (root / "val").rglob("*.png"))


def bench(
    backbone: str,
    dataset: str,
    *,
    per_class: int,
    image_size: int,
    epochs: int,
    batch_size: int,
    device: torch.device,
    modes=("full", "linear_probe"),
    workers: int | None = None,
) -> list[dict]:
    data = catalog.load_dataset(dataset, per_class=per_class, image_size=image_size, seed=0, val_per_class=20)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_image_folder(data, root)
        n_train, n_val = _folder_images(root)
        for mode in modes:
            frozen = mode == "linear_probe"
            torch.manual_seed(0)
            ref_model = catalog.build_model(backbone, data.num_classes, pretrained=False, image_size=image_size)
            ref = reference_loop(
                ref_model, root, epochs=epochs, batch_size=batch_size, frozen=frozen, device=device, workers=workers
            )
            rate, result = ours(
                backbone, root, epochs=epochs, batch_size=batch_size, frozen=frozen, image_size=image_size, device=device
            )
            rows.append(
                {
                    "mode": mode,
                    "backbone": backbone,
                    "image_size": image_size,
                    "train_images": n_train,
                    "val_images": n_val,
                    "epochs": epochs,
                    "batch_size": batch_size,
                    "reference_img_s": ref,
                    "ours_img_s": rate,
                    "ratio": rate / ref,
                    "ours_val_acc": result.val_acc,
                }
            )
    return rows


def cmd_bench(args) -> int:
    import pandas as pd

    device = pick_device(args.device)
    mode = "bf16 autocast" if precision.use_bf16(device) else "fp32"
    print(f"device: {describe_device(device)}; torch {torch.__version__}; ours in {mode}, the tutorial loop in fp32")
    rows = bench(
        args.backbone,
        args.dataset,
        per_class=args.per_class,
        image_size=args.image_size,
        epochs=args.epochs,
        batch_size=args.batch_size,
        device=device,
        modes=[m.strip() for m in args.modes.split(",")],
        workers=args.workers,
    )
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    for row in rows:
        print(
            f"{row['mode']}: ours {row['ours_img_s']:.0f} img/s vs tutorial loop {row['reference_img_s']:.0f} img/s "
            f"= {row['ratio']:.2f}x"
        )
    if args.out:
        safe_frame(table).to_csv(args.out, index=False)
    return 0


@dataclass(frozen=True)
class BenchOptions:
    modes: str = setting("full,linear_probe", "full and/or linear_probe, comma-separated")
    workers: int | None = setting(None, "reference DataLoader workers (None: min(4, cores))", kind=int, lo=0, hi=256)
    out: str = setting("", "CSV file for the table")


BENCH = Command(
    "bench",
    "our trainer vs a tutorial-style loop: images/s and the ratio",
    cmd_bench,
    flags=(
        run_flags(
            only=("backbone", "dataset", "per_class", "image_size", "epochs", "batch_size", "device"),
            defaults={"backbone": "resnet18", "dataset": "digits", "per_class": 60, "image_size": 64},
        ),
        Flags(BenchOptions),
    ),
    description=__doc__,
    as_written=True,
)
