"""The text family's two tasks, registered with the image task in tlcore.train.tasks (the contract
is there): "text", fine-tuning a BERT-family classifier on sentences, and "mlm", the text page's
live masked-word pretraining from random weights, which is not a fine-tune and so runs itself.

Not for: the recipe both fine-tunes share (tlcore.train.recipe) or the pretraining loop (tlcore.text.mlm).
"""

from __future__ import annotations

import torch

from tlcore.core.events import RunResult
from tlcore.models import catalog
from tlcore.text import mlm_live
from tlcore.text.batches import TextSource
from tlcore.text.bert import build_text_model
from tlcore.train.config import RunConfig
from tlcore.train.finetuned import Finetuned
from tlcore.train.tasks import load_data, wrong_predictions


class TextTask:
    name = "text"
    load = staticmethod(load_data)

    weights = staticmethod(catalog.resolve_pretrained)  # the one fallback rule; text falls back to MiniLM

    @staticmethod
    def build(config: RunConfig, name: str, num_classes: int, pretrained: bool):
        return build_text_model(
            name, num_classes, pretrained=pretrained, lora_r=config.lora_r if config.strategy == "lora" else 0
        )

    @staticmethod
    def source(config: RunConfig, model, data, device: torch.device):
        model.to(device)
        return model, TextSource(data, model.tokenizer, device, config.max_length)

    @staticmethod
    def mistakes(data, source, result: RunResult) -> list[dict]:
        return [
            {"text": data.val_texts[source.val_order[i]], "true": data.classes[t], "pred": data.classes[p]}
            for i, t, p in wrong_predictions(result)
        ]

    @staticmethod
    def extras(config: RunConfig, model, source, data, name: str) -> dict:
        # returned, not kept: the server keeps a learner's own run for the download (tlcore.serve.kept_models)
        return {
            "padding_share": source.padding_share,
            # the encoder's pass for a linear probe's features, run inside the first epoch: what the
            # time estimate counts as the cached pass (tlcore.train.time_estimate.learn_from)
            "extra": {"encode_s": source.encode_s} if source.encode_s else {},
            "model": Finetuned(model.eval(), tuple(data.classes), 0, name, config.to_dict(), task="text"),
        }


class MlmTask:
    name = "mlm"
    run = staticmethod(mlm_live.run)  # (config, emit, should_stop, data) -> RunResult | None, as the recipe's
