"""A fine-tuned model with what it takes to use it: its classes, input size, backbone and settings.

A finished image or text run returns one (`recipe.run`'s result, under "model"): training
keeps nothing. Who keeps it is the caller's choice: the class server keeps a learner's own
Fine-tune run on its shelf (tlcore.serve.kept_models) for "Try it" and the download (tlcore.takehome.model_files);
the CLI saves it (`--save-model`); a race, a sweep or an experiment drops it.

Not for: keeping models (tlcore.serve.kept_models) or persisting runs (tlcore.serve.store).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from tlcore.core.bounded import tensor_bytes
from tlcore.models.imagenet import probabilities


@dataclass(frozen=True)
class Finetuned:
    model: torch.nn.Module  # eval mode; on the device it trained on until `on_cpu()`
    classes: tuple[str, ...]
    image_size: int  # 0 for a text model
    backbone: str  # the backbone that really ran (an offline fallback, not always the config's)
    config: dict | None = None  # the run's RunConfig.to_dict()
    task: str = "image"

    def on_cpu(self) -> Finetuned:
        """The same model on the CPU, in eval mode and the usual memory layout (to keep, or to
        send from a Ray worker to the server)."""
        return replace(self, model=self.model.to("cpu", memory_format=torch.contiguous_format).eval())


def model_bytes(model: torch.nn.Module) -> int:
    """Bytes of a model's weights (parameters shared between modules counted once)."""
    return tensor_bytes(list({id(p): p for p in model.parameters()}.values()))


def class_probabilities(entry: Finetuned, image: np.ndarray) -> list[tuple[str, float]]:
    """The fine-tuned model's probability for each of its task's classes, highest first."""
    probs = probabilities(entry.model, image, entry.image_size).tolist()
    return sorted(zip(entry.classes, probs), key=lambda item: -item[1])
