"""`python -m tlcore <command>`: the engine from a terminal, same configs, same events.

One convention for every command (tlcore.core.commands):
1. A command is one declaration, `Command(name, help, run, flags=...)`, beside the work it runs;
   nothing registers itself. COMMANDS below lists every one, in the order `python -m tlcore
   --help` shows them; this module declares the first six: finetune, compare, prefetch,
   class-experiment, list and settings.
2. Every flag is a field of a settings dataclass: a run setting through `run_flags(only=...,
   defaults={...})` (its help, type, range and choices are RunConfig's, only the default may be
   the command's own), and the command's other flags as a small dataclass of its own
   (`Flags(BenchOptions)`, pretrain's PretrainConfig, pretrain-text's MlmConfig).
3. One spelling for one meaning: --out (where the results go; its help says what it is),
   --threads (CPU threads for torch, 0 = torch's default) and --seeds (a count, or a
   comma-separated list: each command's help says which), the last two made once in
   tlcore.core.commands.
A bad command line or setting is one `error: ...` line and exit code 2, not a traceback.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from tlcore.core import commands, settings
from tlcore.core.commands import Command, Flags
from tlcore.core.events import History
from tlcore.core.fields import setting
from tlcore.core.progress import ProgressPrinter
from tlcore.core.spreadsheet import safe_cell, safe_frame
from tlcore.data import datasets
from tlcore.explain import feature_figures
from tlcore.lab import bench, forgetting_experiment, pretrain_vision, upload_bench
from tlcore.lab.experiments import cli as experiments
from tlcore.models import backbones, catalog
from tlcore.serve.store import cli as store
from tlcore.takehome import model_files, notebook
from tlcore.text import bench as text_bench
from tlcore.text import cli as text_cli
from tlcore.text import pretrain as text_pretrain
from tlcore.text import scale as text_scale
from tlcore.train import presets, time_estimate
from tlcore.train.config import RunConfig, config_from_args, run_flags
from tlcore.train.recipe import load_run_data, run


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
        sizes = model_files.save(result.model.on_cpu(), args.save_model, metrics=result)  # no server: the run's own model
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


@dataclass(frozen=True)
class FinetuneOptions:
    out: str = setting("", "folder for history.csv, history.json and config.json")
    save_model: str = setting("", "folder for the trained model: safetensors, ONNX, settings (see python -m tlcore predict)")


@dataclass(frozen=True)
class CompareOptions:
    strategies: str = setting("scratch,linear_probe,partial,full", "comma-separated strategies")
    out: str = setting("", "CSV file for the results table")


@dataclass(frozen=True)
class PrefetchOptions:
    backbones: str = setting("", "comma-separated backbones, e.g. resnet18,vit_b_16")
    datasets: str = setting("", "comma-separated datasets, e.g. cifar10,eurosat")


@dataclass(frozen=True)
class ClassExperimentOptions:
    factor: str = setting("strategy", "strategy | freeze_depth | per_class | lr | backbone")
    levels: str = setting("", "comma-separated levels (empty: the ones the Class page offers first)")
    seeds: int = commands.seed_count(3)
    new_examples_per_seed: bool = setting(
        False,
        "each seed draws its own training and validation examples too (off: every cell trains and is "
        "measured on the examples --seed draws, so the seeds vary the training only and cells share features)",
    )
    out: str = setting("", "CSV file for every run (cell, level, seed, accuracy per epoch, seconds)")


FINETUNE = Command(
    "finetune",
    "fine-tune one backbone on one dataset with one strategy",
    cmd_finetune,
    flags=(run_flags(), Flags(FinetuneOptions)),
    description="Fine-tune one backbone on one dataset with one strategy; prints progress and the result.",
)
COMPARE = Command(
    "compare",
    "race several strategies on the same data and seed",
    cmd_compare,
    flags=(Flags(CompareOptions), run_flags(skip=("strategy",))),
    description="Race several strategies on the same data and seed; prints one results table.",
)
PREFETCH = Command(
    "prefetch",
    "download weights and datasets into the caches before class",
    cmd_prefetch,
    flags=(Flags(PrefetchOptions),),
    description="Fill the standard caches (torchvision/Hugging Face weights, datasets) so a class works without internet.",
)
CLASS_EXPERIMENT = Command(
    "class-experiment",
    "the class experiment alone: one factor at several levels, several seeds, mean and spread",
    cmd_class_experiment,
    flags=(Flags(ClassExperimentOptions), run_flags(skip=("seed",), defaults=_preset_defaults())),
    description="Run every cell (level x seed) of a class experiment one after the other, as a class would fill "
    "them, and print each level's accuracy: every seed, the mean, its standard deviation and 95% interval. "
    "The other settings start from the app's default demo (the flags below change them).",
)
LIST = Command("list", "list registered backbones and datasets", cmd_list)
SETTINGS = Command(
    "settings",
    "the server's TLS_* environment variables: defaults, meanings, and what is set now",
    cmd_settings,
    description="Every TLS_* environment variable the studio reads (tlcore.core.settings), as a Markdown table; "
    "then the ones set in this environment, with the value each is read as.",
)

# Every command, once, in the order `python -m tlcore --help` lists them. Each is declared beside its work
# and listed only here (this module sits above lab, serve, takehome and explain in the layers).
COMMANDS: tuple[Command, ...] = (
    FINETUNE,
    COMPARE,
    PREFETCH,
    CLASS_EXPERIMENT,
    LIST,
    SETTINGS,
    bench.BENCH,
    text_cli.FILL_MASK,
    text_bench.TEXT_BENCH,
    text_pretrain.PRETRAIN_TEXT,
    text_scale.TEXT_SCALE,
    pretrain_vision.PRETRAIN,
    experiments.MATRIX,
    experiments.TRANSFER_DEPTH,
    experiments.FILTERS,
    time_estimate.ESTIMATE,
    store.RUNS,
    upload_bench.UPLOAD_BENCH,
    model_files.EXPORT_CHECK,
    model_files.PREDICT,
    notebook.NOTEBOOK,
    forgetting_experiment.FORGETTING,
    feature_figures.FEATURE_SPACE,
)


def build_parser() -> commands.Parser:
    return commands.parser_of(COMMANDS, prog="python -m tlcore", description="Transfer Learning Studio's engine.")


def main(argv: list[str] | None = None) -> int:
    """Run one command line: a bad one is one `error: ...` line and exit code 2 (tlcore.core.commands)."""
    return commands.main(build_parser(), argv)
