"""LayerGroups: what the training loop, the strategies and the metrics read of a model.

A model is a list of layer groups run one after the other, shallow to deep, the last one the
new head (vision: stem, stage1..4, head; text: embeddings, layer0..N-1, head). Freeze depth k
means the first k groups frozen; the block diagram, the freeze slider, the gradient-norm rows
and the sweeps all read these same groups. Two classes have them: GroupedModel
(tlcore.models.backbones) and TextClassifier (tlcore.text.bert).

Not for: building a model (tlcore.models.catalog.build_model) or the plan of what trains
(tlcore.train.strategies).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import nn


@runtime_checkable
class LayerGroups(Protocol):
    groups: nn.ModuleDict  # name -> module, shallow to deep; the last is the head

    @property
    def group_names(self) -> list[str]: ...

    def param_counts(self) -> dict[str, int]:
        """Parameters per group, in group order."""
        ...
