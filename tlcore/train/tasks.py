"""What differs between an image run and a text run, behind one contract (`Task`), and the
registry of tasks: "image" here, "text" and "mlm" registered by their family (tlcore.text.tasks).

`tlcore.train.recipe.run` does the recipe once for any task; a Task answers its five questions:

    load(config)                          -> data (ImageData or TextData: classes, splits)
    weights(backbone, choice)             -> (name, pretrained?, note): what will really run
    build(config, name, classes, pretrained) -> a model with ordered layer `groups`
    source(config, model, data, device)   -> (model on the device, batch source for fit)
    mistakes(data, source, result)        -> up to 12 wrong validation predictions to show
    extras(config, model, source, data, name) -> what only this task reports, and the model

A task that is not a fine-tune gives instead its own `run(config, emit, should_stop, data)`, with
the same events and result as the recipe's (mlm: the text page's live masked-word pretraining
from random weights).
"""

from __future__ import annotations

import logging

import torch

from tlcore.core.events import RunResult
from tlcore.core.registry import Registry
from tlcore.models import catalog
from tlcore.train import forgetting
from tlcore.train.config import RunConfig
from tlcore.train.finetuned import Finetuned
from tlcore.train.image_batches import TensorSource
from tlcore.train.precision import prefers_channels_last

MISTAKES_SHOWN = 12


def wrong_predictions(result: RunResult, limit: int = MISTAKES_SHOWN):
    """(position, true class, predicted class) of the first `limit` wrong validation predictions."""
    wrong = [(i, t, p) for i, (t, p) in enumerate(zip(result.targets, result.predictions, strict=True)) if t != p]
    return wrong[:limit]


def load_data(config: RunConfig):
    """The config's dataset from the catalog, split as the config says (every fine-tune's `load`)."""
    return catalog.load_dataset(
        config.dataset,
        per_class=config.per_class,
        image_size=config.image_size,
        seed=config.data_seed,
        val_per_class=config.val_per_class,
        root=config.data_root,
    )


class ImageTask:
    name = "image"
    load = staticmethod(load_data)
    weights = staticmethod(catalog.resolve_pretrained)

    @staticmethod
    def build(config: RunConfig, name: str, num_classes: int, pretrained: bool):
        return catalog.build_model(name, num_classes, pretrained=pretrained, image_size=config.image_size)

    @staticmethod
    def source(config: RunConfig, model, data, device: torch.device):
        channels_last = prefers_channels_last(device)
        model = model.to(device, memory_format=torch.channels_last) if channels_last else model.to(device)
        return model, TensorSource(data, device, config.augment, channels_last)

    @staticmethod
    def mistakes(data, _source, result: RunResult) -> list[dict]:
        return [
            {"image": data.val_x[i].permute(1, 2, 0).numpy(), "true": data.classes[t], "pred": data.classes[p]}
            for i, t, p in wrong_predictions(result)
        ]

    @staticmethod
    def extras(config: RunConfig, model, _source, data, name: str) -> dict:
        out = {}
        if forgetting.applies(name, config.strategy, model.pretrained_from != "random init"):
            # the old ImageNet head on the fine-tuned body: what the network still knows (stored with the run)
            try:
                out["forgetting"] = forgetting.measure(model, name)
            except Exception:  # noqa: BLE001 -- a lesson extra: the learner's run must not be lost to it
                logging.getLogger(__name__).exception("forgetting: could not measure %s", name)
        # returned, not kept: the server keeps a learner's own run for "Try it" and the download (tlcore.serve.kept_models)
        out["model"] = Finetuned(model.eval(), tuple(data.classes), config.image_size, name, config.to_dict())
        return out


TASKS: Registry[type] = Registry("task", load=catalog.load_families)  # a family registers its own (tlcore.text.tasks)
TASKS.register(ImageTask)


def of(config: RunConfig):
    return TASKS.get(config.task)
