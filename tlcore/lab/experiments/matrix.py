"""The similarity x size matrix, measured: in each of four cells (a target similar / different from
the pretraining data, small / large) it races scratch, linear probe, partial (at the depth the rule
gives it in that column) and full fine-tuning over several seeds, through the same
``tlcore.train.recipe.run`` the app uses, and reads mean +- std val accuracy per cell against the
rule (``cell_verdicts``: whether the rule's own strategy and depth reach the best, within one seed std).

Not for: the files and Markdown a run writes (matrix_report), the command line (cli), training
loops (``tlcore.train.trainer``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from tlcore.models import catalog
from tlcore.train import strategies
from tlcore.train.config import RunConfig
from tlcore.train.recipe import run_or_raise

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
                result = run_or_raise(cfg, data)
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


def partial_depths(table: pd.DataFrame | list[dict]) -> dict[str, list[int]]:
    """The freeze depths partial was measured at, per similarity column: {"similar": [4], ...}."""
    rows = table.to_dict("records") if isinstance(table, pd.DataFrame) else table
    out: dict[str, list[int]] = {}
    for r in rows:
        if r["strategy"] == "partial" and int(r["freeze_depth"]) not in out.setdefault(r["similarity"], []):
            out[r["similarity"]].append(int(r["freeze_depth"]))
    return out
