"""Transfer depth: accuracy against the number k of groups copied from the pretrained backbone (the
rest re-initialised), the copied groups left frozen ("frozen") or trained after all
("fine-tuned"): Yosinski et al. (2014) in small, run, summarised and written as
transfer_depth.csv/.json/.md.

Not for: the app's freeze-depth sweep, where every group starts pretrained and the first k are
frozen; the command line (cli).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from tlcore.core.spreadsheet import safe_frame
from tlcore.lab.experiments.results import provenance
from tlcore.models import catalog


@dataclass(frozen=True)
class TransferDepthSettings:
    dataset: str = "digits"
    per_class: int = 20
    val_per_class: int = 30
    seeds: tuple[int, ...] = (0, 1, 2)
    image_size: int = 32
    epochs: int = 20
    lr: float = 1e-3
    head_lr_mult: float = 10.0
    batch_size: int = 32
    backbone: str = "studio_resnet"
    device: str = "cpu"


def transfer_first_groups(backbone: str, num_classes: int, k: int, *, image_size: int, seed: int):
    """A model whose first k groups come from the pretrained backbone and the rest are
    freshly initialised (Yosinski et al.'s "copy the first n layers" network)."""
    torch.manual_seed(seed)
    fresh = catalog.build_model(backbone, num_classes, pretrained=False, image_size=image_size)
    if k == 0:
        return fresh
    model = catalog.build_model(backbone, num_classes, pretrained=True, image_size=image_size)
    for name in model.group_names[k:]:
        model.groups[name].load_state_dict(fresh.groups[name].state_dict())
    return model


def run_transfer_depth(settings: TransferDepthSettings, *, log=print) -> pd.DataFrame:
    """Accuracy against the number k = 0..(body groups) of groups transferred.

    The first k groups are copied from the pretrained backbone, the rest start random
    (as in Yosinski et al. 2014), and then either
    - "frozen": the copied groups stay frozen, only the fresh ones train
      (k = all is a linear probe), or
    - "fine-tuned": every group trains (k = all is a full fine-tune).
    k = 0 is training from scratch in both. The runs use the engine's own `fit` loop.
    """
    from tlcore.train import strategies
    from tlcore.train.device import pick_device
    from tlcore.train.image_batches import TensorSource
    from tlcore.train.trainer import FitOptions, fit, seed_everything

    device = pick_device(settings.device)
    groups = catalog.build_model(settings.backbone, 2, pretrained=False, image_size=settings.image_size).group_names
    opts = FitOptions(settings.epochs, settings.batch_size, "adamw", 1e-4)
    rows = []
    for seed in settings.seeds:
        data = catalog.load_dataset(
            settings.dataset,
            per_class=settings.per_class,
            image_size=settings.image_size,
            seed=seed,
            val_per_class=settings.val_per_class,
        )
        for k in range(len(groups)):
            for mode in ("frozen", "fine-tuned"):
                if k == 0 and mode == "fine-tuned":
                    rows.append({**rows[-1], "mode": mode})  # k = 0: nothing copied, the same run
                    continue
                generator = seed_everything(seed)
                model = transfer_first_groups(
                    settings.backbone, data.num_classes, k, image_size=settings.image_size, seed=seed
                ).to(device)
                depth = k if mode == "frozen" else 0
                plan = strategies.partial(groups, lr=settings.lr, head_lr_mult=settings.head_lr_mult, freeze_depth=depth)
                result = fit(
                    model,
                    plan,
                    TensorSource(data, device, "none"),
                    opts,
                    device=device,
                    emit=lambda _e: None,
                    generator=generator,
                    classes=tuple(data.classes),
                )
                rows.append(
                    {
                        "mode": mode,
                        "k": k,
                        "transferred": ", ".join(groups[:k]) or "-",
                        "seed": seed,
                        "val_acc": result.val_acc,
                    }
                )
                log(f"seed {seed} k={k} {mode:>10}: val/acc {result.val_acc:.3f}")
    return pd.DataFrame(rows)


def summarise_transfer_depth(runs: pd.DataFrame) -> pd.DataFrame:
    return (
        runs.groupby(["mode", "k"], sort=False)["val_acc"]
        .agg(["mean", "std"])
        .reset_index()
        .rename(columns={"mean": "val_acc_mean", "std": "val_acc_std"})
    )


def write_transfer_depth(
    runs: pd.DataFrame, settings: TransferDepthSettings, out_dir: Path, command: str, seconds: float, name: str = "transfer_depth"
) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    table = summarise_transfer_depth(runs)
    groups = catalog.build_model(settings.backbone, 2, pretrained=False, image_size=settings.image_size).group_names
    safe_frame(runs).to_csv(out_dir / f"{name}_runs.csv", index=False)
    safe_frame(table).to_csv(out_dir / f"{name}.csv", index=False)
    payload = {**provenance(command, seconds, settings), "groups": groups, "table": table.to_dict("records")}
    (out_dir / f"{name}.json").write_text(json.dumps(payload, indent=2, default=float) + "\n", encoding="utf-8")
    lines = [
        "# Transfer depth (Yosinski et al. 2014, in small)",
        "",
        f"`{settings.backbone}` on `{settings.dataset}`, {settings.per_class} per class, {settings.image_size} px, "
        f"seeds {', '.join(map(str, settings.seeds))}, {settings.epochs} epochs. The first k groups of "
        f"{', '.join(groups)} are copied from the pretrained backbone, the rest start random; "
        "'frozen' keeps the copied groups fixed, 'fine-tuned' trains them too. k = 0 is scratch; "
        "the last row frozen is a linear probe.",
        "",
        f"Made by `{command}` in {seconds / 60:.1f} min on {payload['device']} ({payload['created']}).",
        "",
        "| k | groups transferred | frozen (mean ± std) | fine-tuned (mean ± std) |",
        "|---:|---|---:|---:|",
    ]
    pivot = {(r.mode, r.k): r for r in table.itertuples()}
    for k in sorted(table["k"].unique()):
        fz, ft = pivot[("frozen", k)], pivot[("fine-tuned", k)]
        lines.append(
            f"| {k} | {', '.join(groups[:k]) or '- (scratch)'} "
            f"| {100 * fz.val_acc_mean:.1f} ± {100 * np.nan_to_num(fz.val_acc_std):.1f} "
            f"| {100 * ft.val_acc_mean:.1f} ± {100 * np.nan_to_num(ft.val_acc_std):.1f} |"
        )
    lines += ["", transfer_depth_reading(table, groups)]
    (out_dir / f"{name}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return payload


def transfer_depth_reading(table: pd.DataFrame, groups: list[str]) -> str:
    """One paragraph that reads the two curves (computed, so it stays true to the numbers)."""
    frozen = table[table["mode"] == "frozen"].set_index("k")["val_acc_mean"]
    tuned = table[table["mode"] == "fine-tuned"].set_index("k")["val_acc_mean"]
    best_k, last_k = int(frozen.idxmax()), int(frozen.index.max())
    text = f"Frozen transfer is best at k = {best_k} ({100 * frozen[best_k]:.1f}%, scratch {100 * frozen[0]:.1f}%). "
    if best_k < last_k:
        text += (
            f"Freezing {', '.join(groups[best_k:last_k])} as well costs {100 * (frozen[best_k] - frozen[last_k]):.1f} "
            "points: the deepest features are specific to the source task. "
        )
    text += (
        f"Fine-tuning after transferring all {last_k} groups reaches {100 * tuned[last_k]:.1f}% "
        f"({100 * (tuned[last_k] - frozen[last_k]):+.1f} points over keeping them frozen)."
    )
    return text
