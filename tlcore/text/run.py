"""A text run: RunConfig(task="text") -> data, model, plan, the shared trainer.

`tlcore.trainer.run` hands text configs to `run_text`, so the app, the CLI and the tests
get the same events (Started, StepEvent with one gradient-norm row per encoder layer,
EvalEvent, Done / Failed / Cancelled) as for images.

Strategies on text are the engine's (tlcore.strategies) on the groups
embeddings, layer0..N-1, head, plus one of our own:
    lora   pretrained weights frozen, low-rank adapters in each layer and the head train.

Not for: the loop itself (tlcore.trainer) or model loading (tlcore.text.models).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from tlcore import strategies
from tlcore.config import RunConfig
from tlcore.device import pick_device
from tlcore.events import Cancelled
from tlcore.text import OFFLINE_TEXT_BACKBONE
from tlcore.text.models import TextModelUnavailable, build_text_model, is_cached, is_model_dir, lora_share
from tlcore.text.source import TextSource
from tlcore.trainer import fit, fit_options, load_run_data, pretrained_choice, seed_everything


def lora(groups: list[str], *, lr: float, head_lr_mult: float, **_) -> strategies.Plan:
    """Adapters: the pretrained weights stay frozen; each layer's small LoRA matrices and the head learn."""
    frozen, *adapters, head = groups  # "pretrained", layer0..N-1 (adapters only), "head"
    return strategies.Plan("lora", True, (frozen,), {g: lr for g in adapters} | {head: lr * head_lr_mult}, lr=lr)


# One learning-rate rule, wherever a text run is made (the Fine-tune tab, the race, the CLI
# through the app's configs): LoRA's adapters start at zero and a from-scratch model starts
# random, so both take the usual larger rate (measured on the offline sample,
# assets/text/RESULTS.md); the other strategies use the rates the learner set.
OWN_RATES = {"lora": {"lr": 1e-3, "head_lr_mult": 1.0}, "scratch": {"lr": 1e-3, "head_lr_mult": 1.0}}


def strategy_rates(strategy: str, lr: float, head_lr_mult: float) -> dict[str, float]:
    """The learning rate and head multiplier a text strategy trains with."""
    return dict(OWN_RATES.get(strategy, {"lr": lr, "head_lr_mult": head_lr_mult}))


def text_plan(config: RunConfig, groups: list[str]) -> strategies.Plan:
    settings = dict(lr=config.lr, head_lr_mult=config.head_lr_mult, freeze_depth=config.freeze_depth,
                    layer_decay=config.layer_decay)
    if config.strategy == "lora":
        return lora(groups, **settings)
    if config.strategy == "partial" and config.freeze_depth > len(groups) - 1:
        raise ValueError(f"this model has {len(groups) - 1} groups before its head (embeddings and "
                         f"{len(groups) - 2} layers); freeze depth must be 0..{len(groups) - 1}")
    return strategies.make_plan(config.strategy, groups, **settings)


def resolve_text_pretrained(name: str, choice: str) -> tuple[str, bool, str]:
    """(backbone, pretrained?, note): like backbones.resolve_pretrained, for text models.

    auto: the named model if cached (or the hub answers); otherwise the offline MiniLM,
    with a note saying so. yes: fail with the prefetch command instead.
    """
    from tlcore.text.models import hub_reachable

    if is_model_dir(name) or is_cached(name) or hub_reachable():
        return name, choice != "no", ""
    if choice == "auto" and name != OFFLINE_TEXT_BACKBONE and is_cached(OFFLINE_TEXT_BACKBONE):
        return (OFFLINE_TEXT_BACKBONE, True,
                f"{name} is not cached and the hub cannot be reached; using the offline {OFFLINE_TEXT_BACKBONE} instead "
                f"(`python -m tlcore prefetch --backbones {name}` fills the cache)")
    raise TextModelUnavailable(
        f"{name} is not cached: run `python -m tlcore prefetch --backbones {name}` on a connected machine, "
        f"or choose {OFFLINE_TEXT_BACKBONE}, which ships offline"
    )


def run_text(config: RunConfig, emit: Callable[[object], None],
             should_stop: Callable[[], bool] = lambda: False) -> dict | None:
    """One text fine-tuning run; returns the result dict, or None when cancelled.

    Errors propagate (tlcore.trainer.run turns them into a Failed event).
    """
    device = pick_device(config.device)
    generator = seed_everything(config.seed)
    data = load_run_data(config)
    if should_stop():
        emit(Cancelled(0))
        return None
    name, pretrained, note = resolve_text_pretrained(config.backbone, pretrained_choice(config))
    torch.manual_seed(config.seed)  # the same head init for every strategy of a race
    model = build_text_model(name, data.num_classes, pretrained=pretrained,
                             lora_r=config.lora_r if config.strategy == "lora" else 0)
    plan = text_plan(config, model.group_names)
    model.to(device)
    source = TextSource(data, model.tokenizer, device, config.max_length)
    result = fit(model, plan, source, fit_options(config), device=device, emit=emit, should_stop=should_stop,
                 generator=generator, classes=tuple(data.classes),
                 started_extra={"pretrained": model.pretrained_from + (f" ({note})" if note else "")})
    if result is None:
        return None
    result.update(
        backbone=name, strategy=config.strategy, classes=list(data.classes), note=note,
        pretrained=model.pretrained_from, padding_share=source.padding_share,
        sentences_per_s=result["train_per_s"], misclassified=misclassified(data, source, result),
    )
    if config.strategy == "lora":
        result["lora"] = str(lora_share(model))
    return result


def misclassified(data, source: TextSource, result: dict, limit: int = 12) -> list[dict]:
    """Up to `limit` wrong validation predictions with their sentences."""
    out = []
    for pos, (t, p) in enumerate(zip(result["targets"], result["predictions"], strict=True)):
        if t != p:
            text = data.val_texts[source.val_order[pos]]
            out.append({"text": text, "true": data.classes[t], "pred": data.classes[p]})
            if len(out) == limit:
                break
    return out

