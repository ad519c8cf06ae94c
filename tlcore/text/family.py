"""The text family's one registration: its backbones and datasets and its `Family` in the catalog,
its tasks ("text", "mlm") with the image task and its settings' rule with RunConfig. The catalog
imports this module before its registries' first read (`tlcore.models.catalog.FAMILY_MODULES`);
nothing else does, and nothing below the text layer imports the family.

Not for: describing the entries (tlcore.text.specs) or the tasks themselves (tlcore.text.tasks).
"""

from __future__ import annotations

from tlcore.models import catalog
from tlcore.text import bert, mlm_live, specs
from tlcore.text.tasks import MlmTask, TextTask
from tlcore.train import config, tasks


def _unavailable(name: str, fallback: str) -> bert.TextModelUnavailable:
    return bert.TextModelUnavailable(
        f"{name} is not cached: run `python -m tlcore prefetch --backbones {name}` on a connected machine, "
        f"or choose {fallback}, which ships offline"
    )


# bert's functions are looked up when called, as its other callers do (one stand-in for the cache serves all)
FAMILY = catalog.Family(
    name="text",
    offline_backbone=specs.OFFLINE_TEXT_BACKBONE,
    weights_cached=lambda name: bert.is_cached(name),
    hub_reachable=lambda: bert.hub_reachable(),
    unavailable=_unavailable,
    build=lambda name, num_classes, *, pretrained: bert.build_text_model(name, num_classes, pretrained=pretrained),
    needs_files=True,  # a text model needs its tokenizer even from random init
    saved_folders=True,  # a saved model folder is a text model
)

for _spec in specs.TEXT_BACKBONE_SPECS:
    catalog.BACKBONES.register(_spec)
for _spec in specs.TEXT_DATASETS:
    catalog.DATASETS.register(_spec)
catalog.FAMILIES.register(FAMILY)
tasks.TASKS.register(TextTask)
tasks.TASKS.register(MlmTask)
config.TASK_RULES["mlm"] = mlm_live.check_live_config
