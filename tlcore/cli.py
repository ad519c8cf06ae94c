"""`python -m tlcore <command>`: the engine from a terminal, same configs, same events.

One convention for every command:
1. The module that holds a command defines `register_cli(subparsers)`, which adds its own
   commands only (`add_parser`, then `set_defaults(func=...)` with a function of that
   module), and is listed once in COMMAND_MODULES. This module is the first: finetune,
   compare, prefetch, class-experiment, list and settings.
2. A flag that is a RunConfig field is declared only through `add_config_args(parser,
   only=(...), defaults={...})`: its help, type, range and choices are the field's, only the
   default may be the command's own. A dataclass of a command's own (pretrain's
   PretrainConfig, pretrain-text's MlmConfig) becomes flags through the same helper,
   tlcore.core.fields.add_flags.
3. Other flags keep one spelling for one meaning: --out (where results go), --threads (CPU
   threads for torch, 0 = torch's default), --seeds (a count or a comma-separated list:
   each command's help says which).
A bad setting is one `error: ...` line and exit code 2 (`main`), not a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from tlcore.core import settings
from tlcore.core.events import History
from tlcore.core.progress import ProgressPrinter
from tlcore.core.spreadsheet import safe_cell, safe_frame
from tlcore.data import datasets
from tlcore.models import backbones, catalog
from tlcore.train import presets
from tlcore.train.config import RunConfig, add_config_args, config_from_args
from tlcore.train.recipe import load_run_data, run

COMMAND_MODULES = [
    "tlcore.cli",  # finetune, compare, prefetch, class-experiment, list, settings
    "tlcore.lab.bench",
    "tlcore.text.cli",
    "tlcore.text.bench",
    "tlcore.text.pretrain",
    "tlcore.text.scale",
    "tlcore.lab.pretrain_vision",
    "tlcore.lab.experiments.cli",
    "tlcore.train.time_estimate",
    "tlcore.serve.store.cli",
    "tlcore.lab.upload_bench",
    "tlcore.takehome.model_files",
    "tlcore.takehome.notebook",
    "tlcore.lab.forgetting_experiment",
]  # every module with a register_cli(subparsers), once each; `python -m tlcore --help` lists in this order


def _split_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


# ----------------------------------------------------------------------------- commands


def cmd_finetune(args) -> int:
    config = config_from_args(args)
    history, printer = History(config.to_dict()), ProgressPrinter(config.strategy)
    result = run(config, lambda e: (history.append(e), printer(e)))
    if result is None:
        return 1
    print(
        f"val/acc {result.val_acc:.4f}  best {result.best_val_acc:.4f}  "
        f"seconds {result.seconds:.1f}  examples_per_s {result.examples_per_s:.0f}"
    )
    if result.forgetting:
        f = result.forgetting
        print(f"ImageNet photos recognised through the old head: {f['before']}/{f['total']} pretrained, {f['after']} now")
    if args.save_model:
        from tlcore.takehome import model_files as takehome  # here: its file formats load only for --save-model

        sizes = takehome.save(result.model.on_cpu(), args.save_model, metrics=result)  # no server: the run's own model
        print(f"wrote {args.save_model}: " + ", ".join(f"{name} {size / 2**20:.1f} MB" for name, size in sizes.items()))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        snap = history.snapshot()
        snap.to_csv(out / "history.csv")
        snap.to_json(out / "history.json")
        (out / "config.json").write_text(config.to_json(), encoding="utf-8")
        print(f"wrote {out}/history.csv, history.json, config.json")
    return 0


def compare(base: RunConfig, strategies: list[str], *, quiet: bool = False) -> list[dict]:
    """Run several strategies on the same data and seed; one row per strategy."""
    data = load_run_data(base)  # load once: every strategy sees exactly the same examples
    rows = []
    for name in strategies:
        config = base.replace(strategy=name)
        printer = ProgressPrinter(name, quiet=quiet)
        result = run(config, printer, data=data)
        row = {"strategy": name, "val_acc": None, "best_val_acc": None, "seconds": None, "trainable_params": None}
        if result:
            row.update(
                {k: getattr(result, k) for k in ("val_acc", "best_val_acc", "seconds", "trainable_params", "total_params")}
            )
            row["examples_per_s"] = result.examples_per_s
        else:
            row["error"] = next((getattr(e, "message", "") for e in printer.history[::-1]), "cancelled")
        rows.append(row)
    return rows


def cmd_compare(args) -> int:
    import pandas as pd

    base = config_from_args(args)
    names = _split_list(args.strategies)
    for n in names:  # validate every name before spending any time
        base.replace(strategy=n)
    table = pd.DataFrame(compare(base, names))
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        safe_frame(table).to_csv(args.out, index=False)  # an error message is text
        print(f"wrote {args.out}")
    return 0 if "error" not in table else 1


def cmd_prefetch(args) -> int:
    failures = 0
    for name in _split_list(args.backbones):
        try:
            spec = catalog.backbone(name)
            if spec.family == "text":
                from tlcore.text.bert import prefetch_text  # here: it imports transformers

                print(prefetch_text([name]))
            elif spec.pretrained_on == "synthetic":
                print(f"{name}: ships in assets/, nothing to fetch")
            else:
                backbones.load_imagenet_state(spec)
                print(f"{name}: cached at {backbones.weights_path(spec)}")
        except (backbones.WeightsUnavailable, ValueError, OSError) as e:
            failures += 1
            print(f"{name}: {e}", file=sys.stderr)
    for name in _split_list(args.datasets):
        try:
            print(catalog.prefetch_dataset(name))
        except (datasets.DatasetUnavailable, ValueError, OSError, RuntimeError) as e:
            failures += 1
            print(f"{name}: {e}", file=sys.stderr)
    return 1 if failures else 0


def cmd_settings(_args) -> int:
    print(settings.table())
    set_now = [s for s in settings.SETTINGS if settings.raw(s.name)]
    print("\nset now:" if set_now else "\nnone set now: every default holds")
    for s in set_now:
        shown = "(set, not shown)" if "SECRET" in s.name and "FILE" not in s.name else repr(settings.get(s.name))
        print(f"  {s.name} = {shown}")
    return 0


def cmd_list(_args) -> int:
    print("backbones:")
    for name in catalog.backbone_names():
        spec = catalog.backbone(name)
        print(f"  {name:<24} {spec.family:<6} {spec.title}  [{'cached' if catalog.weights_cached(name) else 'not cached'}]")
    print("datasets:")
    for name in catalog.dataset_names():
        spec = catalog.dataset(name)
        sims = ", ".join(f"{k}: {v}" for k, v in spec.similarity.items())
        print(f"  {name:<18} {spec.task:<5} {spec.kind:<11} {spec.title}  ({sims})")
    return 0


def _preset_defaults() -> dict:
    return {k: v for k, v in presets.image().to_dict().items() if k != "seed"}


def cmd_class_experiment(args) -> int:
    import csv
    import statistics

    from tlcore.serve import classroom  # here: the class server's package, for this one command

    factor = args.factor
    if factor not in classroom.FACTORS:
        raise ValueError(f"unknown factor {factor!r}; known: {', '.join(classroom.FACTORS)}")
    base = config_from_args(args, seed=0)
    kind = type(getattr(base, factor))
    levels = [kind(v) for v in _split_list(args.levels)] if args.levels else list(classroom.FACTORS[factor].first(base))
    offered = classroom.FACTORS[factor].options(base)
    if any(lv not in offered for lv in levels):
        raise ValueError(f"levels of {factor} must be among {', '.join(map(str, offered))}")

    def progress(exp, cell: int) -> None:
        c = exp.cells[cell]
        acc = f"{100 * c.result.acc:.1f}%" if c.result else "failed"
        print(f"cell {cell + 1}/{len(exp.cells)}: {factor}={exp.levels[c.level]} seed {c.seed}: {acc}", flush=True)

    exp = classroom.run_alone(base, factor, levels, args.seeds, on_cell=progress, same_examples=not args.new_examples_per_seed)
    print(f"\n{factor:>14}  {'n':>3}  {'mean':>7}  {'sd':>6}  {'95% CI':>7}  seeds")
    for s in classroom.level_stats(exp):
        mean = f"{100 * s.mean:6.1f}%" if s.mean is not None else "      -"
        sd = f"{100 * s.sd:5.1f}" if s.sd is not None else "    -"
        ci = f"±{100 * s.ci95:5.1f}" if s.ci95 is not None else "      -"
        print(f"{s.level!s:>14}  {s.n:>3}  {mean}  {sd}  {ci}  " + " ".join(f"{100 * a:.1f}" for a in s.accs))
    done = [s for s in classroom.level_stats(exp) if s.mean is not None]
    if len(done) >= 2:
        best, runner = sorted(done, key=lambda s: s.mean, reverse=True)[:2]
        spread = statistics.fmean([s.sd for s in done if s.sd is not None] or [0.0])
        print(
            f"best {best.level} by {100 * (best.mean - runner.mean):.1f} points over {runner.level}; mean seed sd {100 * spread:.1f} points"
        )
    print(f"the matrix predicts: {classroom.predicted(exp)}")
    if args.out:
        with open(args.out, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["cell", "level", "seed", "val_acc", "val_acc_per_epoch", "seconds", "reused"])
            for i, c in enumerate(exp.cells):
                r = c.result
                writer.writerow(map(safe_cell, [i, exp.levels[c.level], c.seed, r.acc if r else "", " ".join(f"{a:.4f}" for a in r.accs) if r else "",
                                 r.seconds if r else "", r.reused if r else ""]))  # fmt: skip
        print(f"wrote {args.out}")
    return 0 if exp.filled() == len(exp.cells) else 1


def register_cli(sub: argparse._SubParsersAction) -> None:
    """This module's commands: finetune, compare, prefetch, class-experiment, list, settings."""
    # in this order: `python -m tlcore --help` lists them as they are added
    _register_runs(sub)
    _register_prefetch(sub)
    _register_class_experiment(sub)
    _register_info(sub)


def _register_runs(sub: argparse._SubParsersAction) -> None:
    """finetune (one run) and compare (several strategies' runs)."""
    p = sub.add_parser(
        "finetune",
        help="fine-tune one backbone on one dataset with one strategy",
        description="Fine-tune one backbone on one dataset with one strategy; prints progress and the result.",
    )
    add_config_args(p)
    p.add_argument("--out", default="", help="folder for history.csv, history.json and config.json")
    p.add_argument(
        "--save-model",
        default="",
        metavar="DIR",
        help="folder for the trained model: safetensors, ONNX, settings (see python -m tlcore predict)",
    )
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser(
        "compare",
        help="race several strategies on the same data and seed",
        description="Race several strategies on the same data and seed; prints one results table.",
    )
    p.add_argument(
        "--strategies", default="scratch,linear_probe,partial,full", help="comma-separated strategies (default: %(default)s)"
    )
    add_config_args(p, skip=("strategy",))
    p.add_argument("--out", default="", help="CSV file for the results table")
    p.set_defaults(func=cmd_compare)


def _register_prefetch(sub: argparse._SubParsersAction) -> None:
    """prefetch: weights and datasets into the caches."""
    p = sub.add_parser(
        "prefetch",
        help="download weights and datasets into the caches before class",
        description="Fill the standard caches (torchvision/Hugging Face weights, datasets) so a class works without internet.",
    )
    p.add_argument("--backbones", default="", help="comma-separated backbones, e.g. resnet18,vit_b_16")
    p.add_argument("--datasets", default="", help="comma-separated datasets, e.g. cifar10,eurosat")
    p.set_defaults(func=cmd_prefetch)


def _register_class_experiment(sub: argparse._SubParsersAction) -> None:
    """class-experiment: a class experiment's every cell, one after the other."""
    p = sub.add_parser(
        "class-experiment",
        help="the class experiment alone: one factor at several levels, several seeds, mean and spread",
        description="Run every cell (level x seed) of a class experiment one after the other, as a class would fill "
        "them, and print each level's accuracy: every seed, the mean, its standard deviation and 95%% interval. "
        "The other settings start from the app's default demo (the flags below change them).",
    )
    p.add_argument(
        "--factor", default="strategy", help="strategy | freeze_depth | per_class | lr | backbone (default %(default)s)"
    )
    p.add_argument("--levels", default="", help="comma-separated levels (default: the ones the Class page offers first)")
    p.add_argument("--seeds", type=int, default=3, help="how many seeds per level, a count (default %(default)s)")
    p.add_argument(
        "--new-examples-per-seed",
        action="store_true",
        help="each seed draws its own training and validation examples too (default: every cell trains and is "
        "measured on the examples --seed draws, so the seeds vary the training only and cells share features)",
    )
    add_config_args(p, skip=("seed",), defaults=_preset_defaults())
    p.set_defaults(func=cmd_class_experiment)
    p.add_argument("--out", default="", help="CSV file for every run (cell, level, seed, accuracy per epoch, seconds)")


def _register_info(sub: argparse._SubParsersAction) -> None:
    """list (backbones and datasets) and settings (the server's TLS_* variables): nothing runs."""
    p = sub.add_parser("list", help="list registered backbones and datasets")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser(
        "settings",
        help="the server's TLS_* environment variables: defaults, meanings, and what is set now",
        description="Every TLS_* environment variable the studio reads (tlcore.core.settings), as a Markdown table; "
        "then the ones set in this environment, with the value each is read as.",
    )
    p.set_defaults(func=cmd_settings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tlcore", description="Transfer Learning Studio's engine.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        importlib.import_module(module).register_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)  # a setting out of its range raises here (tlcore.core.fields)
        return args.func(args)
    except ValueError as e:  # bad settings: one clear line, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
