"""MODEL_CARD.md, the card that goes with a take-home model: what was trained, on what, the
metrics it reached on the run's validation split, and what it is not for. One section a function,
each read from the model's settings (model.json, tlcore.takehome.model_files.describe).

Not for: the model's files themselves (tlcore.takehome.model_files).
"""

from __future__ import annotations


def model_card(meta: dict) -> str:
    """MODEL_CARD.md: what was trained, on what, the metrics it reached, and what it is not for."""
    data_title, data_note = _dataset(meta.get("config") or {})
    lines = [
        f"# Model card: {meta['backbone']} fine-tuned on {data_title}",
        "",
        "Made by Transfer Learning Studio, a teaching tool: a short fine-tune run by a learner.",
        "",
        *_what_was_trained(meta),
        "",
        *_on_what(meta, data_title, data_note),
        "",
        *_metrics(meta),
        "",
        *_limits(meta),
    ]
    return "\n".join(lines) + "\n"


def _dataset(config: dict) -> tuple[str, str]:
    """The card's name for the run's data, and the catalog's note on it ("" when it has none)."""
    from tlcore.models import catalog

    try:
        data = catalog.dataset(config.get("dataset", ""))
        return data.title, data.reason_en
    except ValueError:  # saved without settings (or a dataset this version does not know)
        return config.get("dataset") or "data not recorded", ""


def _start(config: dict, metrics: dict) -> str:
    """Where training started: the run's own word for it, else what its settings imply."""
    if metrics.get("pretrained"):
        return metrics["pretrained"]
    if not config:
        return "weights not recorded"
    if config.get("strategy") == "scratch" or config.get("pretrained") == "no":
        return "random init"
    return "pretrained weights"


def _what_was_trained(meta: dict) -> list[str]:
    """The card's "What was trained": backbone and start, strategy and what it froze, settings, size."""
    from tlcore.train import strategies

    config, metrics = meta.get("config") or {}, meta.get("metrics") or {}
    groups = meta.get("groups") or []
    frozen = strategies.frozen_at_start(config["strategy"], groups, config.get("freeze_depth", 0)) if groups and config else ()
    lines = [
        "## What was trained",
        "",
        f"- Backbone: `{meta['backbone']}`, started from {_start(config, metrics)}.",
        f"- Strategy: `{config.get('strategy', '?')}`"
        + (f"; layer groups {', '.join(groups)}; frozen: {', '.join(frozen) or 'none'}" if groups else "")
        + ".",
    ]
    if config:
        lines.append(
            f"- Learning rate {config.get('lr')} (the new head x{config.get('head_lr_mult')}), {config.get('optimizer')}, "
            f"{config.get('epochs')} epochs, batch {config.get('batch_size')}, augmentation {config.get('augment')}, "
            f"seed {config.get('seed')}."
        )
    if metrics.get("trainable_params") and metrics.get("total_params"):
        lines.append(f"- Trainable parameters: {metrics['trainable_params']:,} of {metrics['total_params']:,}.")
    if meta.get("cli"):
        lines.append(f"- The command that trains it again: `{meta['cli']}`")
    return lines


def _on_what(meta: dict, data_title: str, data_note: str) -> list[str]:
    """The card's "On what": the data, the classes in output order, how many examples of each."""
    config, classes = meta.get("config") or {}, meta["classes"]
    return [
        "## On what",
        "",
        f"- Data: {data_title}" + (f" ({data_note})" if data_note else "") + ".",
        f"- Classes ({len(classes)}, in output order): {', '.join(classes)}.",
        (
            f"- Up to {config.get('per_class')} training and {config.get('val_per_class')} validation examples per class, "
            "drawn with the seed (validation first, so the training size never changes the test)"
            if config
            else "- Examples per class not recorded"
        )
        + (f"; images {meta['image_size']} x {meta['image_size']} px, centre square." if meta["task"] == "image" else "."),
    ]


def _metrics(meta: dict) -> list[str]:
    """The card's "Metrics": accuracy on the run's validation split, per class, and how sure it is."""
    metrics, classes = meta.get("metrics") or {}, meta["classes"]
    lines = ["## Metrics (the run's own validation split)", ""]
    if "val_acc" not in metrics:
        return [*lines, "- Not recorded with this file (saved without the run's result)."]
    confusion = metrics.get("confusion") or []
    n = sum(map(sum, confusion)) if confusion else 0
    lines.append(
        f"- Accuracy {metrics['val_acc']:.1%}"
        + (f" on {n} examples" if n else "")
        + (f"; best epoch {metrics['best_val_acc']:.1%}" if "best_val_acc" in metrics else "")
        + (f"; loss {metrics['val_loss']:.3f}" if "val_loss" in metrics else "")
        + "."
    )
    if confusion and len(confusion) == len(classes):
        per = [(c, row[i] / sum(row)) for i, (c, row) in enumerate(zip(classes, confusion, strict=True)) if sum(row)]
        lines.append("- Per class: " + ", ".join(f"{c} {acc:.0%}" for c, acc in per) + ".")
    if n:
        half = 1.96 * (metrics["val_acc"] * (1 - metrics["val_acc"]) / n) ** 0.5
        lines.append(f"- With {n} examples the accuracy is known to about +/- {half:.0%} (95%, normal approximation).")
    return lines


def _limits(meta: dict) -> list[str]:
    """The card's "Limits": what it was never tested for, and the inputs it expects."""
    config, classes = meta.get("config") or {}, meta["classes"]
    lines = [
        "## Limits",
        "",
        "- Trained in minutes on a few examples per class for a lesson: not tested for any real use, "
        "for fairness between groups of people, or against inputs made to fool it.",
        f"- It knows only these {len(classes)} classes: anything else is still given one of them.",
    ]
    if meta["task"] == "image":
        lines.append(
            "- It expects pictures like its data, centre-cropped to a square and resized; other kinds of pictures "
            "(lighting, background, colour or greyscale) may lower its accuracy well below the figure above."
        )
    else:
        lines.append(
            f"- It reads at most {config.get('max_length', 128)} tokens of a sentence, in the language it was trained on."
        )
    return lines
