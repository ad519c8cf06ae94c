"""What a run measures, named once: gradient norms, weight drift, confusion, trainable counts.

Metric names are the same in the event stream, the history table (CSV), result dicts and
the CLI; see METRICS. The "trainable: N of M (x%)" readout is `Trainable` here, whatever
shows it (page 2's block diagram, the text page, the race table, the CLI).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

# name -> meaning; the history table's columns and the result dict's keys use these names
METRICS = {
    "train/loss": "mean training loss over the steps since the last logged step",
    "train/acc": "training accuracy of the epoch (augmented batches, while weights change)",
    "val/loss": "mean validation loss after the epoch",
    "val/acc": "validation accuracy after the epoch",
    "lr": "the learning rate the learner set, at this step of the warm-up and cosine schedule",
    "lr/<group>": "the rate of each trained group at this step (head multiplier, layer decay)",
    "grad_norm/<group>": "L2 norm of the group's gradients at the logged step",
    "examples_per_s": "training examples per second through the trained part (images or sentences)",
    "seconds": "wall time since the run started",
}


@dataclass(frozen=True)
class Trainable:
    """Parameters that receive updates out of all parameters: the PEFT-style readout."""

    trainable: int
    total: int

    @classmethod
    def of(cls, counts: dict[str, int], frozen) -> Trainable:
        """From a model's per-group parameter counts and the groups frozen."""
        return cls(sum(n for g, n in counts.items() if g not in frozen), sum(counts.values()))

    @property
    def percent(self) -> float:
        return 100 * self.trainable / max(self.total, 1)

    def values(self) -> dict[str, str]:
        """The readout's fields as shown: '1.2M', '11.2M', '10.7' (two decimals under 1%, LoRA)."""
        digits = 2 if self.percent < 1 else 1
        return {"trainable": human(self.trainable), "total": human(self.total), "percent": f"{self.percent:.{digits}f}"}

    def __str__(self) -> str:
        v = self.values()
        return f"trainable: {v['trainable']} of {v['total']} ({v['percent']}%)"


def human(n: int) -> str:
    """Three significant digits: 1234567 -> '1.23M', 11_200_000 -> '11.2M', 928 -> '928'."""
    return f"{n / 1e6:.3g}M" if n >= 1e6 else f"{n / 1e3:.3g}K" if n >= 1e3 else str(n)


def param_counts(model: nn.Module) -> dict[str, int]:
    """Parameters per layer group, in group order (what `model.param_counts()` answers), read from
    the model's `groups` as the other measures here read them."""
    return {g: sum(p.numel() for p in m.parameters()) for g, m in model.groups.items()}


def count_trainable(model: nn.Module, frozen: tuple[str, ...]) -> Trainable:
    """The readout for a grouped model (tlcore.models.groups.LayerGroups) with `frozen` groups frozen."""
    return Trainable.of(param_counts(model), frozen)


def grad_norms_by_group(model: nn.Module, names: list[str]) -> torch.Tensor:
    """L2 norm of each listed group's gradients as one tensor (no host sync): sqrt(sum ||g_i||^2)."""
    norms = []
    for name in names:
        grads = [p.grad for p in model.groups[name].parameters() if p.grad is not None]
        if not grads:
            norms.append(torch.zeros((), device=_device_of(model)))
            continue
        per_tensor = torch._foreach_norm(grads)  # one fused kernel for all tensors of the group
        norms.append(torch.linalg.vector_norm(torch.stack(per_tensor)))
    return torch.stack(norms) if norms else torch.zeros(0)


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def weight_drift(model, initial: dict[str, torch.Tensor]) -> dict[str, float]:
    """Per layer group: ||w - w0|| / ||w0|| over its pretrained weights (the head is new: left out)."""
    out = {}
    for group, module in list(model.groups.items())[:-1]:
        diff, base = 0.0, 0.0
        for name, p in module.named_parameters(prefix=f"groups.{group}"):
            if name in initial:
                diff += (p.detach().float() - initial[name].float()).pow(2).sum().item()
                base += initial[name].float().pow(2).sum().item()
        if base > 0:
            out[group] = math.sqrt(diff / base)
    return out


def confusion_matrix(targets: list[int], preds: list[int], n: int | None = None) -> list[list[int]]:
    """(true class, predicted class) counts."""
    n = n or (max(targets + preds) + 1)
    m = np.zeros((n, n), dtype=int)
    np.add.at(m, (np.asarray(targets), np.asarray(preds)), 1)
    return m.tolist()
