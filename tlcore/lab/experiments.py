"""Experiments that turn the lesson's claims into measurements.

- ``matrix``: the similarity x size matrix reproduced by experiment. In each of four
  cells (a target similar / different from the pretraining data, small / large) it races
  scratch, linear probe, partial (at the depth the rule gives it in that column) and full
  fine-tuning over several seeds, through the same ``tlcore.train.recipe.run`` the app uses, and
  reports mean +- std val accuracy, the best, and whether the rule's own strategy and depth
  reach it (within one seed std).
- ``transfer-depth``: accuracy against the number k of groups copied from the pretrained
  backbone (the rest re-initialised), the copied groups left frozen ("frozen") or trained
  after all ("fine-tuned"): Yosinski et al. (2014) in small. Not the app's freeze-depth
  sweep, where every group starts pretrained and the first k are frozen.
- ``first_layer_filters``: the stem's 3x3 filters of the pretrained backbone beside a
  random one, the "shallow layers learn general features" picture.

Results go to ``assets/results/`` as CSV, JSON and Markdown with the command that made
them; the app reads them from there.

Not for: training loops (``tlcore.train.trainer``) or pretraining (``tlcore.lab.pretrain_vision``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from tlcore.core.spreadsheet import safe_frame
from tlcore.models import catalog
from tlcore.train import strategies
from tlcore.train.config import RunConfig, add_config_args

RESULTS_DIR = Path(__file__).resolve().parents[2] / "assets" / "results"
MATRIX_STRATEGIES = ("scratch", "linear_probe", "partial", "full")

# What the seeds' matrix (source 004) says per cell, in words; the strategy and its freeze
# depth come from `strategies.recommend` for the measured backbone (the rule page 2 applies).
ADVICE = {
    ("similar", "small"): "freeze all conv layers, train the classifier",
    ("similar", "large"): "freeze most conv layers, fine-tune the rest",
    ("different", "small"): "freeze part of the conv layers",
    ("different", "large"): "train the whole model",
}


# How a measurement is read against it: one rule for every cell.
RULE = (
    "the recommended strategy, at the freeze depth the rule gives it, wins, or trails the winner by no more "
    "than the spread over seeds (one standard deviation of either, the ± beside each mean): at this many seeds "
    "that is a tie"
)


def rule_depth(strategy: str, similarity: str, num_groups: int) -> int:
    """Groups frozen at the start when the matrix races `strategy` in a `similarity` column:
    partial at the depth the rule gives partial in that column (the rule's k = body - 1 for
    similar data, body // 2 for different data), a linear probe the whole body, the rest none."""
    body = num_groups - 1
    if strategy == "linear_probe":
        return body
    if strategy != "partial":
        return 0
    recs = [strategies.recommend(similarity, size, num_groups) for size in ("small", "large")]
    return next(r.freeze_depth for r in recs if r.strategy == "partial")


@dataclass(frozen=True)
class MatrixSettings:
    """Everything a matrix run depends on; saved beside its results."""

    similar: str = "synthetic_novel"  # target similar to the synthetic pretraining data
    different: str = "digits"  # target different from it (real handwritten digits)
    small: int = 5  # training examples per class in a small cell
    large: int = 100  # ... in a large cell
    val_per_class: int = 30
    seeds: tuple[int, ...] = (0, 1, 2)
    strategies: tuple[str, ...] = MATRIX_STRATEGIES
    image_size: int = 32
    small_epochs: int = 30  # a small set needs many passes to take enough steps
    large_epochs: int = 8
    freeze_depth: int | None = None  # partial: groups frozen; None = the rule's depth per column (rule_depth)
    lr: float = 1e-3  # AdamW, pretrained body
    scratch_lr: float = 3e-3  # random init tolerates (and needs) a larger rate
    head_lr_mult: float = 10.0
    batch_size: int = 32
    backbone: str = "studio_resnet"
    device: str = "cpu"

    def cells(self) -> list[tuple[str, str, str, int]]:
        """(similarity, size, dataset, per_class) for the four cells."""
        return [
            (sim, size, ds, n)
            for sim, ds in (("similar", self.similar), ("different", self.different))
            for size, n in (("small", self.small), ("large", self.large))
        ]

    def groups(self) -> list[str]:
        """The backbone's layer groups, shallow to deep (the head last)."""
        return backbone_groups(self.backbone, self.image_size)

    def depth(self, strategy: str, similarity: str) -> int:
        """Groups frozen at the start for `strategy` in a `similarity` column."""
        if strategy == "partial" and self.freeze_depth is not None:
            return self.freeze_depth
        return rule_depth(strategy, similarity, len(self.groups()))

    def config(self, dataset: str, per_class: int, strategy: str, seed: int, similarity: str = "similar") -> RunConfig:
        small = per_class <= self.small
        return RunConfig(
            task="image",
            backbone=self.backbone,
            pretrained="yes" if strategy != "scratch" else "no",
            dataset=dataset,
            per_class=per_class,
            val_per_class=self.val_per_class,
            image_size=self.image_size,
            strategy=strategy,
            freeze_depth=self.depth(strategy, similarity),
            lr=self.scratch_lr if strategy == "scratch" else self.lr,
            head_lr_mult=self.head_lr_mult,
            epochs=self.small_epochs if small else self.large_epochs,
            batch_size=self.batch_size,
            optimizer="adamw",
            augment="none" if "digits" in dataset else "flip",  # a flipped digit is another glyph
            seed=seed,
            device=self.device,
        )


def backbone_groups(backbone: str, image_size: int | None = None) -> list[str]:
    """A backbone's layer group names (from a randomly initialised copy: no weights needed)."""
    return catalog.build_model(backbone, 2, pretrained=False, image_size=image_size).group_names


def _run_quiet(config: RunConfig, data=None) -> dict:
    """One run through the app's code path; raises if it failed (an experiment must not hide it)."""
    from tlcore.core.events import Failed
    from tlcore.train.recipe import run

    failures = []
    result = run(config, lambda e: failures.append(e.message) if isinstance(e, Failed) else None, data=data)
    if result is None:
        raise RuntimeError(f"run failed: {failures[-1] if failures else 'cancelled'} ({config.to_cli()})")
    return result


def run_matrix(settings: MatrixSettings, *, cells: tuple[str, ...] = (), log=print) -> pd.DataFrame:
    """One row per (cell, strategy, seed): similarity, size, dataset, per_class, strategy,
    freeze_depth (groups frozen at the start), seed, val_acc, seconds. `cells` ("different/small", ...) limits the run to some cells."""
    rows = []
    for sim, size, dataset, per_class in settings.cells():
        if cells and f"{sim}/{size}" not in cells:
            continue
        for seed in settings.seeds:
            # Every strategy of a cell and seed sees exactly the same examples.
            data = catalog.load_dataset(
                dataset, per_class=per_class, image_size=settings.image_size, seed=seed, val_per_class=settings.val_per_class
            )
            for strategy in settings.strategies:
                cfg = settings.config(dataset, per_class, strategy, seed, sim)
                result = _run_quiet(cfg, data)
                rows.append(
                    {
                        "similarity": sim,
                        "size": size,
                        "dataset": dataset,
                        "per_class": per_class,
                        "strategy": strategy,
                        "freeze_depth": cfg.freeze_depth,
                        "seed": seed,
                        "val_acc": result.val_acc,
                        "seconds": result.seconds,
                    }
                )
                log(
                    f"{sim:>9} {size:>5} {dataset:>16} seed {seed} {strategy:>12} k={cfg.freeze_depth}: "
                    f"val/acc {result.val_acc:.3f} ({result.seconds:.1f} s)"
                )
    return pd.DataFrame(rows)


def summarise_matrix(runs: pd.DataFrame) -> pd.DataFrame:
    """Per cell, strategy and freeze depth: mean and std of val accuracy over seeds, and the
    cell's winner. `runs` needs a freeze_depth column (`with_depths` adds it to older runs)."""
    keys = ["similarity", "size", "dataset", "per_class", "strategy", "freeze_depth"]
    table = runs.groupby(keys, sort=False)["val_acc"].agg(["mean", "std", "count"]).reset_index()
    table = table.rename(columns={"mean": "val_acc_mean", "std": "val_acc_std", "count": "seeds"})
    best = table.groupby(["similarity", "size"], sort=False)["val_acc_mean"].transform("max")
    table["winner"] = table["val_acc_mean"] == best
    return table


def with_depths(runs: pd.DataFrame, settings: dict) -> pd.DataFrame:
    """Runs saved before each run recorded its freeze depth: add it from the settings they
    were made with (then one freeze_depth for partial in every cell)."""
    if "freeze_depth" in runs.columns:
        return runs
    body = len(backbone_groups(settings["backbone"], settings["image_size"])) - 1
    partial = settings["freeze_depth"]
    depth = {"linear_probe": body, "partial": partial}
    runs = runs.copy()
    runs.insert(runs.columns.get_loc("strategy") + 1, "freeze_depth", [depth.get(s, 0) for s in runs["strategy"]])
    return runs


def cell_verdicts(table: pd.DataFrame, *, num_groups: int) -> list[dict]:
    """Per cell: the winner, what the rule (`strategies.recommend` for a backbone of
    `num_groups` groups) recommends, and whether the measurement agrees by RULE.

    Outcomes are compared, not names: "agrees" when the accuracy of the recommended strategy
    *at the rule's freeze depth* is the best, or within one seed std of the best (a tie). A
    cell where that configuration was not measured (partial raced at another depth) does not
    agree: "measured" is False and the numbers say nothing about the rule."""
    out = []
    for (sim, size), cell in table.groupby(["similarity", "size"], sort=False):
        rule = strategies.recommend(sim, size, num_groups)
        expected = (rule.strategy, rule.freeze_depth)
        rows = {
            (r.strategy, int(r.freeze_depth)): (r.val_acc_mean, r.val_acc_std if r.val_acc_std == r.val_acc_std else 0.0)
            for r in cell.itertuples()
        }
        # the best outcome; on an exact tie the rule's own configuration is named
        winner = max(rows, key=lambda k: (rows[k][0], k == expected))
        measured = expected in rows
        gap = rows[winner][0] - rows[expected][0] if measured else float("inf")
        agrees = measured and gap <= max(rows[winner][1], rows[expected][1])
        pretrained = [m for (s, _), (m, _) in rows.items() if s != "scratch"]
        scratch = [m for (s, _), (m, _) in rows.items() if s == "scratch"]
        out.append(
            {
                "similarity": sim,
                "size": size,
                "winner": winner[0],
                "winner_depth": winner[1],
                "winner_acc": rows[winner][0],
                "winner_std": rows[winner][1],
                "expected": rule.strategy,
                "expected_depth": rule.freeze_depth,
                "advice": ADVICE[(sim, size)],
                "measured": measured,
                "agrees": agrees,
                "tie": agrees and winner != expected,
                "expected_acc": rows[expected][0] if measured else None,
                "expected_std": rows[expected][1] if measured else None,
                "transfer_gain": max(pretrained) - scratch[0] if scratch else None,
                "spread": max(pretrained) - min(pretrained),
            }
        )
    return out


# --------------------------------------------------------------------------- sweep


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
    from tlcore.data.sources import TensorSource
    from tlcore.train import strategies
    from tlcore.train.device import pick_device
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


# --------------------------------------------------------------------------- filters


def first_layer_filters(*, pretrained: bool = True, backbone: str = "studio_resnet") -> np.ndarray:
    """The stem's first conv filters as RGB tiles: (num_filters, k, k, 3) float in [0, 1].

    Each filter is scaled on its own (symmetric around grey), so its pattern shows, not
    its size. With pretrained=False the same architecture starts from a fixed random init.
    """
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


# --------------------------------------------------------------------------- writing results


def _provenance(command: str, seconds: float, settings) -> dict:
    from tlcore.lab.pretrain_vision import read_card
    from tlcore.train.device import describe_device

    card = (read_card() or {}) if settings.backbone == "studio_resnet" else {}
    return {
        "command": command,
        "seconds": round(seconds, 1),
        "device": describe_device(torch.device(settings.device)),
        "torch_version": torch.__version__,
        "checkpoint_sha256": card.get("file", {}).get("sha256"),
        "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "settings": asdict(settings),
    }


def write_matrix(
    runs: pd.DataFrame, settings: MatrixSettings, out_dir: Path, command: str, seconds: float, name: str = "matrix"
) -> dict:
    """Write <name>.csv (summary), <name>_runs.csv (every run), <name>.json and <name>.md.

    The JSON says what was measured: the backbone and image size (in "settings"), its layer
    groups ("groups"), and each row's freeze depth (in "table" and "runs")."""
    out_dir.mkdir(parents=True, exist_ok=True)
    groups = settings.groups()
    table = summarise_matrix(runs)
    verdicts = cell_verdicts(table, num_groups=len(groups))
    safe_frame(runs).to_csv(out_dir / f"{name}_runs.csv", index=False)
    safe_frame(table).to_csv(out_dir / f"{name}.csv", index=False)
    payload = {
        **_provenance(command, seconds, settings),
        "groups": groups,
        "table": table.to_dict("records"),
        "verdicts": verdicts,
        "runs": runs.to_dict("records"),
    }
    (out_dir / f"{name}.json").write_text(json.dumps(payload, indent=2, default=float) + "\n", encoding="utf-8")
    (out_dir / f"{name}.md").write_text(matrix_markdown(table, verdicts, payload), encoding="utf-8")
    return payload


def _pretrained_on(backbone: str) -> str:
    if catalog.backbone(backbone).pretrained_on == "synthetic":
        return "pretrained offline on synthetic procedural images, not ImageNet"
    return "pretrained on ImageNet"


def partial_depths(table: pd.DataFrame | list[dict]) -> dict[str, list[int]]:
    """The freeze depths partial was measured at, per similarity column: {"similar": [4], ...}."""
    rows = table.to_dict("records") if isinstance(table, pd.DataFrame) else table
    out: dict[str, list[int]] = {}
    for r in rows:
        if r["strategy"] == "partial" and int(r["freeze_depth"]) not in out.setdefault(r["similarity"], []):
            out[r["similarity"]].append(int(r["freeze_depth"]))
    return out


def _matrix_table(table: pd.DataFrame) -> list[str]:
    """One row per cell, one column per strategy: mean ± std over seeds, the winners in bold."""
    lines = []
    strategies = list(dict.fromkeys(table["strategy"]))
    lines += ["| cell | dataset | " + " | ".join(strategies) + " | winner |", "|---|---|" + "---:|" * len(strategies) + "---|"]
    for (sim, size), cell in table.groupby(["similarity", "size"], sort=False):
        first = cell.iloc[0]
        cells = []
        for st in strategies:
            texts = []
            for r in cell[cell["strategy"] == st].itertuples():
                text = f"{100 * r.val_acc_mean:.1f} ± {100 * (r.val_acc_std if r.val_acc_std == r.val_acc_std else 0):.1f}"
                text += f" (k={r.freeze_depth})" if st == "partial" else ""
                texts.append(f"**{text}**" if r.winner else text)
            cells.append("<br>".join(texts))
        winner = ", ".join(cell.loc[cell["winner"], "strategy"])  # equal means: every best one
        lines.append(f"| {sim} + {size} ({first.per_class}/class) | {first.dataset} | " + " | ".join(cells) + f" | {winner} |")
    return lines


def _verdict_line(v: dict) -> str:
    """One cell's verdict against the seeds' matrix, as a Markdown list item."""
    mark = (
        ("agrees (a tie within the seeds' spread)" if v.get("tie") else "agrees")
        if v["agrees"]
        else "**does not agree**"
        if v.get("measured", True)
        else f"**not measured**: the rule's {v['expected']} at k={v['expected_depth']} was not raced"
    )
    return (
        f"- {v['similarity']} + {v['size']}: the matrix says *{v['advice']}* ({v['expected']}, "
        f"k={v['expected_depth']}, {_pm(v['expected_acc'], v.get('expected_std'))}); measured winner "
        f"**{v['winner']}** (k={v['winner_depth']}, {_pm(v['winner_acc'], v.get('winner_std'))}): {mark}. "
        + (
            f"Best pretrained strategy vs scratch: {100 * v['transfer_gain']:+.1f} points."
            if v["transfer_gain"] is not None
            else ""
        )
        + (
            f" The pretrained strategies lie within {100 * v['spread']:.1f} points of each other: "
            "this target is too easy at this size to tell them apart."
            if v["spread"] < 0.015
            else ""
        )
    )


def matrix_markdown(table: pd.DataFrame, verdicts: list[dict], meta: dict) -> str:
    s = meta["settings"]
    depths = "; ".join(f"{sim}: k = {', '.join(map(str, ks))}" for sim, ks in partial_depths(table).items())
    lines = [
        "# The transfer matrix, measured",
        "",
        f"Backbone `{s['backbone']}` ({_pretrained_on(s['backbone'])}), "
        f"{s['image_size']} px, seeds {', '.join(map(str, s['seeds']))}; val accuracy, mean ± std over seeds "
        f"({s['val_per_class']} validation images per class). Partial = the first k of "
        f"{len(meta['groups'])} groups ({', '.join(meta['groups'])}) frozen ({depths}); "
        f"a linear probe freezes all {len(meta['groups']) - 1} body groups.",
        "",
        f"Made by `{meta['command']}` in {meta['seconds'] / 60:.1f} min on {meta['device']} ({meta['created']}).",
        "",
    ]
    lines += _matrix_table(table)
    lines += ["", "## Against the seeds' matrix", ""]
    lines += [f"Rule: {RULE}.", ""]
    lines += [_verdict_line(v) for v in verdicts]
    if not all(v["agrees"] for v in verdicts):
        lines += [
            "",
            "A cell that does not follow the matrix is a lesson too. The matrix is a rule of thumb "
            "for large backbones pretrained on large photo collections; here the backbone is small"
            + (", its source is synthetic" if catalog.backbone(s["backbone"]).pretrained_on == "synthetic" else "")
            + ", and each run gets a few epochs on a few examples per class. With so few examples, "
            "training fewer weights (a linear probe) over-fits least; the closer the target is to the "
            "source, the longer freezing stays the best choice.",
        ]
    return "\n".join(lines) + "\n"


def _pm(mean: float | None, std: float | None) -> str:
    """'94.9 ± 1.4%': a mean with its spread over seeds, in percent."""
    if mean is None:
        return "not measured"
    return f"{100 * mean:.1f} ± {100 * std:.1f}%" if std is not None and std == std else f"{100 * mean:.1f}%"


def resummarise_matrix(name: str = "matrix", out_dir: Path | str = RESULTS_DIR) -> dict:
    """Rewrite <name>.csv/.json/.md from the committed <name>_runs.csv, keeping how and when
    the runs were made (no training): for when the reading of the runs changes, not the runs."""
    out_dir = Path(out_dir)
    old = json.loads((out_dir / f"{name}.json").read_text(encoding="utf-8"))
    settings = old["settings"]
    runs = with_depths(pd.read_csv(out_dir / f"{name}_runs.csv"), settings)
    groups = old.get("groups") or backbone_groups(settings["backbone"], settings["image_size"])
    table = summarise_matrix(runs)
    verdicts = cell_verdicts(table, num_groups=len(groups))
    safe_frame(runs).to_csv(out_dir / f"{name}_runs.csv", index=False)
    safe_frame(table).to_csv(out_dir / f"{name}.csv", index=False)
    keep = {k: v for k, v in old.items() if k not in ("groups", "table", "verdicts", "runs")}
    payload = {**keep, "groups": groups, "table": table.to_dict("records"), "verdicts": verdicts, "runs": runs.to_dict("records")}
    (out_dir / f"{name}.json").write_text(json.dumps(payload, indent=2, default=float) + "\n", encoding="utf-8")
    (out_dir / f"{name}.md").write_text(matrix_markdown(table, verdicts, payload), encoding="utf-8")
    return payload


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
    payload = {**_provenance(command, seconds, settings), "groups": groups, "table": table.to_dict("records")}
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


def read_results(name: str, out_dir: Path | str = RESULTS_DIR) -> dict | None:
    """A committed result ("matrix", "transfer_depth", ...) as saved in its JSON, or None if missing.

    For the app: ``read_results("matrix")["table"]`` is the per-cell, per-strategy table,
    ``["verdicts"]`` the comparison with the seeds' matrix, ``["command"]`` how it was made.
    """
    path = Path(out_dir) / f"{name}.json"
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- CLI


def _seeds(text: str) -> tuple[int, ...]:
    return tuple(int(s) for s in text.split(",") if s.strip())


def register_cli(subparsers) -> None:
    """The lab's experiments on the command line: matrix, transfer-depth, filters."""
    _register_matrix(subparsers)
    _register_transfer_depth(subparsers)
    p = subparsers.add_parser(
        "filters",
        help="first-layer filters, pretrained vs random, as a PNG",
        description="Draw the first-layer filters of --backbone's stem, pretrained and randomly initialised, as one PNG.",
    )
    p.add_argument("--out", default=str(RESULTS_DIR / "filters.png"), help="PNG path (default %(default)s)")
    add_config_args(p, only=("backbone",), defaults={"backbone": "studio_resnet"})
    p.set_defaults(func=lambda args: print(f"wrote {filters_image(args.out, backbone=args.backbone)}") or 0)


def _register_matrix(subparsers) -> None:
    d = MatrixSettings()
    p = subparsers.add_parser(
        "matrix",
        help="reproduce the similarity x size matrix by experiment",
        description="Race scratch, linear probe, partial and full fine-tuning in the four "
        "cells (similar/different x small/large) over several seeds. Without --freeze-depth, partial "
        "freezes the rule's depth for each column (strategies.recommend for this backbone).",
    )
    p.add_argument("--similar", default=d.similar, help="target similar to the pretraining data (default %(default)s)")
    p.add_argument("--different", default=d.different, help="target different from it (default %(default)s)")
    p.add_argument("--small", type=int, default=d.small, help="examples per class, small cells (default %(default)s)")
    p.add_argument("--large", type=int, default=d.large, help="examples per class, large cells (default %(default)s)")
    p.add_argument("--seeds", default="0,1,2", help="which seeds, a comma-separated list (default %(default)s)")
    p.add_argument("--small-epochs", type=int, default=d.small_epochs, help="epochs in small cells")
    p.add_argument("--large-epochs", type=int, default=d.large_epochs, help="epochs in large cells")
    p.add_argument("--cells", default="", help="only these cells, e.g. different/small,similar/large (default: all four)")
    add_config_args(
        p,
        only=("backbone", "val_per_class", "image_size", "freeze_depth", "device"),
        defaults={
            "backbone": d.backbone,
            "val_per_class": d.val_per_class,
            "image_size": d.image_size,
            "freeze_depth": d.freeze_depth,  # None: the rule's depth for each column
            "device": d.device,
        },
    )
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="CPU threads for torch, 0 = torch's default (default: %(default)s; 1 is faster on a busy machine)",
    )
    p.add_argument("--out", default=str(RESULTS_DIR), help="folder for the results (default %(default)s)")
    p.add_argument("--name", default="matrix", help="file stem: <name>.csv/.json/.md (default %(default)s)")
    p.add_argument(
        "--resummarise",
        action="store_true",
        help="train nothing: rewrite <name>.csv/.json/.md from the committed <name>_runs.csv",
    )
    p.set_defaults(func=_cli_matrix)


def _register_transfer_depth(subparsers) -> None:
    s = TransferDepthSettings()
    p = subparsers.add_parser(
        "transfer-depth",
        help="accuracy against the number of groups transferred (Yosinski et al. 2014, in small)",
        description="Copy the first k groups of the pretrained backbone and re-initialise the rest, for k = 0..all; "
        "the copied groups frozen, or fine-tuned too. (The app's freeze-depth sweep is different: "
        "every group starts pretrained and the first k are frozen.)",
    )
    add_config_args(
        p,
        only=("backbone", "dataset", "per_class", "image_size", "epochs", "device"),
        defaults={
            "backbone": s.backbone,
            "dataset": s.dataset,
            "per_class": s.per_class,
            "image_size": s.image_size,
            "epochs": s.epochs,
            "device": s.device,
        },
    )
    p.add_argument("--seeds", default="0,1,2", help="which seeds, a comma-separated list (default %(default)s)")
    p.add_argument("--name", default="transfer_depth", help="file stem: <name>.csv/.json/.md (default %(default)s)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch, 0 = torch's default (default: %(default)s)")
    p.add_argument("--out", default=str(RESULTS_DIR), help="folder for <name>.csv/.json/.md")
    p.set_defaults(func=_cli_transfer_depth)


def _command() -> str:
    return shlex.join(["python", "-m", "tlcore", *sys.argv[1:]])


def _set_threads(threads: int) -> None:
    if threads:
        # This process only (a CLI run): on a shared CPU, fewer threads wait less on each other.
        torch.set_num_threads(threads)


def _cli_matrix(args: argparse.Namespace) -> int:
    if args.resummarise:
        payload = resummarise_matrix(args.name, args.out)
        print(matrix_markdown(pd.DataFrame(payload["table"]), payload["verdicts"], payload))
        return 0
    _set_threads(args.threads)
    settings = MatrixSettings(
        similar=args.similar,
        different=args.different,
        small=args.small,
        large=args.large,
        val_per_class=args.val_per_class,
        seeds=_seeds(args.seeds),
        small_epochs=args.small_epochs,
        large_epochs=args.large_epochs,
        device=args.device,
        backbone=args.backbone,
        image_size=args.image_size,
        freeze_depth=args.freeze_depth,
    )
    start = time.perf_counter()
    runs = run_matrix(settings, cells=tuple(c.strip() for c in args.cells.split(",") if c.strip()))
    payload = write_matrix(runs, settings, Path(args.out), _command(), time.perf_counter() - start, args.name)
    print(matrix_markdown(summarise_matrix(runs), payload["verdicts"], payload))
    return 0


def _cli_transfer_depth(args: argparse.Namespace) -> int:
    _set_threads(args.threads)
    settings = TransferDepthSettings(
        dataset=args.dataset,
        per_class=args.per_class,
        seeds=_seeds(args.seeds),
        epochs=args.epochs,
        device=args.device,
        backbone=args.backbone,
        image_size=args.image_size,
    )
    start = time.perf_counter()
    runs = run_transfer_depth(settings)
    write_transfer_depth(runs, settings, Path(args.out), _command(), time.perf_counter() - start, args.name)
    print((Path(args.out) / f"{args.name}.md").read_text(encoding="utf-8"))
    return 0


# --------------------------------------------------------------------------- what transfers where

# (results file, cell) pairs behind "synthetic pretraining transfers to similar synthetic
# targets and much less to real photos; ImageNet pretraining transfers to real photos".
CONTRAST = (
    ("matrix", ("similar", "small")),  # studio_resnet -> unseen synthetic classes
    ("matrix_synthetic_fashion", ("different", "small")),  # studio_resnet -> real Fashion-MNIST
    ("matrix_imagenet_small", ("different", "small")),  # EfficientNet-Lite0 -> real Fashion-MNIST
)


def transfer_contrast(out_dir: Path | str = RESULTS_DIR) -> list[dict]:
    """One row per committed measurement: backbone, target, examples per class, scratch,
    the best pretrained strategy, and its gain over scratch (points). Missing files are skipped."""
    rows = []
    for name, (sim, size) in CONTRAST:
        payload = read_results(name, out_dir)
        if not payload:
            continue
        cell = [r for r in payload["table"] if (r["similarity"], r["size"]) == (sim, size)]
        if not cell:
            continue
        means = {r["strategy"]: r["val_acc_mean"] for r in cell}
        best = max((s for s in means if s != "scratch"), key=means.get)
        rows.append(
            {
                "backbone": payload["settings"]["backbone"],
                "dataset": cell[0]["dataset"],
                "per_class": cell[0]["per_class"],
                "scratch": means["scratch"],
                "best": best,
                "best_acc": means[best],
                "gain_points": 100 * (means[best] - means["scratch"]),
                "seeds": cell[0]["seeds"],
                "file": name,
            }
        )
    return rows
