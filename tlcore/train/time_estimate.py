"""How long will a run take on this machine? An estimate before Start, and time left during it.

Before Start (`Estimator.estimate(config)`): a run's work is counted in forward-pass
FLOPs per layer group, measured once per backbone and size on one example, then
weighted by what the strategy does with each group:

- a frozen prefix whose features are cached runs forward once over every training image
  (twice with flip augmentation) and every validation image;
- each epoch, a trained group costs about 3 forward passes per training image (forward,
  backward through activations and weights), a LoRA layer 2 (no weight gradients but its
  small adapters'), a frozen group not cached costs 1;
- each epoch's evaluation costs 1 forward pass per validation image past the cache.

Work becomes seconds through rates *measured on this machine*: seconds per unit of work
(per device and backbone: a depthwise-convolution net does less per FLOP than a ResNet),
seconds per optimiser step (the fixed cost that dominates tiny cached-feature runs), and
set-up seconds (data, model). Every finished run the server does updates them
(`Estimator.record`), and they are kept in a small JSON file, so estimates improve with
use and survive restarts. Until a backbone has run here, the device's rates for that task
(images or text) from other backbones stand in (and a short calibration of each task's
default backbone, `calibrate`, gives the first one).

During a run (`time_left(snapshot)`): from the run's own event times, once an epoch has
finished, (epochs left) x (measured epoch time) less the time into the current epoch; in
the first epoch, remaining steps at the measured step rate plus the estimated evaluations.
"""

from __future__ import annotations

import functools
import json
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from tlcore.core import commands, offline
from tlcore.core.commands import Command, Flags
from tlcore.core.events import EvalEvent, History, StepEvent
from tlcore.core.fields import setting
from tlcore.data import datasets, sources
from tlcore.models import catalog
from tlcore.train import recipe, strategies
from tlcore.train.config import RunConfig, run_flags

DEFAULT_S_PER_GFLOP = 0.02  # a slow CPU core: only until this machine has measured its own
DEFAULT_STEP_S = 0.005
DEFAULT_SETUP_S = 2.0
EMA = 0.5  # weight of the newest measurement


def state_file() -> Path:
    return offline.state_dir() / "timings.json"


# ----------------------------------------------------------------------------- work


@functools.lru_cache(maxsize=64)
def group_gflops(backbone: str, image_size: int) -> tuple[tuple[str, float], ...]:
    """Forward GFLOPs per example of each layer group (a random-init copy: the same compute)."""
    from torch.utils.flop_counter import FlopCounterMode

    spec = catalog.backbone(backbone)
    if spec.family == "text":
        return _text_group_gflops(backbone, image_size)
    model = catalog.build_model(backbone, 10, pretrained=False, image_size=image_size).eval()
    x = torch.zeros(1, 3, image_size, image_size)
    out: list[tuple[str, float]] = []
    with torch.no_grad():
        for name, module in model.groups.items():
            counter = FlopCounterMode(display=False)
            with counter:
                y = module(x)
            out.append((name, counter.get_total_flops() / 1e9))
            x = y
    return tuple(out)


def _text_group_gflops(backbone: str, max_length: int) -> tuple[tuple[str, float], ...]:
    """Transformers: about 2 FLOPs per parameter per token (attention's extra is small at
    these lengths); sentences are padded per batch to about half the maximum length."""
    from tlcore.models import catalog

    counts = catalog.family(backbone).build(backbone, 2, pretrained=False).param_counts()
    tokens = max(8, max_length // 2)
    return tuple((g, 0.0 if g == "embeddings" else 2 * n * tokens / 1e9) for g, n in counts.items())


@dataclass(frozen=True)
class Work:
    """A run's work: GFLOP-units and optimiser steps, before and during the epochs."""

    cache_gflop: float
    epoch_gflop: float  # training + evaluation of one epoch
    steps_per_epoch: int
    epochs: int

    @property
    def total_gflop(self) -> float:
        return self.cache_gflop + self.epochs * self.epoch_gflop


def frozen_prefix(config: RunConfig, groups: list[str]) -> tuple[int, set[str]]:
    """(groups cached once, groups frozen for the whole run) for a config's strategy."""
    if config.strategy == "lora":
        return 0, {groups[0]}
    plan = strategies.plan_for(config, groups)
    always = set(plan.always_frozen)
    # The trainer's and the sources' one rule (tlcore.data.sources): what fit asks to cache,
    # and what the source really caches.
    prefix = sources.frozen_prefix(groups, always, cache_features=config.cache_features, bn_frozen_eval=config.bn_frozen_eval)
    return sources.cache_depth(config.task, prefix, len(groups), augment=config.augment), always


def work_of(config: RunConfig, n_train: int, n_val: int) -> Work:
    size = config.max_length if config.task == "text" else config.image_size
    flops = group_gflops(config.backbone, size)
    groups = [g for g, _ in flops]
    prefix, always = frozen_prefix(config, groups)
    copies = 2 if config.augment == "flip" else 1
    # Text FLOPs grow with the tokens a pass really runs: group_gflops counts a sentence as half
    # the maximum length; the run's own sentences say how long they are, one by one in the cached
    # pass (sorted by length: hardly any padding) and padded to the longest of each batch in training.
    cached_scale = batch_scale = 1.0
    if config.task == "text":
        counted = max(8, config.max_length // 2)
        sentence, padded = text_tokens(config)
        cached_scale, batch_scale = sentence / counted, padded / counted
    cache = sum(f for _, f in flops[:prefix]) * (copies * n_train + n_val) * cached_scale
    epoch = 0.0
    for name, f in flops[prefix:]:
        # trained: forward, backward through activations and through weights (3); LoRA's layers
        # keep their weights and pass gradients through to small adapters (2); frozen: forward (1)
        cost = 1 if name in always else 2 if config.strategy == "lora" and name != groups[-1] else 3
        epoch += f * (n_train * cost + n_val) * batch_scale
    steps = math.ceil(n_train / config.batch_size)
    return Work(cache, epoch, steps, config.epochs)


def text_tokens(config: RunConfig) -> tuple[float, float]:
    """(tokens per sentence, tokens per sentence once padded to its batch's longest) of a text
    run's training data; half the maximum length for both when the data is not on this machine."""
    return _text_tokens(
        config.backbone,
        config.dataset,
        config.data_root,
        config.per_class,
        config.val_per_class,
        config.max_length,
        config.batch_size,
        config.data_seed,
    )


@functools.lru_cache(maxsize=32)
def _text_tokens(
    backbone: str, dataset: str, root: str, per_class: int, val_per_class: int, max_length: int, batch_size: int, seed: int
) -> tuple[float, float]:
    try:
        data = catalog.load_dataset(dataset, per_class=per_class, image_size=0, seed=seed, val_per_class=val_per_class, root=root)
        tokenizer = _tokenizer(backbone)
    except Exception:  # noqa: BLE001 -- a download not made yet, a file gone: the plain count stands
        half = float(max(8, max_length // 2))
        return half, half
    lengths = [len(ids) for ids in tokenizer(list(data.train_texts), truncation=True, max_length=max_length)["input_ids"]]
    if not lengths:
        half = float(max(8, max_length // 2))
        return half, half
    order = torch.randperm(len(lengths), generator=torch.Generator().manual_seed(seed)).tolist()
    padded = sum(
        max(lengths[i] for i in order[b : b + batch_size]) * len(order[b : b + batch_size])
        for b in range(0, len(order), batch_size)
    )
    return sum(lengths) / len(lengths), padded / len(lengths)


@functools.lru_cache(maxsize=8)
def _tokenizer(backbone: str):
    from tlcore.models import catalog

    return catalog.family(backbone).build(backbone, 2, pretrained=False).tokenizer


def run_sizes(config: RunConfig, num_classes: int) -> tuple[int, int]:
    return config.per_class * num_classes, config.val_per_class * num_classes


# ----------------------------------------------------------------------------- rates


def device_kind(device: str) -> str:
    """'cpu' or the accelerator's name: rates measured on one do not apply to another."""
    if device in ("auto", ""):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and torch.cuda.is_available():
        return "cuda:" + torch.cuda.get_device_name(0)
    return f"cpu:{torch.get_num_threads()}t"


class Estimator:
    """Rates learnt from the runs this machine has done (see the module docstring)."""

    def __init__(self, path: Path | None = None):
        self.path = path
        self._lock = threading.Lock()
        self.rates: dict[str, dict[str, float]] = {}
        if path is not None and path.exists():
            try:
                self.rates = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                self.rates = {}

    @staticmethod
    def _keys(config: RunConfig) -> tuple[str, ...]:
        """Most specific first: this kind of run (backbone, size, strategy), this backbone, this
        task on the device (a CPU runs a transformer's matrix products and a CNN's convolutions
        at rates far apart: measured 20x), the device."""
        device = device_kind(config.device)
        size = config.max_length if config.task == "text" else config.image_size
        return (
            f"{device}|{config.backbone}|{size}|{config.strategy}",
            f"{device}|{config.backbone}",
            f"{device}|{config.task}",
            device,
        )

    def _rate(self, config: RunConfig, name: str, default: float) -> float:
        with self._lock:
            for key in self._keys(config):
                if name in self.rates.get(key, {}):
                    return self.rates[key][name]
        return default

    def measured(self, config: RunConfig) -> bool:
        """Has this machine run this backbone on this device (so the rate is its own)?"""
        with self._lock:
            return self._keys(config)[1] in self.rates

    def knows_device(self, config: RunConfig) -> bool:
        """Has this device a rate of its own for this task yet (a calibration or a run)?"""
        with self._lock:
            return "s_per_gflop" in self.rates.get(self._keys(config)[2], {})

    def estimate(self, config: RunConfig, num_classes: int) -> float:
        """Seconds the whole run should take here, set-up included."""
        work = work_of(config, *run_sizes(config, num_classes))
        s_per = self._rate(config, "s_per_gflop", DEFAULT_S_PER_GFLOP)
        cache_per = self._rate(config, "cache_s_per_gflop", s_per)  # a no-grad pass: its own rate once seen
        setup = self._rate(config, "setup_s", DEFAULT_SETUP_S)
        return setup + work.cache_gflop * cache_per + work.epochs * self._epoch_s(config, work) + self.finish_s(config)

    def epoch_s(self, config: RunConfig, num_classes: int) -> float:
        """Seconds one epoch should take here (training and evaluation), the cached pass left out."""
        return self._epoch_s(config, work_of(config, *run_sizes(config, num_classes)))

    def _epoch_s(self, config: RunConfig, work: Work) -> float:
        s_per = self._rate(config, "s_per_gflop", DEFAULT_S_PER_GFLOP)
        return work.epoch_gflop * s_per + work.steps_per_epoch * self._rate(config, "step_s", DEFAULT_STEP_S)

    def finish_s(self, config: RunConfig) -> float:
        """Seconds a run of this kind takes after its last evaluation (results, mistakes, drift)."""
        return self._rate(config, "finish_s", 0.0)

    def record(self, config: RunConfig, timing: dict, n_train: int, n_val: int) -> None:
        """Learn from a finished run's measured phases (result.timing, see recipe.run): the
        cached pass's rate apart from the epochs' (a no-grad pass runs faster per FLOP)."""
        work = work_of(config, n_train, n_val)
        steps = work.epochs * work.steps_per_epoch
        # a frozen pass that a batch source runs inside its first epoch (text: tlcore.text.batches) is
        # the cached pass, whenever it runs
        encode_s = timing.get("encode_s", 0.0)
        compute_s = sum(timing["train_s"]) + sum(timing["eval_s"]) - encode_s
        step_s = self._rate(config, "step_s", DEFAULT_STEP_S)
        s_per = self._rate(config, "s_per_gflop", DEFAULT_S_PER_GFLOP)
        units = work.epochs * work.epoch_gflop
        new = {"setup_s": timing["setup_s"], "finish_s": timing.get("finish_s", 0.0)}
        if work.cache_gflop > 1e-6 and timing["cache_s"] + encode_s > 0:
            new["cache_s_per_gflop"] = (timing["cache_s"] + encode_s) / work.cache_gflop
        # Epochs whose FLOPs explain at least half their time teach the rate per FLOP; epochs of
        # a small head on cached features are mostly the fixed cost of each step, and teach that.
        if units > 1e-6 and compute_s > steps * step_s and units * s_per >= 0.5 * compute_s:
            new["s_per_gflop"] = (compute_s - steps * step_s) / units
        elif steps:
            new["step_s"] = max(compute_s - units * s_per, 0.0) / steps
        with self._lock:
            for key in self._keys(config):
                rates = self.rates.setdefault(key, {})
                for name, value in new.items():
                    rates[name] = value if name not in rates else (1 - EMA) * rates[name] + EMA * value
            self._save()

    def _save(self) -> None:  # caller holds the lock
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.rates, indent=1), encoding="utf-8")
            tmp.replace(self.path)
        except OSError:
            pass  # a read-only home: estimates still work for this process


_shared: Estimator | None = None
_shared_lock = threading.Lock()


def shared_estimator() -> Estimator:
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Estimator(state_file())
        return _shared


def calibrate(config: RunConfig, estimator: Estimator | None = None, steps: int = 3) -> float:
    """Time a few real training steps of `config`'s backbone on random inputs (images, or
    sentences of half the maximum length; all groups trained), and one no-grad pass, and record
    the device's rates for that task: the first estimate is then this machine's own. A text
    model's build time stands for a text run's set-up (its data are a few hundred sentences).
    Returns seconds per GFLOP-unit."""
    estimator = estimator or shared_estimator()
    y = torch.randint(0, 2, (config.batch_size,))
    t_build = time.perf_counter()
    if config.task == "text":
        build = catalog.family(config.backbone).build
        build(config.backbone, 2, pretrained=False)  # first: imports and file reads a server has done
        t_build = time.perf_counter()
        model = build(config.backbone, 2, pretrained=False)
        tokens = max(8, config.max_length // 2)  # as _text_group_gflops counts them
        x = {
            "input_ids": torch.randint(1000, 2000, (config.batch_size, tokens)),
            "attention_mask": torch.ones(config.batch_size, tokens, dtype=torch.long),
        }
    else:
        model = catalog.build_model(config.backbone, 10, pretrained=False, image_size=config.image_size)
        x = torch.randint(0, 255, (config.batch_size, 3, config.image_size, config.image_size), dtype=torch.uint8)
    build_s = time.perf_counter() - t_build
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()

    def step():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()  # warm-up: allocations, kernels
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - t0) / steps
    model.eval()
    t0 = time.perf_counter()
    with torch.no_grad():
        model(x)
    forward_s = time.perf_counter() - t0
    size = config.max_length if config.task == "text" else config.image_size
    units = config.batch_size * sum(f for _, f in group_gflops(config.backbone, size))
    rate = max(seconds - DEFAULT_STEP_S, 1e-6) / (3 * units)
    found = {"s_per_gflop": rate, "cache_s_per_gflop": forward_s / units}
    if config.task == "text":
        found["setup_s"] = build_s
    with estimator._lock:
        rates = estimator.rates.setdefault(estimator._keys(config)[2], {})
        for name, value in found.items():
            rates.setdefault(name, value)
        estimator._save()
    return rate


# ----------------------------------------------------------------------------- during a run


def time_left(
    snap,
    times: tuple[float, ...],
    now: float | None = None,
    eval_guess_s: float = 0.0,
    finish_s: float = 0.0,
    later_epoch_s: float | None = None,
) -> float | None:
    """Seconds left in one run from its events and their arrival times (History.times).

    None before the first step has been timed. After the first epoch: epochs left times
    the measured epoch time (the mean of the epochs so far), less the time into this one,
    plus `finish_s`, what runs of this kind take after their last evaluation.

    `later_epoch_s`: the first epoch does work once that later ones do not (a text run's
    encoder pass, computed batch by batch as that epoch trains: tlcore.text.batches), and this
    is the estimator's guess of a later epoch (`Estimator.epoch_s`). Then the first epoch's
    rate is carried only to its own end, later epochs take the guess until one of them has
    been timed, and the first is left out of the measured epoch time. Without it a text
    probe's page said about 60 s left where 5 were.
    """
    now = time.monotonic() if now is None else now
    started = snap.started
    if started is None or snap.final is not None:
        return None if snap.final is None else 0.0
    t_start = next(t for e, t in zip(snap.events, times) if e is started)
    eval_times = [t for e, t in zip(snap.events, times) if isinstance(e, EvalEvent)]
    if eval_times:
        epochs_left = started.epochs - len(eval_times)
        if epochs_left == 0:
            return max(finish_s - (now - eval_times[-1]), 0.0)
        if later_epoch_s is None:
            per_epoch = (eval_times[-1] - t_start) / len(eval_times)
        elif len(eval_times) > 1:
            per_epoch = (eval_times[-1] - eval_times[0]) / (len(eval_times) - 1)
        else:
            per_epoch = later_epoch_s
        return max(epochs_left * per_epoch - (now - eval_times[-1]), 0.0) + finish_s
    steps = [(e, t) for e, t in zip(snap.events, times) if isinstance(e, StepEvent)]
    if not steps:
        return None
    last, t_last = steps[-1]
    rate = (t_last - t_start) / last.step
    if later_epoch_s is not None:
        first_epoch = math.ceil(started.total_steps / max(1, started.epochs))
        rest = (started.epochs - 1) * later_epoch_s
        return max((first_epoch - last.step) * rate - (now - t_last), 0.0) + rest + eval_guess_s + finish_s
    return max((started.total_steps - last.step) * rate - (now - t_last), 0.0) + started.epochs * eval_guess_s + finish_s


# ----------------------------------------------------------------------------- glue

_KNOWN_CLASSES = {"flowers102": 102, "oxford_pets": 37}


def num_classes(config: RunConfig) -> int:
    """Classes of a config's dataset without loading it (10 for the image samples, 2 for text)."""
    if config.dataset == "folder" and config.data_root:
        root = Path(config.data_root)
        if root.is_dir():
            return max(2, sum(1 for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")))
    if config.task == "text":
        return 2
    return _KNOWN_CLASSES.get(config.dataset, 10)


def learn_from(config: RunConfig, snap, estimator: Estimator | None = None) -> None:
    """A JobQueue hook: record a finished run's timing."""
    result, started = snap.result, snap.started
    if result and started and "setup_s" in result.timing:
        timing = result.timing | ({"encode_s": result.extra["encode_s"]} if "encode_s" in result.extra else {})
        (estimator or shared_estimator()).record(config, timing, started.train_size, started.val_size)


# ----------------------------------------------------------------------------- the check


def check_against_runs(configs: list[RunConfig], estimator: Estimator, print_fn=print) -> list[dict]:
    """Run each config for real and compare: the estimate before it, and time left at
    every epoch's end against the true remaining time. Returns one row per run."""
    rows = []
    for config in configs:
        guess = estimator.estimate(config, num_classes(config))
        history = History(config.to_dict())
        marks: list[tuple[float, float | None]] = []  # (time, time_left said then)

        def emit(event, history=history, marks=marks, config=config) -> None:
            history.append(event)
            if isinstance(event, EvalEvent):
                snap = history.snapshot()
                marks.append((snap.times[-1], time_left(snap, snap.times, snap.times[-1], finish_s=estimator.finish_s(config))))

        t0 = time.monotonic()
        result = recipe.run(config, emit)
        end = time.monotonic()
        if result is None:
            raise RuntimeError(f"the run failed: {history.snapshot().final}")
        errors = [abs(said - (end - at)) / max(end - at, 1e-9) for at, said in marks[:-1] if said is not None]
        row = {
            "backbone": config.backbone,
            "strategy": config.strategy,
            "image_size": config.image_size,
            "epochs": config.epochs,
            "estimate_s": round(guess, 1),
            "actual_s": round(end - t0, 1),
            "estimate_error": round(abs(guess - (end - t0)) / (end - t0), 2),
            "time_left_max_error": round(max(errors), 2) if errors else None,
        }
        rows.append(row)
        print_fn(row)
        learn_from(config, history.snapshot(), estimator)
    return rows


def _cmd_estimate(args) -> int:
    import tempfile

    if args.threads:
        torch.set_num_threads(args.threads)
    backbone = args.backbone or catalog.offline_default()
    dataset = args.dataset or ("fashion_mnist" if datasets.fashion_available() else "digits")
    configs = [
        RunConfig(
            backbone=backbone,
            dataset=dataset,
            strategy=s,
            image_size=args.image_size,
            per_class=args.per_class,
            epochs=args.epochs,
            val_per_class=20,
        )
        for s in args.strategies.split(",")
    ]
    with tempfile.TemporaryDirectory() as tmp:
        estimator = Estimator(Path(tmp) / "timings.json")
        calibrate(configs[0], estimator)
        print("pass 1: rates from a 3-step calibration only")
        check_against_runs(configs, estimator)
        print("pass 2: rates learnt from pass 1")
        check_against_runs(configs, estimator)
    return 0


@dataclass(frozen=True)
class EstimateOptions:
    strategies: str = setting("partial,linear_probe,full", "comma-separated strategies")
    threads: int = commands.threads(1, "the app's worker uses cores - 1")


ESTIMATE = Command(
    "estimate",
    "check the run-time estimate and time-left against real runs",
    _cmd_estimate,
    flags=(
        Flags(EstimateOptions),
        run_flags(
            only=("backbone", "dataset", "per_class", "image_size", "epochs"), defaults={"backbone": None, "dataset": None}
        ),
    ),
    description="Run the given configs twice over (a cold estimator, then one that has learnt "
    "from the first pass) and print estimate vs actual seconds and the largest "
    "time-left error after the first epoch. Without --backbone: the offline default backbone; "
    "without --dataset: the app's default dataset (fashion_mnist, else digits).",
)
