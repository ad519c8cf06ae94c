"""What differs between an image run and a text run, behind one contract (`Task`).

`tlcore.train.recipe.run` does the recipe once for any task; a Task answers its five questions:

    load(config)                          -> data (ImageData or TextData: classes, splits)
    weights(backbone, choice)             -> (name, pretrained?, note): what will really run
    build(config, name, classes, pretrained) -> a model with ordered layer `groups`
    source(config, model, data, device)   -> (model on the device, batch source for fit)
    mistakes(data, source, result)        -> up to 12 wrong validation predictions to show
    extras(config, model, source, data, name) -> what only this task reports, and the model

A task that is not a fine-tune gives instead its own `run(config, emit, should_stop, data)`, with
the same events and result as the recipe's: MlmTask, the text page's live masked-word pretraining
from random weights (tlcore.train.mlm_live).

Text imports (transformers, peft) happen inside TextTask's methods: an image run never
pays for them.
"""

from __future__ import annotations

import logging

import torch

from tlcore.core.events import RunResult
from tlcore.data.sources import TensorSource
from tlcore.models import catalog
from tlcore.train import forgetting
from tlcore.train.config import RunConfig
from tlcore.train.finetuned import Finetuned
from tlcore.train.precision import prefers_channels_last

MISTAKES_SHOWN = 12


def _wrong(result: RunResult, limit: int = MISTAKES_SHOWN):
    """(position, true class, predicted class) of the first `limit` wrong validation predictions."""
    wrong = [(i, t, p) for i, (t, p) in enumerate(zip(result.targets, result.predictions, strict=True)) if t != p]
    return wrong[:limit]


def _load(config: RunConfig):
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
    load = staticmethod(_load)
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
            for i, t, p in _wrong(result)
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


class TextTask:
    name = "text"
    load = staticmethod(_load)

    weights = staticmethod(catalog.resolve_pretrained)  # the one fallback rule; text falls back to MiniLM

    @staticmethod
    def build(config: RunConfig, name: str, num_classes: int, pretrained: bool):
        from tlcore.models.text_backbones import build_text_model

        return build_text_model(
            name, num_classes, pretrained=pretrained, lora_r=config.lora_r if config.strategy == "lora" else 0
        )

    @staticmethod
    def source(config: RunConfig, model, data, device: torch.device):
        from tlcore.data.text_source import TextSource

        model.to(device)
        return model, TextSource(data, model.tokenizer, device, config.max_length)

    @staticmethod
    def mistakes(data, source, result: RunResult) -> list[dict]:
        return [
            {"text": data.val_texts[source.val_order[i]], "true": data.classes[t], "pred": data.classes[p]}
            for i, t, p in _wrong(result)
        ]

    @staticmethod
    def extras(config: RunConfig, model, source, data, name: str) -> dict:
        # returned, not kept: the server keeps a learner's own run for the download (tlcore.serve.kept_models)
        return {
            "padding_share": source.padding_share,
            "model": Finetuned(model.eval(), tuple(data.classes), 0, name, config.to_dict(), task="text"),
        }


class MlmTask:
    name = "mlm"

    @staticmethod
    def run(config: RunConfig, emit, should_stop, data) -> RunResult | None:
        from tlcore.train import mlm_live

        return mlm_live.run(config, emit, should_stop, data)


TASKS = {"image": ImageTask, "text": TextTask, "mlm": MlmTask}


def of(config: RunConfig):
    return TASKS[config.task]
