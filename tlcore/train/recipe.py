"""A whole run, for any task: RunConfig -> data, weights, model, plan, fit, examples.

The recipe is written once here; what differs between images and text is a `Task`
(tlcore.train.tasks): how to load the data, which weights will really be used, how to build the
model and its batch source, and which examples to show. The app's job queue, the CLI, the
benchmarks and the experiments all call `run`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import torch

from tlcore.core.events import Cancelled, Done, Failed, RunResult
from tlcore.core.messages import LearnerError, Message
from tlcore.data.datasets import DatasetUnavailable
from tlcore.models.backbones import WeightsUnavailable
from tlcore.train import strategies, tasks
from tlcore.train.config import RunConfig
from tlcore.train.device import pick_device
from tlcore.train.trainer import FitOptions, fit, seed_everything

Emit = Callable[[object], None]


def run(config: RunConfig, emit: Emit, should_stop: Callable[[], bool] = lambda: False, data=None) -> RunResult | None:
    """One run; returns its result (also sent as Done), or None when cancelled or failed.

    The returned result also holds the trained model as `model` (a tlcore.train.finetuned.Finetuned,
    on the run's device); the Done event does not (events are stored and sent between
    processes). Training keeps nothing: the caller keeps the model or drops it.
    Errors become one Failed event a learner can act on, never a traceback.
    """
    try:
        task = tasks.of(config)
        own_run = getattr(task, "run", None)  # a task that is not a fine-tune (mlm: pretraining) runs itself
        result = (own_run or _recipe)(config, emit, should_stop, data)
    except (WeightsUnavailable, DatasetUnavailable, ValueError) as e:  # LearnerError is a ValueError
        emit(Failed.of(e))
        return None
    except torch.OutOfMemoryError:
        emit(Failed.of(LearnerError("run.out_of_memory", batch_size=config.batch_size, image_size=config.image_size)))
        return None
    except Exception as e:  # the app must never show a raw traceback; the message still names the error
        emit(Failed.of(LearnerError("run.unexpected", error=f"{type(e).__name__}: {e}")))
        return None
    if result is None:
        return None
    emit(Done(replace(result, model=None)))
    return result


def run_or_raise(config: RunConfig, data=None) -> RunResult:
    """One run through the app's code path, quiet; raises if it failed (an experiment must not hide it)."""
    failures = []
    result = run(config, lambda e: failures.append(e.message) if isinstance(e, Failed) else None, data=data)
    if result is None:
        raise RuntimeError(f"run failed: {failures[-1] if failures else 'cancelled'} ({config.to_cli()})")
    return result


def _recipe(config: RunConfig, emit: Emit, should_stop, data) -> RunResult | None:
    t_run = time.perf_counter()
    task = tasks.of(config)
    device = pick_device(config.device)
    generator = seed_everything(config.seed)
    data = data if data is not None else task.load(config)
    if should_stop():
        emit(Cancelled(0))
        return None
    name, pretrained, note = task.weights(config.backbone, "no" if config.strategy == "scratch" else config.pretrained)
    torch.manual_seed(config.seed)  # the same head init for every strategy of a race
    model = task.build(config, name, data.num_classes, pretrained)
    groups = model.group_names
    if config.strategy == "partial" and config.freeze_depth > len(groups) - 1:
        raise LearnerError("run.freeze_depth", backbone=name, body=len(groups) - 1)
    plan = strategies.plan_for(config, groups)
    model, source = task.source(config, model, data, device)
    t_fit = time.perf_counter()
    result = fit(
        model,
        plan,
        source,
        fit_options(config),
        device=device,
        emit=emit,
        should_stop=should_stop,
        generator=generator,
        classes=tuple(data.classes),
        started_extra={"pretrained": model.pretrained_from + (f" ({note})" if note else "")},
    )
    if result is None:
        return None
    result = replace(
        result,
        backbone=name,
        strategy=config.strategy,
        classes=list(data.classes),
        note=str(note or ""),
        note_message={"key": note.key, "values": note.values} if isinstance(note, Message) else None,
        pretrained=model.pretrained_from,
        misclassified=task.mistakes(data, source, result),
        **task.extras(config, model, source, data, name),
    )
    # measured for the estimates (tlcore.train.time_estimate): the set-up, data, weights, model
    # and plan until fit starts; and the finish, confusion, drift, examples after the last evaluation
    result.timing["setup_s"] = t_fit - t_run
    result.timing["finish_s"] = time.perf_counter() - result.timing.pop("last_eval_at")
    return result


def warm_up(config: RunConfig, should_stop: Callable[[], bool] = lambda: False) -> bool:
    """Run `config` once and drop its result, so that the next run of it starts warm: the data
    loaded, the pretrained network built (tlcore.models.backbones keeps one to copy), its frozen
    prefix's features computed (tlcore.data.feature_cache) and the forgetting photos scored.
    A server does this for its default demo: the class's first Start then costs what every
    later one does (measured: 7.4 s click to done cold, 4.4 s warm). True when it ran."""
    return run(config, lambda _event: None, should_stop) is not None


def fit_options(config: RunConfig) -> FitOptions:
    return FitOptions(
        config.epochs,
        config.batch_size,
        config.optimizer,
        config.weight_decay,
        config.bn_frozen_eval,
        config.cache_features,
        config.log_every,
        precision=config.precision,
    )


def load_run_data(config: RunConfig):
    """The dataset a config names, split per class with the config's seed (images or text)."""
    return tasks.of(config).load(config)
