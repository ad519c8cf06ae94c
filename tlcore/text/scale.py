"""`python -m tlcore text-scale`: how much does more pretraining text buy? Measured on 20 Newsgroups.

Three starting points for the same few-shot task (20 Newsgroups, 10 posts per class):

- random weights: studio_bert's architecture and vocabulary, no pretraining at all,
- studio_bert: this project's own small BERT, pretrained on ~4.5 million words (tlcore.text.pretrain),
- MiniLM (all-MiniLM-L6-v2, offline): distilled from a large BERT-family model trained on
  billions of words, then tuned on about a billion sentence pairs,

each with feature extraction (the body frozen, a linear head on its [CLS] vector: strategy
linear_probe) and full fine-tuning (every weight trained; from random weights that is strategy
scratch), over several seeds. Every run goes through tlcore.train.recipe.run, the app's code path;
each seed draws its own few-shot sample, and every model of a seed sees the same one.

Writes assets/results/<name>.json (settings, one row per run, the table) and <name>.md.

Not for: timing (tlcore.text.bench) or the pretraining itself (tlcore.text.pretrain).
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tlcore.core import commands
from tlcore.core.commands import Command, Flags
from tlcore.core.fields import setting
from tlcore.models import catalog
from tlcore.train.config import RunConfig, run_flags
from tlcore.train.recipe import run_or_raise

RESULTS = Path(__file__).resolve().parents[2] / "assets" / "results"

# (row key, backbone, pretrained?, words of pretraining text in words, for the table)
STARTS = (
    ("random", "studio_bert", False, "none (random weights)"),
    ("studio_bert", "studio_bert", True, "~4.5 million words (this project, half a CPU hour)"),
    ("minilm", "minilm_l6", True, "billions of words (BERT-family teacher) + 1 billion sentence pairs"),
)
# (column key, strategy with pretrained weights, strategy from random weights)
METHODS = (("features", "linear_probe", "linear_probe"), ("full", "full", "scratch"))


@dataclass(frozen=True)
class ScaleSettings:
    dataset: str = "newsgroups20"
    per_class: int = 10  # training posts per class (few-shot)
    val_per_class: int = 20  # held-out posts per class
    seeds: tuple[int, ...] = (0, 1, 2)
    max_length: int = 128  # word pieces kept per post
    batch_size: int = 16
    features_epochs: int = 30  # a linear head on cached features: cheap epochs
    full_epochs: int = 10
    lr: float = 1e-4  # body rate for full fine-tuning (the head gets head_lr_mult times more)
    head_lr_mult: float = 30.0
    scratch_lr: float = 1e-3  # from random weights every layer needs the larger rate

    def config(self, start: str, method: str, seed: int) -> RunConfig:
        _, backbone, pretrained, _ = next(s for s in STARTS if s[0] == start)
        _, with_weights, from_random = next(m for m in METHODS if m[0] == method)
        strategy = with_weights if pretrained else from_random
        scratch = strategy == "scratch"
        return RunConfig(
            task="text",
            backbone=backbone,
            pretrained="yes" if pretrained else "no",
            dataset=self.dataset,
            per_class=self.per_class,
            val_per_class=self.val_per_class,
            strategy=strategy,
            lr=self.scratch_lr if scratch else self.lr,
            head_lr_mult=1.0 if scratch else self.head_lr_mult,
            epochs=self.features_epochs if method == "features" else self.full_epochs,
            batch_size=self.batch_size,
            max_length=self.max_length,
            seed=seed,
        )


def run_scale(settings: ScaleSettings, *, starts: tuple[str, ...] = (), log=print) -> list[dict]:
    """One row per (seed, start, method): val_acc and seconds."""
    rows = []
    for seed in settings.seeds:
        data = catalog.load_dataset(
            settings.dataset, per_class=settings.per_class, val_per_class=settings.val_per_class, image_size=0, seed=seed
        )
        for start, *_ in STARTS:
            if starts and start not in starts:
                continue
            for method, *_ in METHODS:
                config = settings.config(start, method, seed)
                t0 = time.perf_counter()
                result = run_or_raise(config, data)
                row = {"seed": seed, "start": start, "method": method, "strategy": config.strategy}
                row |= {"val_acc": round(result.val_acc, 4), "seconds": round(time.perf_counter() - t0, 1)}
                rows.append(row)
                log(f"seed {seed}  {start:<12} {method:<9} val_acc {row['val_acc']:.3f}  {row['seconds']:.0f} s")
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    """One row per (start, method): mean, standard deviation, min and max of val_acc over seeds."""
    out = []
    for start, _, _, words in STARTS:
        for method, *_ in METHODS:
            accs = [r["val_acc"] for r in rows if r["start"] == start and r["method"] == method]
            if accs:
                sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
                out.append(
                    {
                        "start": start,
                        "method": method,
                        "pretraining": words,
                        "seeds": len(accs),
                        "mean": round(statistics.mean(accs), 4),
                    }
                    | {"sd": round(sd, 4), "min": min(accs), "max": max(accs)}
                )
    return out


def markdown(settings: ScaleSettings, table: list[dict], command: str) -> str:
    cell = {(r["start"], r["method"]): r for r in table}
    chance = 1 / 20
    lines = [
        f"# How much does pretraining buy? 20 Newsgroups, {settings.per_class} posts per class",
        "",
        f"Held-out accuracy on {settings.val_per_class} posts per class (20 classes, chance {chance:.0%}), mean ± standard "
        f"deviation over {len(settings.seeds)} seeds (min-max); each seed draws its own few-shot sample.",
        "",
        "| starting weights | pretraining text | feature extraction | full fine-tuning |",
        "|---|---|---:|---:|",
    ]
    for start, _, _, words in STARTS:
        cells = []
        for method, *_ in METHODS:
            r = cell.get((start, method))
            cells.append(f"{r['mean']:.1%} ± {r['sd']:.1%} ({r['min']:.0%}-{r['max']:.0%})" if r else "")
        lines.append(f"| {start} | {words} | {cells[0]} | {cells[1]} |")
    lines += ["", "Reproduce it:", "", "```", command, "```", ""]
    return "\n".join(lines)


def write(name: str, settings: ScaleSettings, rows: list[dict], command: str, folder: Path = RESULTS) -> dict:
    table = summarise(rows)
    out = {"settings": asdict(settings), "command": command, "rows": rows, "table": table}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    (folder / f"{name}.md").write_text(markdown(settings, table, command), encoding="utf-8")
    return out


def read(name: str = "text_scale", folder: Path = RESULTS) -> dict | None:
    path = folder / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def cmd_text_scale(args) -> int:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    settings = ScaleSettings(seeds=tuple(range(args.seeds)), per_class=args.per_class)
    rows = run_scale(settings, starts=tuple(args.starts))
    if args.merge and (old := read(args.name)):  # rows of other starts measured earlier (same settings)
        rows = [r for r in old["rows"] if r["start"] not in {x["start"] for x in rows}] + rows
    command = f"python -m tlcore text-scale --seeds {args.seeds} --per-class {args.per_class} --name {args.name}"
    out = write(args.name, settings, rows, command)
    print(markdown(settings, out["table"], command))
    return 0


@dataclass(frozen=True)
class TextScaleOptions:
    seeds: int = commands.seed_count(3)
    starts: tuple[str, ...] = setting((), "only these rows (none given: all)", tuple(s[0] for s in STARTS), kind=str, nargs="*")
    merge: bool = setting(False, "keep the other rows of an earlier run of the same name")
    threads: int = commands.threads(0)
    name: str = setting("text_scale", "results file stem: assets/results/<name>.json and .md")


TEXT_SCALE = Command(
    "text-scale",
    "random weights vs studio_bert vs MiniLM on 20 Newsgroups few-shot (how much pretraining buys)",
    cmd_text_scale,
    flags=(Flags(TextScaleOptions), run_flags(only=("per_class",), defaults={"per_class": ScaleSettings.per_class})),
    description=__doc__.split("\n\n")[0],
)
