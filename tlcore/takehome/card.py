"""MODEL_CARD.md, the card that goes with a take-home model: what was trained, on what, the
metrics it reached on the run's validation split, and what it is not for. One section a function,
each read from the model's record (tlcore.takehome.record.TakeHome, what model.json holds).

Not for: the model's files themselves (tlcore.takehome.model_files).
"""

from __future__ import annotations

from tlcore.models import catalog
from tlcore.takehome.record import RunMetrics, TakeHome
from tlcore.train import strategies
from tlcore.train.config import RunConfig


def model_card(record: TakeHome) -> str:
    """MODEL_CARD.md: what was trained, on what, the metrics it reached, and what it is not for."""
    data_title, data_note = _dataset(record.config)
    lines = [
        f"# Model card: {record.backbone} fine-tuned on {data_title}",
        "",
        "Made by Transfer Learning Studio, a teaching tool: a short fine-tune run by a learner.",
        "",
        *_what_was_trained(record),
        "",
        *_on_what(record, data_title, data_note),
        "",
        *_metrics(record),
        "",
        *_limits(record),
    ]
    return "\n".join(lines) + "\n"


def _dataset(config: RunConfig | None) -> tuple[str, str]:
    """The card's name for the run's data, and the catalog's note on it ("" when it has none)."""
    if config is None:  # saved without settings
        return "data not recorded", ""
    try:
        data = catalog.dataset(config.dataset)
        return data.title, data.reason_en
    except ValueError:  # a dataset this version does not know
        return config.dataset or "data not recorded", ""


def _start(config: RunConfig | None, metrics: RunMetrics) -> str:
    """Where training started: the run's own word for it, else what its settings imply."""
    if metrics.pretrained:
        return metrics.pretrained
    if config is None:
        return "weights not recorded"
    if config.strategy == "scratch" or config.pretrained == "no":
        return "random init"
    return "pretrained weights"


def _what_was_trained(record: TakeHome) -> list[str]:
    """The card's "What was trained": backbone and start, strategy and what it froze, settings, size."""
    config, metrics = record.config, record.metrics
    return [
        "## What was trained",
        "",
        f"- Backbone: `{record.backbone}`, started from {_start(config, metrics)}.",
        _strategy_line(record),
        *_settings_line(config),
        *_size_line(metrics),
        *([f"- The command that trains it again: `{record.cli}`"] if record.cli else []),
    ]


def _strategy_line(record: TakeHome) -> str:
    """The strategy, and with the layer groups recorded, which of them it froze at the start."""
    config, groups = record.config, list(record.groups)
    line = f"- Strategy: `{config.strategy if config else '?'}`"
    if groups:
        frozen = strategies.frozen_at_start(config.strategy, groups, config.freeze_depth) if config else ()
        line += f"; layer groups {', '.join(groups)}; frozen: {', '.join(frozen) or 'none'}"
    return line + "."


def _settings_line(config: RunConfig | None) -> list[str]:
    """The settings a reader compares runs by (none without settings)."""
    if config is None:
        return []
    return [
        f"- Learning rate {config.lr} (the new head x{config.head_lr_mult}), {config.optimizer}, "
        f"{config.epochs} epochs, batch {config.batch_size}, augmentation {config.augment}, "
        f"seed {config.seed}."
    ]


def _size_line(metrics: RunMetrics) -> list[str]:
    """PEFT's readout: trainable parameters of all (when the run counted them)."""
    if not (metrics.trainable_params and metrics.total_params):
        return []
    return [f"- Trainable parameters: {metrics.trainable_params:,} of {metrics.total_params:,}."]


def _on_what(record: TakeHome, data_title: str, data_note: str) -> list[str]:
    """The card's "On what": the data, the classes in output order, how many examples of each."""
    config, classes = record.config, record.classes
    if config is not None:
        sizes = (
            f"- Up to {config.per_class} training and {config.val_per_class} validation examples per class, "
            "drawn with the seed (validation first, so the training size never changes the test)"
        )
    else:
        sizes = "- Examples per class not recorded"
    image = f"; images {record.image_size} x {record.image_size} px, centre square." if record.task == "image" else "."
    return [
        "## On what",
        "",
        f"- Data: {data_title}" + (f" ({data_note})" if data_note else "") + ".",
        f"- Classes ({len(classes)}, in output order): {', '.join(classes)}.",
        sizes + image,
    ]


def _metrics(record: TakeHome) -> list[str]:
    """The card's "Metrics": accuracy on the run's validation split, per class, and how sure it is."""
    metrics = record.metrics
    lines = ["## Metrics (the run's own validation split)", ""]
    if metrics.val_acc is None:
        return [*lines, "- Not recorded with this file (saved without the run's result)."]
    confusion = metrics.confusion or []
    n = sum(map(sum, confusion)) if confusion else 0
    lines.append(_accuracy_line(metrics, n))
    if confusion and len(confusion) == len(record.classes):
        lines.append(_per_class_line(record.classes, confusion))
    if n:
        half = 1.96 * (metrics.val_acc * (1 - metrics.val_acc) / n) ** 0.5
        lines.append(f"- With {n} examples the accuracy is known to about +/- {half:.0%} (95%, normal approximation).")
    return lines


def _accuracy_line(metrics: RunMetrics, n: int) -> str:
    """Accuracy on n examples, the best epoch's, and the loss (each when measured)."""
    return (
        f"- Accuracy {metrics.val_acc:.1%}"
        + (f" on {n} examples" if n else "")
        + (f"; best epoch {metrics.best_val_acc:.1%}" if metrics.best_val_acc is not None else "")
        + (f"; loss {metrics.val_loss:.3f}" if metrics.val_loss is not None else "")
        + "."
    )


def _per_class_line(classes: tuple[str, ...], confusion: list[list[int]]) -> str:
    """Each class's accuracy: its row's diagonal over its row (classes with no example left out)."""
    per = [(c, row[i] / sum(row)) for i, (c, row) in enumerate(zip(classes, confusion, strict=True)) if sum(row)]
    return "- Per class: " + ", ".join(f"{c} {acc:.0%}" for c, acc in per) + "."


def _limits(record: TakeHome) -> list[str]:
    """The card's "Limits": what it was never tested for, and the inputs it expects."""
    lines = [
        "## Limits",
        "",
        "- Trained in minutes on a few examples per class for a lesson: not tested for any real use, "
        "for fairness between groups of people, or against inputs made to fool it.",
        f"- It knows only these {len(record.classes)} classes: anything else is still given one of them.",
    ]
    if record.task == "image":
        lines.append(
            "- It expects pictures like its data, centre-cropped to a square and resized; other kinds of pictures "
            "(lighting, background, colour or greyscale) may lower its accuracy well below the figure above."
        )
    else:
        max_length = record.config.max_length if record.config else 128
        lines.append(f"- It reads at most {max_length} tokens of a sentence, in the language it was trained on.")
    return lines
