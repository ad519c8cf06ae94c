"""The one event stream of a training run, and the History that collects it.

The trainer emits events; the app, the CLI, the benchmark and the tests all read the same
History. Metric names are the same everywhere: `train/loss`, `val/loss`, `val/acc`, `lr`,
`lr/<group>`, `grad_norm/<group>`, `val/acc`, `train/acc`,
`examples_per_s` (see METRICS).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from tlcore.core.messages import message_of
from tlcore.core.spreadsheet import safe_frame


@dataclass(frozen=True)
class Started:
    """A run has built its model and data and is about to take its first step."""

    total_steps: int
    epochs: int
    groups: tuple[str, ...]  # layer groups, shallow -> deep
    frozen: tuple[str, ...]  # groups frozen at the start
    trainable_params: int
    total_params: int
    device: str
    train_size: int
    val_size: int
    classes: tuple[str, ...]
    cached_depth: int = 0  # leading frozen groups whose features were computed once
    pretrained: str = ""  # where the starting weights came from, in words


@dataclass(frozen=True)
class StepEvent:
    step: int  # 1-based optimiser step
    epoch: int  # 1-based
    loss: float  # mean train loss over the steps since the last StepEvent
    lr: float  # the learning rate the learner set, at this step of the schedule
    grad_norms: dict[str, float]  # L2 norm of each trainable group's gradients
    frozen: tuple[str, ...] = ()  # groups frozen at this step (they have no norm)
    lrs: dict[str, float] = field(default_factory=dict)  # the rate each trained group's optimizer group had


@dataclass(frozen=True)
class EvalEvent:
    epoch: int
    step: int
    val_loss: float
    val_acc: float
    train_acc: float
    seconds: float  # wall time since the run started
    examples_per_s: float  # training throughput of this epoch


@dataclass(frozen=True)
class Guesses:
    """A check during a masked-word pretraining (task mlm): held-out masked-word accuracy and
    the top-5 guesses for the run's sentence, which change from random pieces to words that fit."""

    step: int
    seconds: float  # wall time since the run started
    loss: float  # held-out masked-word cross-entropy
    top1: float  # held-out masked-token accuracy, 0..1
    top5: float
    guesses: tuple[tuple[str, float], ...]  # (word piece, probability), best first


@dataclass(frozen=True)
class RunResult:
    """What a finished run measured: built once, by tlcore.train.trainer.fit and tlcore.train.recipe
    (task mlm: tlcore.text.mlm_live), and read by every page, the store, the CLI and the class.

    A field a run's task has no value for keeps its default (a masked-word pretraining has no
    accuracy; an older stored run may lack a field added later). `model` is the trained network
    (a tlcore.train.finetuned.Finetuned) as `recipe.run` returns it; the Done event never carries
    it (events are stored and sent between processes)."""

    # accuracy and loss on the validation split (0..1), at the end and at the best epoch
    val_acc: float | None = None
    best_val_acc: float | None = None
    val_loss: float | None = None
    # time and speed
    seconds: float = 0.0  # the whole run, set-up included
    examples_per_s: float | None = None  # training examples per second over the run
    train_per_s: float | None = None  # the median epoch's throughput of the part that trains
    steps: int = 0  # optimiser steps done
    timing: dict[str, Any] = field(default_factory=dict)  # cache_s, setup_s, train_s [...], eval_s [...], finish_s
    # the network
    backbone: str = ""
    strategy: str = ""
    pretrained: str = ""  # where the starting weights came from, in words
    trainable_params: int | None = None
    total_params: int | None = None
    cached_depth: int = 0  # leading frozen groups whose features were computed once
    weight_drift: dict[str, float] = field(default_factory=dict)  # relative change of each group's weights
    # the validation split, example by example
    classes: list[str] = field(default_factory=list)
    predictions: list[int] = field(default_factory=list)
    targets: list[int] = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=list)  # [true][predicted]
    misclassified: list[dict[str, Any]] = field(default_factory=list)  # {"image" | "text", "true", "pred"}
    # what else a task or a lesson measured
    note: str = ""  # why other weights than asked for were used, in words ("" when none)
    note_message: dict[str, Any] | None = None  # the same as a translatable message {"key", "values"}
    forgetting: dict[str, Any] | None = None  # images: the old ImageNet head on the new body
    padding_share: float | None = None  # text: the share of padding in the batches
    curve: list[dict[str, Any]] = field(default_factory=list)  # mlm: the held-out checks
    blocks: int | None = None  # mlm: training blocks
    params: int | None = None  # mlm: the model's parameters
    sentence: str | None = None  # mlm: the sentence whose guesses were shown
    model_id: str | None = None  # the server's id of the kept model (tlcore.serve.kept_models)
    extra: dict[str, Any] = field(default_factory=dict)  # anything else (tests, older stored runs)
    model: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (tlcore.serve.store, between processes): every field but the model, what JSON
        cannot hold (image arrays) dropped; `extra`'s keys at the top level, as they came."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("model", "extra")}
        return json_safe(self.extra | out)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        """The inverse of `to_dict`; keys it does not know go to `extra`."""
        names = {f.name for f in fields(cls)} - {"extra"}
        known = {k: v for k, v in data.items() if k in names}
        return cls(**known, extra={k: v for k, v in data.items() if k not in names})


@dataclass(frozen=True)
class Done:
    result: RunResult

    def __post_init__(self):  # a dict (a stored or sent run) becomes the typed result
        if isinstance(self.result, dict):
            object.__setattr__(self, "result", RunResult.from_dict(self.result))


@dataclass(frozen=True)
class Failed:
    message: str  # one line a learner can act on (English)
    key: str = ""  # the same as a translatable message (tlcore.core.messages), when there is one
    values: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, error: BaseException) -> Failed:
        message = message_of(error)
        return cls(str(error), message.key, dict(message.values)) if message else cls(str(error))


@dataclass(frozen=True)
class Cancelled:
    step: int


Event = Started | StepEvent | EvalEvent | Guesses | Done | Failed | Cancelled
FINAL_EVENTS = (Done, Failed, Cancelled)


@dataclass
class HistorySnapshot:
    """An immutable view of a History at one moment (safe to read while training goes on)."""

    events: tuple[Event, ...]
    config: dict[str, Any] | None = None
    times: tuple[float, ...] = ()  # time.monotonic() at which each event arrived

    @property
    def started(self) -> Started | None:
        return next((e for e in self.events if isinstance(e, Started)), None)

    @property
    def steps(self) -> list[StepEvent]:
        return [e for e in self.events if isinstance(e, StepEvent)]

    @property
    def evals(self) -> list[EvalEvent]:
        return [e for e in self.events if isinstance(e, EvalEvent)]

    @property
    def guesses(self) -> list[Guesses]:
        return [e for e in self.events if isinstance(e, Guesses)]

    @property
    def final(self) -> Event | None:
        last = self.events[-1] if self.events else None
        return last if isinstance(last, FINAL_EVENTS) else None

    @property
    def result(self) -> RunResult | None:
        final = self.final
        return final.result if isinstance(final, Done) else None

    @property
    def progress(self) -> float:
        """Fraction of optimiser steps done, 0..1."""
        started, steps = self.started, self.steps
        if isinstance(self.final, Done):
            return 1.0
        if started is None or not steps or started.total_steps == 0:
            return 0.0
        return min(1.0, steps[-1].step / started.total_steps)

    def to_dataframe(self):
        """One row per logged step or evaluation; columns use the shared metric names."""
        import pandas as pd

        rows = []
        for e in self.events:
            if isinstance(e, StepEvent):
                row = {"step": e.step, "epoch": e.epoch, "train/loss": e.loss, "lr": e.lr}
                row.update({f"lr/{g}": v for g, v in e.lrs.items()})
                row.update({f"grad_norm/{g}": v for g, v in e.grad_norms.items()})
                rows.append(row)
            elif isinstance(e, EvalEvent):
                rows.append(
                    {
                        "step": e.step,
                        "epoch": e.epoch,
                        "val/loss": e.val_loss,
                        "val/acc": e.val_acc,
                        "train/acc": e.train_acc,
                        "seconds": e.seconds,
                        "examples_per_s": e.examples_per_s,
                    }
                )
        return pd.DataFrame(rows)

    def to_csv(self, path=None) -> str:
        """`to_dataframe` as CSV text (written to `path` too, when given); layer group names in
        the headers, and any text cell, never start a formula (tlcore.core.spreadsheet)."""
        text = safe_frame(self.to_dataframe()).to_csv(index=False)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        return text

    def to_dict(self) -> dict[str, Any]:
        events = []
        for e in self.events:
            d = {"result": e.result.to_dict()} if isinstance(e, Done) else asdict(e)
            events.append({"type": type(e).__name__, **d})
        return {"config": self.config, "events": events}

    @classmethod
    def from_dict(cls, data: dict[str, Any], times: tuple[float, ...] = ()) -> HistorySnapshot:
        """The inverse of `to_dict` (a stored run read back: tlcore.serve.store). What JSON could
        not hold (image arrays in a result) stays dropped; lists become the tuples they were."""
        return cls(tuple(event_from_dict(e) for e in data.get("events", ())), data.get("config"), tuple(times))

    def to_json(self, path=None) -> str:
        text = json.dumps(self.to_dict(), ensure_ascii=False, indent=1)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        return text


@dataclass
class History:
    """Lock-protected, append-only list of events; the trainer writes, readers snapshot."""

    config: dict[str, Any] | None = None
    _events: list[Event] = field(default_factory=list)
    _times: list[float] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def append(self, event: Event) -> None:
        with self._lock:
            self._events.append(event)
            self._times.append(time.monotonic())

    __call__ = append  # a History can be passed straight in as the trainer's `emit`

    def snapshot(self) -> HistorySnapshot:
        with self._lock:
            return HistorySnapshot(tuple(self._events), self.config, tuple(self._times))

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)


_EVENT_TYPES = {cls.__name__: cls for cls in (Started, StepEvent, EvalEvent, Guesses, Done, Failed, Cancelled)}


def event_from_dict(data: dict[str, Any]) -> Event:
    """One event from `HistorySnapshot.to_dict()`'s form: {"type": "StepEvent", "step": 3, ...}."""
    data = dict(data)
    cls = _EVENT_TYPES[data.pop("type")]
    known = {f.name: f for f in fields(cls)}
    values = {
        k: tuple(tuple(x) if isinstance(x, list) else x for x in v)
        if isinstance(v, list) and str(known[k].type).startswith("tuple")
        else v
        for k, v in data.items()
        if k in known
    }  # a field added later is simply absent
    return cls(**values)


def json_safe(value: Any) -> Any:
    """Drop what JSON cannot hold (image arrays, tensors) from a result dict."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items() if _jsonable(v)}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value if _jsonable(v)]
    if _scalar(value):  # a numpy (or 0-d torch) number: a plain Python one
        return value.item()
    return value


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool, dict, list, tuple)) or _scalar(value)


def _scalar(value: Any) -> bool:
    return getattr(value, "ndim", None) == 0 and hasattr(value, "item")
