"""The training loop: one readable loop, events out, nothing else.

`fit` knows nothing about tasks, models or data beyond two small contracts:
- the model has ordered layer `groups` (nn.ModuleDict) and `param_counts()`
  (tlcore.models.groups.LayerGroups);
- the batch source (tlcore.data.sources.BatchSource: TensorSource for images,
  tlcore.text.batches.TextSource for sentences) yields (inputs, targets) and knows how to
  call the model on them.
It emits events (tlcore.core.events) and checks `should_stop()` before every step, so a Stop
button takes effect within one step. What a whole run is (data, weights, model, plan, then
fit) is `tlcore.train.recipe.run`; what is measured is `tlcore.core.metrics`.

Speed, because a demo that stalls loses the class: a frozen prefix is run once over the
data (`source.prepare`) and only the trainable suffix trains; one host transfer per logged
step; bf16 autocast where it pays (tlcore.train.precision).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from tlcore.core import metrics
from tlcore.core.events import Cancelled, EvalEvent, RunResult, Started, StepEvent
from tlcore.data.sources import BatchSource, frozen_prefix
from tlcore.models.groups import LayerGroups
from tlcore.train import strategies
from tlcore.train.device import describe_device
from tlcore.train.precision import autocast_for, use_bf16

Emit = Callable[[object], None]
SHORT_RUN_STEPS = 300  # runs this short estimate BatchNorm statistics as a plain average


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Learning-rate multiplier at optimiser step `step` (0-based):
    1. linear warm-up from 1/warmup to 1 over the first `warmup` steps;
    2. cosine decay from 1 towards 0 over the remaining steps.
    """
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def seed_everything(seed: int) -> torch.Generator:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    return torch.Generator().manual_seed(seed)


@dataclass
class FitOptions:
    epochs: int
    batch_size: int
    optimizer: str = "adamw"
    weight_decay: float = 1e-4
    bn_frozen_eval: bool = True
    cache_features: bool = True
    log_every: int = 0
    warmup_frac: float = 0.1
    warmup_steps: int = 0  # when > 0, the warm-up's length in steps (pretraining's recipe), else warmup_frac
    label_smoothing: float = 0.0  # softer targets (pretraining: many source classes look alike)
    precision: str = "auto"  # auto | fp32 | bf16 (see tlcore.train.precision.use_bf16)
    average_bn_short_runs: bool = True  # see average_batchnorm


@dataclass
class Steps:
    """The optimiser of one run and where it is in its schedule (warm-up, then cosine)."""

    optimizer: torch.optim.Optimizer
    base_lrs: list[float]  # each parameter group's rate before the schedule's factor
    total: int  # optimiser steps in the whole run
    warmup: int
    log_every: int  # a StepEvent every this many steps (and at the last)
    done: int = 0  # steps taken so far

    @classmethod
    def start(cls, model, plan: strategies.Plan, opts: FitOptions, steps_per_epoch: int) -> Steps:
        optimizer_cls = torch.optim.AdamW if opts.optimizer == "adamw" else torch.optim.SGD
        extra = {"momentum": 0.9, "nesterov": True} if opts.optimizer == "sgd" else fused_adamw(model)
        optimizer = optimizer_cls(strategies.param_groups(model, plan, opts.weight_decay), lr=1.0, **extra)
        total = steps_per_epoch * opts.epochs
        return cls(
            optimizer,
            [g["lr"] for g in optimizer.param_groups],
            total,
            opts.warmup_steps or max(1, int(total * opts.warmup_frac)),
            opts.log_every or max(1, total // 200),
        )


def fused_adamw(model) -> dict:
    """AdamW's fused kernel where it has one: a step is one pass over every parameter instead of
    a loop of small operations per tensor (Lite0's 149 tensors on one CPU thread: 4.6 ms against
    18 ms a step; the same weights to 1e-6)."""
    params = list(model.parameters())
    fits = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
    return {"fused": True} if params and fits else {}


@dataclass
class Measured:
    """What `fit` measures on its way, by name: set up before the first epoch, filled in by each,
    turned into the run's result (tlcore.core.events.RunResult) at the end."""

    started: float  # time.perf_counter() when the run began
    initial: dict[str, torch.Tensor] | None  # the weights before training (None: no drift to measure)
    counts: metrics.Trainable
    cached_depth: int
    timing: dict  # cache_s, train_s [...], eval_s [...], last_val (val_loss, val_acc)
    best_val_acc: float = 0.0
    epoch_rates: list[float] = field(default_factory=list)  # training examples per second, each epoch
    predictions: torch.Tensor | None = None  # (n_val,) the last evaluation's predicted classes

    def result(self, model: LayerGroups, source: BatchSource, *, steps: int, epochs: int, num_classes: int) -> RunResult:
        """The finished run's result: accuracies, speed, predictions, confusion and weight drift."""
        val_loss, val_acc = self.timing.pop("last_val")
        seconds = time.perf_counter() - self.started
        predictions, targets = self.predictions.tolist(), source.val_y.tolist()
        return RunResult(
            val_acc=val_acc,
            best_val_acc=self.best_val_acc,
            val_loss=val_loss,
            seconds=seconds,
            examples_per_s=source.n_train * epochs / seconds,
            # training throughput of the part that trains (a cached prefix is not re-run), the
            # median epoch: comparable between strategies where whole-run seconds are not
            train_per_s=float(np.median(self.epoch_rates)),
            steps=steps,
            timing=self.timing,
            trainable_params=self.counts.trainable,
            total_params=self.counts.total,
            cached_depth=self.cached_depth,
            weight_drift=metrics.weight_drift(model, self.initial) if self.initial else {},
            predictions=predictions,
            targets=targets,
            confusion=metrics.confusion_matrix(targets, predictions, num_classes or None),
        )


def fit(
    model: LayerGroups,
    plan: strategies.Plan,
    source: BatchSource,
    opts: FitOptions,
    *,
    device: torch.device,
    emit: Emit,
    should_stop: Callable[[], bool] = lambda: False,
    generator: torch.Generator | None = None,
    classes: tuple[str, ...] = (),
    started_extra: dict | None = None,
) -> RunResult | None:
    """Train `model` by `plan` on `source`; returns its result, or None if cancelled."""
    generator = generator or torch.Generator().manual_seed(0)
    autocast = autocast_for(device, opts.precision)  # no-grad passes: cached features, evaluation
    train_autocast = autocast_for(device, opts.precision, train_model=model)
    t0 = time.perf_counter()
    groups = list(model.groups.keys())
    initial = {n: p.detach().clone() for n, p in model.named_parameters()} if plan.pretrained else None

    cached, timing = _prepare_source(model, plan, source, opts, device, autocast)
    steps = Steps.start(model, plan, opts, math.ceil(source.n_train / opts.batch_size))
    frozen0 = plan.frozen_at(1)
    if opts.average_bn_short_runs and steps.total <= SHORT_RUN_STEPS:
        average_batchnorm(model, [g for g in groups if g not in plan.always_frozen])
    counts = metrics.count_trainable(model, frozen0)
    shape = (tuple(groups), tuple(frozen0), counts.trainable, counts.total, describe_device(device))
    emit(Started(steps.total, opts.epochs, *shape, source.n_train, source.n_val, tuple(classes), cached, **(started_extra or {})))

    seen = Measured(started=t0, initial=initial, counts=counts, cached_depth=cached, timing=timing)
    for epoch in range(1, opts.epochs + 1):
        t_epoch = time.perf_counter()
        train_acc = train_one_epoch(
            model,
            plan,
            source,
            steps,
            epoch,
            opts=opts,
            emit=emit,
            should_stop=should_stop,
            generator=generator,
            autocast=train_autocast,
            device=device,
        )
        if train_acc is None:
            return None
        timing["train_s"].append(time.perf_counter() - t_epoch)
        seen.epoch_rates.append(source.n_train / timing["train_s"][-1])
        t_eval = time.perf_counter()
        val_loss, val_acc, seen.predictions = evaluate(model, source, opts.batch_size, autocast)
        timing["eval_s"].append(time.perf_counter() - t_eval)
        timing["last_eval_at"], timing["last_val"] = time.perf_counter(), (val_loss, val_acc)
        seen.best_val_acc = max(seen.best_val_acc, val_acc)
        emit(EvalEvent(epoch, steps.done, val_loss, val_acc, train_acc, time.perf_counter() - t0, seen.epoch_rates[-1]))

    model.zero_grad(set_to_none=True)  # the last gradients: a kept model would hold ~10 MB (docs/class-load.md)
    return seen.result(model, source, steps=steps.done, epochs=opts.epochs, num_classes=len(classes))


def _prepare_source(model, plan, source: BatchSource, opts: FitOptions, device: torch.device, autocast) -> tuple[int, dict]:
    """A prefix frozen for the whole run (with BN in eval mode) gives the same features every
    epoch: computed once, so only the suffix trains (the rule: tlcore.data.sources). Returns the
    depth cached and the run's timing record so far."""
    groups = list(model.groups.keys())
    prefix = frozen_prefix(groups, plan.always_frozen, cache_features=opts.cache_features, bn_frozen_eval=opts.bn_frozen_eval)
    t_cache = time.perf_counter()
    cached = source.prepare(model, prefix, opts.batch_size, autocast)
    timing = {"cache_s": time.perf_counter() - t_cache, "train_s": [], "eval_s": []}
    if cached and not use_bf16(device, opts.precision, train_model=model):
        source.features_to_float()  # bf16 features from the no-grad pass, trained in fp32
    return cached, timing


def train_one_epoch(
    model: LayerGroups,
    plan: strategies.Plan,
    source: BatchSource,
    steps: Steps,
    epoch: int,
    *,
    opts: FitOptions,
    emit: Emit,
    should_stop: Callable[[], bool],
    generator: torch.Generator,
    autocast,
    device: torch.device,
) -> float | None:
    """One pass over the training batches: a StepEvent every `steps.log_every` steps (mean loss,
    gradient norm per trainable group, rates). Returns the training accuracy, or None when
    Stop was asked for (Cancelled is emitted)."""
    frozen = plan.frozen_at(epoch)
    model.train()
    strategies.set_frozen(model, frozen, bn_frozen_eval=opts.bn_frozen_eval)
    live = [g for g in model.groups if g not in frozen]
    loss_sum, logged = torch.zeros((), device=device), 0
    correct = torch.zeros((), device=device, dtype=torch.long)
    for inputs, targets in source.train_batches(epoch, opts.batch_size, generator):
        if should_stop():
            emit(Cancelled(steps.done))
            return None
        factor = lr_factor(steps.done, steps.total, steps.warmup)
        for g, base in zip(steps.optimizer.param_groups, steps.base_lrs):
            g["lr"] = base * factor
        with autocast():
            logits = source.forward(model, inputs)  # (B, num_classes)
            loss = F.cross_entropy(logits.float(), targets, label_smoothing=opts.label_smoothing)
        steps.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norms = metrics.grad_norms_by_group(model, live)  # (len(live),), stays on the device
        steps.optimizer.step()
        steps.done += 1
        loss_sum += loss.detach()
        logged += 1
        correct += (logits.detach().argmax(1) == targets).sum()
        if steps.done % steps.log_every == 0 or steps.done == steps.total:
            values = torch.cat([(loss_sum / logged).view(1), norms.float()]).tolist()  # one transfer
            rates = {g["group"]: g["lr"] for g in steps.optimizer.param_groups if g["group"] in live}
            emit(StepEvent(steps.done, epoch, values[0], plan.lr * factor, dict(zip(live, values[1:])), tuple(frozen), rates))
            loss_sum.zero_()
            logged = 0
    return correct.item() / source.n_train


def average_batchnorm(model, groups: list[str]) -> None:
    """Make the BatchNorm layers of `groups` keep a plain average of this run's batch statistics.

    With the default momentum (0.1) the running statistics need a few hundred steps to
    forget their start; a 20-step classroom run would then be evaluated with statistics
    that never matched its data. momentum=None averages all batches of this run equally.
    """
    for name in groups:
        for m in model.groups[name].modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
                m.momentum = None
                m.reset_running_stats()


@torch.no_grad()
def evaluate(model: LayerGroups, source: BatchSource, batch_size: int, autocast) -> tuple[float, float, torch.Tensor]:
    """Mean validation loss, accuracy, and the predicted class of every validation example."""
    model.eval()
    loss_sum = torch.zeros((), device=source.val_y.device)
    preds = []
    for inputs, targets in source.eval_batches(batch_size):
        with autocast():
            logits = source.forward(model, inputs)
        loss_sum += F.cross_entropy(logits.float(), targets, reduction="sum")
        preds.append(logits.argmax(1))
    preds = torch.cat(preds)
    acc = (preds == source.val_y).float().mean()
    loss, acc = torch.stack([loss_sum / source.n_val, acc]).tolist()
    return loss, acc, preds.cpu()
