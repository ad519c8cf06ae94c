"""RunConfig: every setting of one fine-tuning run, validated on creation.

One frozen dataclass owns a run's settings. Each field carries its help text and range,
which become its checks and, through run_flags, every command's flag for it: its
--help, type, range and choices (the app's tooltips are translated lessons in assets/i18n,
written for learners). A config round-trips through JSON (saved with the results) and prints
as the equivalent `python -m tlcore finetune ...` command, which the CLI parses back into the
same config (tested). Starting values for the app: tlcore.train.presets.
"""

from __future__ import annotations

import argparse
import json
import shlex
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from tlcore.core import offline
from tlcore.core.commands import Flags
from tlcore.core.fields import Registered, check_value, setting, values
from tlcore.core.messages import LearnerError
from tlcore.models import catalog
from tlcore.train import strategies

STRATEGIES = tuple(strategies.STRATEGIES)  # the one list, in tlcore.train.strategies
AUGMENTS = ("none", "flip", "crop_flip")
OPTIMIZERS = ("adamw", "sgd")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRETRAINED = ("auto", "yes", "no")
SEED_SENTENCE = "The cat is on the [MASK]."  # task mlm: the sentence whose guesses a live pretraining shows

# A task's own rule for its settings, registered by the family that owns the task (tlcore.text.family:
# "mlm", the live pretraining); a task with a rule of its own skips the fine-tune checks below.
TASK_RULES: dict[str, Callable[[RunConfig], None]] = {}


_f = setting  # a dataclass field with its help text (and range, choices) kept beside it (tlcore.core.fields)


# The registered tasks ("image", and the families' "text", "mlm"): the one list is the task registry,
# tlcore.train.tasks.TASKS, read when a config is checked or a parser built, not at import (the
# registry's module imports this one, and loads the families on first read): named, not imported.
TASK_CHOICES = Registered("tlcore.train.tasks", "TASKS")


def task_names() -> tuple[str, ...]:
    """The registered tasks (TASK_CHOICES)."""
    return TASK_CHOICES.names()


@dataclass(frozen=True)
class RunConfig:
    # --- what to train ---
    task: str = _f(
        "image",
        "image or text: which kind of model and data; mlm: masked-word pretraining from random weights (the text page's live demo)",
        TASK_CHOICES,
    )
    backbone: str = _f(
        "efficientnet_lite0",
        "backbone from the registry (python -m tlcore list); efficientnet_lite0, finetune's default, has ImageNet weights, installs with pip and works offline",
    )
    pretrained: str = _f(
        "auto",
        "start from pretrained weights: auto (if available, else the offline backbone), yes (fail if unavailable), no (random init)",
        PRETRAINED,
    )
    dataset: str = _f(
        "fashion_mnist",
        "dataset from the registry (python -m tlcore list), or 'folder' with --data-root; fashion_mnist, finetune's default, reads Debian's dataset-fashion-mnist offline",
    )
    data_root: str = _f("", "folder with one sub-folder per class (dataset 'folder'), or a CSV file for text")
    per_class: int = _f(20, "training examples per class (the dataset-size axis of the matrix)", lo=1, hi=100_000)
    val_per_class: int = _f(30, "held-out validation examples per class", lo=1, hi=100_000)
    image_size: int = _f(
        96,
        "images are resized to this many pixels square (96: ImageNet features still work and a CPU demo takes seconds; the synthetic backbone was pretrained at 32)",
        lo=8,
        hi=512,
    )
    # --- how to transfer ---
    strategy: str = _f(
        "partial",
        "scratch | linear_probe (frozen body) | partial (freeze first k groups) | full | full_llrd (layer-wise lr decay) | gradual (unfreeze one group per epoch) | lora (text)",
        STRATEGIES,
    )
    freeze_depth: int = _f(2, "partial: number of leading layer groups frozen (0 = none)", lo=0, hi=100)
    lr: float = _f(1e-3, "base learning rate of the body (0 < lr <= 1)", lo=1e-7, hi=1.0)
    head_lr_mult: float = _f(10.0, "the new head learns this many times faster than the body", lo=0.01, hi=1000.0)
    layer_decay: float = _f(0.7, "full_llrd: each group one step shallower gets lr times this (0 < d <= 1)", lo=0.01, hi=1.0)
    bn_frozen_eval: bool = _f(
        True, "keep BatchNorm in frozen groups in eval mode (off shows the trap: statistics drift although weights are frozen)"
    )
    # --- the optimisation ---
    epochs: int = _f(3, "passes over the training set", lo=1, hi=500)
    batch_size: int = _f(64, "examples per optimiser step", lo=1, hi=4096)
    optimizer: str = _f("adamw", "adamw or sgd (momentum 0.9)", OPTIMIZERS)
    weight_decay: float = _f(1e-4, "L2 penalty on trainable weights", lo=0.0, hi=1.0)
    augment: str = _f("flip", "on-device augmentation: none | flip | crop_flip (crop_flip disables feature caching)", AUGMENTS)
    seed: int = _f(0, "seed for data split, init and batch order", lo=0, hi=2**31 - 1)
    split_seed: int = _f(
        -1,
        "seed for which examples are drawn into the training and validation splits (-1: the seed above); a class experiment fixes it, so its seeds train on the same examples and share their features",
        lo=-1,
        hi=2**31 - 1,
    )
    device: str = _f("auto", "auto picks cuda > mps > cpu", DEVICES)
    precision: str = _f(
        "auto", "auto (bf16 autocast on CUDA and on CPUs with native bf16, else fp32) | fp32 | bf16", ("auto", "fp32", "bf16")
    )
    cache_features: bool = _f(True, "compute a frozen prefix's features once and train only the rest")
    log_every: int = _f(0, "log loss and gradient norms every N steps (0 = about 200 points per run)", lo=0, hi=100_000)
    # --- text models ---
    max_length: int = _f(128, "text: longest tokenised sentence kept", lo=8, hi=4096)
    lora_r: int = _f(8, "text, strategy lora: rank of the adapter matrices", lo=1, hi=512)
    # --- masked-word pretraining (task mlm: a 2-layer miniature of studio_bert on a live corpus, tlcore.text.corpora) ---
    mlm_steps: int = _f(200, "task mlm: optimiser steps of the live masked-word pretraining", lo=1, hi=2000)
    mlm_sentence: str = _f(SEED_SENTENCE, "task mlm: a sentence with one [MASK]; its top-5 guesses are reported at every check")

    def __post_init__(self) -> None:
        for f in fields(self):
            check_value(f, getattr(self, f.name))  # its kind, range and choices
        if self.backbone not in catalog.backbone_names() and not offline.is_model_dir(self.backbone):
            raise LearnerError("config.unknown_backbone", value=repr(self.backbone), choices=", ".join(catalog.backbone_names()))
        catalog.load_families()  # the families' tasks and their rules (tlcore.text: mlm), registered
        rule = TASK_RULES.get(self.task)
        if rule is not None:
            rule(self)
            return
        if self.dataset not in catalog.dataset_names():
            raise LearnerError("config.unknown_dataset", value=repr(self.dataset), choices=", ".join(catalog.dataset_names()))
        spec_task = catalog.task_of(self.backbone)
        if spec_task != self.task:
            raise LearnerError("config.backbone_task", backbone=repr(self.backbone), family=spec_task, task=repr(self.task))
        if catalog.dataset(self.dataset).task != self.task:
            raise LearnerError(
                "config.dataset_task", dataset=repr(self.dataset), family=catalog.dataset(self.dataset).task, task=repr(self.task)
            )
        if self.strategy == "lora" and self.task != "text":
            raise LearnerError("config.lora_images")

    # --- round trips ---
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise LearnerError("config.unknown_setting", names=", ".join(unknown))
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        return cls.from_dict(json.loads(text))

    @property
    def data_seed(self) -> int:
        """The seed that draws the examples: split_seed when set, else the run's seed."""
        return self.split_seed if self.split_seed >= 0 else self.seed

    def replace(self, **changes) -> RunConfig:
        return replace(self, **changes)

    def to_cli(self) -> str:
        """The equivalent command line: what a reader must see (backbone, dataset, strategy,
        its freeze depth, size of the run), then every other setting that differs from the
        defaults."""
        parts = ["python", "-m", "tlcore", "finetune"]
        always = {"backbone", "dataset", "strategy", "per_class", "image_size", "epochs"}
        if self.strategy == "partial":
            always.add("freeze_depth")
        for f in fields(self):
            value = getattr(self, f.name)
            if value == f.default and f.name not in always:
                continue
            flag = "--" + f.name.replace("_", "-")
            if isinstance(value, bool):
                parts.append(flag if value else "--no-" + f.name.replace("_", "-"))
            else:
                parts += [flag, str(value)]
        return shlex.join(parts)


def run_flags(
    *,
    only: tuple[str, ...] | None = None,
    skip: tuple[str, ...] = (),
    defaults: dict[str, Any] | None = None,
) -> Flags:
    """The one way a command takes run settings (a Command's `flags`): one --flag per RunConfig
    field (those in `only`, if given, less `skip`) with the field's help text, range, choices and
    default. `defaults` gives a command its own (bench: resnet18 on digits at 64 px); None there
    means "not given"."""
    return Flags(RunConfig, "run settings (RunConfig)", only=only, skip=skip, defaults=defaults)


def config_from_args(args: argparse.Namespace, **overrides) -> RunConfig:
    """The RunConfig of parsed flags (fields without a flag keep RunConfig's default)."""
    return RunConfig(**{**values(args, RunConfig), **overrides})
