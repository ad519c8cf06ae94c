"""`python -m tlcore forgetting`: the forgetting experiment behind assets/results/forgetting.

The default demo fine-tuned with a linear probe, partial and full fine-tuning, seed by seed;
each fine-tuned body scored with its original ImageNet head on offline ImageNet photos, before
and after. The measurement itself, which every image run also makes, is tlcore.train.forgetting.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tlcore.core import commands
from tlcore.core.commands import Command, Flags
from tlcore.core.fields import setting
from tlcore.core.spreadsheet import safe_frame
from tlcore.train import forgetting
from tlcore.train.config import run_flags

STRATEGIES = ("linear_probe", "partial", "full")


def experiment(base=None, *, seeds=(0, 1, 2), strategies=STRATEGIES, quiet: bool = True) -> list[dict]:
    """The default demo (tlcore.train.presets.image) once per strategy and seed: ImageNet photos
    recognised before and after, validation accuracy, and the seconds the measurement added."""
    from tlcore.core.progress import ProgressPrinter
    from tlcore.train import presets
    from tlcore.train.recipe import load_run_data, run

    base = base or presets.image()
    rows = []
    for seed in seeds:
        data = load_run_data(base.replace(seed=seed))
        for name in strategies:
            config = base.replace(strategy=name, seed=seed)
            result = run(config, ProgressPrinter(f"{name} seed {seed}", quiet=quiet), data=data)
            if result is None or "forgetting" not in result:
                raise RuntimeError(f"{name} seed {seed}: no forgetting measurement (did the run fail?)")
            f = result.forgetting
            rows.append(
                {
                    "strategy": name,
                    "seed": seed,
                    "val_acc": round(result.val_acc, 4),
                    "before": f["before"],
                    "after": f["after"],
                    "after_bn": f["after_bn"],
                    "photos": f["total"],
                    "measure_s": f["seconds"],
                    "run_s": round(result.seconds, 2),
                }
            )
    return rows


def summary(rows: list[dict]) -> list[dict]:
    """Per strategy: photos recognised before, after (mean and each seed), validation accuracy."""
    out = []
    for name in dict.fromkeys(r["strategy"] for r in rows):
        mine = [r for r in rows if r["strategy"] == name]
        out.append(
            {
                "strategy": name,
                "before": mine[0]["before"],
                "photos": mine[0]["photos"],
                "after_mean": round(float(np.mean([r["after"] for r in mine])), 1),
                "after_seeds": " / ".join(str(r["after"]) for r in mine),
                "after_bn_mean": round(float(np.mean([r["after_bn"] for r in mine])), 1),
                "after_bn_seeds": " / ".join(str(r["after_bn"]) for r in mine),
                "val_acc_mean": round(float(np.mean([r["val_acc"] for r in mine])), 3),
            }
        )
    return out


def cmd_forgetting(args) -> int:
    import json

    import pandas as pd

    from tlcore.train import presets

    base = presets.image().replace(device=args.device)
    seeds = args.seeds
    rows = experiment(base, seeds=seeds, quiet=False)
    table = pd.DataFrame(summary(rows))
    print(table.to_string(index=False))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        safe_frame(pd.DataFrame(rows)).to_csv(out.with_name(out.stem + "_runs.csv"), index=False)
        safe_frame(table).to_csv(out.with_suffix(".csv"), index=False)
        out.with_suffix(".json").write_text(
            json.dumps(
                {"config": base.to_dict(), "seeds": list(seeds), "photos": [p.name for p in forgetting.photos()]}, indent=1
            ),
            encoding="utf-8",
        )
        print(f"wrote {out.with_suffix('.csv')}, {out.stem}_runs.csv, {out.stem}.json")
    return 0


@dataclass(frozen=True)
class ForgettingOptions:
    seeds: tuple[int, ...] = commands.seeds((0, 1, 2))
    out: str = setting("", "results file stem, e.g. assets/results/forgetting (writes .csv, _runs.csv, .json)")


FORGETTING = Command(
    "forgetting",
    "ImageNet photos recognised before and after fine-tuning (the default demo)",
    cmd_forgetting,
    flags=(Flags(ForgettingOptions), run_flags(only=("device",))),
    description="Fine-tune the default demo with a linear probe, partial and full fine-tuning, and "
    "score each fine-tuned body with the original ImageNet head on offline ImageNet photos.",
)
