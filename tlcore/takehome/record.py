"""What a download carries: `TakeHome`, one typed record of a finished run's model, built from
its settings (`RunConfig`) and its result (`RunResult`), and read by attribute by everything that
writes a take-home file (the model files, their README and card, the notebooks, the page).

The record's JSON form is the metadata written into the files (model.json, and model.safetensors'
"tlcore" entry); its keys have not changed since the first take-home file, so every file written
before still loads:

    format      "tlcore-model-1"
    task        "image" or "text"
    backbone    the backbone that really ran (an offline fallback, not always the config's)
    classes     class names, in output order
    image_size  pixels, square (0 for a text model)
    config      the run's RunConfig.to_dict()            (absent or {} when saved without settings)
    cli         the command that trains it again         (written, never read: it follows from config)
    input       what the network takes, in words         (written, never read)
    groups      layer groups, shallow to deep            (absent in older files)
    output      what the network gives, in words         (written, never read)
    metrics     the run's figures a model card reports   (absent when saved without the result)

Not for: checking a stranger's file before it is trusted (tlcore.takehome.model_files.checked_meta)
or writing the files (tlcore.takehome.model_files).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from typing import Any

from tlcore.core.events import RunResult
from tlcore.train.config import RunConfig

FORMAT = "tlcore-model-1"

# What a take-home file calls the learner's own data: the server's copy sits in a private upload
# folder whose path means nothing on the learner's machine and tells them how the server is laid out.
LEARNER_DATA = {"folder": "my_images", "text_csv": "my_sentences.csv"}


@dataclass(frozen=True)
class RunMetrics:
    """The part of a run's result a model card and a notebook report (small: no predictions, no
    events). A figure the run did not measure stays None and is left out of the files."""

    val_acc: float | None = None  # accuracy on the run's validation split, 0..1, at the end
    best_val_acc: float | None = None  # ... at its best epoch
    val_loss: float | None = None
    trainable_params: int | None = None
    total_params: int | None = None
    pretrained: str | None = None  # where the starting weights came from, in words
    confusion: list[list[int]] | None = None  # [true][predicted] counts on the validation split
    seconds: float | None = None  # the whole run

    @classmethod
    def of(cls, result: RunResult | RunMetrics | dict | None) -> RunMetrics:
        """A run's result (or a card's own figures, as a record or as its JSON) -> its card's figures."""
        if isinstance(result, RunMetrics):
            return result
        names = [f.name for f in fields(cls)]
        if isinstance(result, dict):
            values = {k: result.get(k) for k in names}
        else:
            values = {k: getattr(result, k) for k in names} if result is not None else {}
        return cls(**{k: v for k, v in values.items() if _measured(v)})

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: only what was measured, in the fields' order."""
        return {f.name: getattr(self, f.name) for f in fields(self) if _measured(getattr(self, f.name))}

    def __bool__(self) -> bool:
        return bool(self.to_dict())


def _measured(value) -> bool:
    return value is not None and value != [] and value != ""


@dataclass(frozen=True)
class TakeHome:
    """A finished run's model as its take-home files describe it."""

    task: str  # "image" or "text"
    backbone: str  # the backbone that really ran
    classes: tuple[str, ...]  # in output order
    image_size: int = 0  # pixels, square; 0 for a text model
    config: RunConfig | None = None  # None: saved without settings
    groups: tuple[str, ...] = ()  # layer groups, shallow to deep (the last is the head); () in older files
    metrics: RunMetrics = field(default_factory=RunMetrics)

    @classmethod
    def of(cls, entry, result: RunResult | RunMetrics | dict | None = None) -> TakeHome:
        """The record of a fine-tuned model (tlcore.train.finetuned.Finetuned) and, when given, its run's result."""
        return cls(
            task=entry.task,
            backbone=entry.backbone,
            classes=tuple(entry.classes),
            image_size=entry.image_size,
            config=RunConfig.from_dict(entry.config) if entry.config else None,
            groups=tuple(getattr(entry.model, "group_names", None) or ()),
            metrics=RunMetrics.of(result),
        )

    @property
    def cli(self) -> str:
        """The command that trains it again ("" without settings)."""
        return self.config.to_cli() if self.config else ""

    @property
    def val_acc(self) -> float | None:
        return self.metrics.val_acc

    def shareable(self) -> TakeHome:
        """The record as a file the learner takes home carries it: an upload's path on the server
        replaced by the name the README and notebook use (`LEARNER_DATA`; "" for a dataset the
        studio finds itself). The pages keep the real path: a text notebook reads the sentences from it."""
        if not self.config or not self.config.data_root:
            return self
        return replace(self, config=self.config.replace(data_root=LEARNER_DATA.get(self.config.dataset, "")))

    # --- the JSON the files carry ---
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": FORMAT,
            "task": self.task,
            "backbone": self.backbone,
            "classes": list(self.classes),
            "image_size": self.image_size,
            "config": self.config.to_dict() if self.config else {},
        }
        if self.config:
            out["cli"] = self.cli
        if self.task == "text":
            out["input"] = {"input_ids": "(B, T) int64 token ids from tokenizer/", "attention_mask": "(B, T) int64"}
        else:
            out["input"] = {"pixels": f"(B, 3, {self.image_size}, {self.image_size}) uint8 RGB, centre square resized"}
        if self.groups:
            out["groups"] = list(self.groups)
        out["output"] = "logits (B, num_classes), classes in the order of 'classes'"
        if self.metrics:
            out["metrics"] = self.metrics.to_dict()
        return out

    def to_json(self, **dumps) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, **dumps)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TakeHome:
        """The inverse of `to_dict`, for any file written since the first format (keys a record
        derives, and keys it does not know, are skipped). Trusts `data`: a stranger's file goes
        through model_files.checked_meta first."""
        config = data.get("config") or {}
        return cls(
            task=data["task"],
            backbone=data["backbone"],
            classes=tuple(data["classes"]),
            image_size=int(data.get("image_size") or 0),
            config=RunConfig.from_dict(config) if config else None,
            groups=tuple(data.get("groups") or ()),
            metrics=RunMetrics.of(data.get("metrics") or {}),
        )

    @classmethod
    def from_json(cls, text: str) -> TakeHome:
        return cls.from_dict(json.loads(text))
