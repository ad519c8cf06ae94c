"""What the engine says to a learner: a message key and its values, not a finished sentence.

The engine knows no language but English (the CLI prints `str(message)`); the app shows
each message in the learner's language by looking its key up in the translation files
(`engine.<key>` in assets/i18n/<lang>.json), with these English templates as the fallback.
An error a learner can act on is a `LearnerError`: a ValueError (so existing handlers keep
working) that carries its `Message`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# English templates; the keys are what the translation files translate.
EN: dict[str, str] = {
    "config.bool": "{name} must be true or false, got {value}",
    "config.number": "{name} must be a number, got {value}",
    "config.whole": "{name} must be a whole number, got {value}",
    "config.range": "{name} must be between {lo} and {hi}, got {value}",
    "config.choice": "{name} must be one of {choices}; got {value}",
    "config.unknown_backbone": "unknown backbone {value}; choose one of: {choices}",
    "config.unknown_dataset": "unknown dataset {value}; choose one of: {choices}",
    "config.backbone_task": "backbone {backbone} is a {family} model but task is {task}",
    "config.dataset_task": "dataset {dataset} is for {family} models but task is {task}",
    "config.lora_images": "strategy 'lora' is for text models; for images use partial or full",
    "config.unknown_setting": "unknown setting(s): {names}",
    "run.freeze_depth": "{backbone} has {body} groups before its head; freeze depth must be 0..{body}",
    "run.out_of_memory": "out of device memory at batch size {batch_size} and image size {image_size}: "
                         "lower the batch size or the image size, or choose a smaller backbone",
    "run.unexpected": "the run stopped with an unexpected error: {error}",
    "data.too_big": "{images} images at {size} px would take {gib} GiB decoded (at most {limit} GiB per dataset): "
                    "use fewer images or a smaller image size",
    "mask.too_long": "the sentence has {chars} characters; at most {limit}: shorten it",
    "mask.too_many": "the sentence has {masks} [MASK]s; at most {limit}: hide fewer words",
    "weights.fallback": "{name}'s pretrained weights are not available offline; using the offline backbone "
                        "{fallback} instead",
    "weights.none": "no pretrained weights available for {name}; training from random init",
    "weights.unavailable": "pretrained weights for {name} are not available offline: run `python -m tlcore "
                           "prefetch --backbones {name}` when online, or choose the offline backbone {fallback}",
}


@dataclass(frozen=True)
class Message:
    key: str
    values: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        template = EN.get(self.key)
        return template.format(**self.values) if template else f"{self.key} {self.values}"


class LearnerError(ValueError):
    """A problem the learner can fix; `str(error)` is English, `error.message` translatable."""

    def __init__(self, key: str, **values: Any):
        self.message = Message(key, values)
        super().__init__(str(self.message))


def message_of(error: BaseException | str) -> Message | None:
    """The translatable message an error carries, if any."""
    return getattr(error, "message", None) if isinstance(getattr(error, "message", None), Message) else None
