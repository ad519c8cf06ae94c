"""The experiments' results folder: where their files go (``assets/results/``), what each file
records of how it was made (``provenance``), and the committed files read back: one result
(``read_results``), or the contrast across three (``transfer_contrast``: what synthetic and
ImageNet pretraining each transfer to, page 1's table).

Not for: running an experiment (matrix, transfer_depth, filters), page 4's reading of the
committed matrix (tlcore.lab.committed_results).
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import asdict
from pathlib import Path

import torch

RESULTS_DIR = Path(__file__).resolve().parents[3] / "assets" / "results"


def provenance(command: str, seconds: float, settings) -> dict:
    """What a results file records of how it was made: the command, its time, the device, torch,
    the offline checkpoint's hash (studio_resnet), when, and every setting."""
    from tlcore.lab.pretrain_vision import read_card
    from tlcore.train.device import describe_device

    card = (read_card() or {}) if settings.backbone == "studio_resnet" else {}
    return {
        "command": command,
        "seconds": round(seconds, 1),
        "device": describe_device(torch.device(settings.device)),
        "torch_version": torch.__version__,
        "checkpoint_sha256": card.get("file", {}).get("sha256"),
        "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "settings": asdict(settings),
    }


def read_results(name: str, out_dir: Path | str = RESULTS_DIR) -> dict | None:
    """A committed result ("matrix", "transfer_depth", ...) as saved in its JSON, or None if missing.

    For the app: ``read_results("matrix")["table"]`` is the per-cell, per-strategy table,
    ``["verdicts"]`` the comparison with the seeds' matrix, ``["command"]`` how it was made.
    """
    path = Path(out_dir) / f"{name}.json"
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- what transfers where

# (results file, cell) pairs behind "synthetic pretraining transfers to similar synthetic
# targets and much less to real photos; ImageNet pretraining transfers to real photos".
CONTRAST = (
    ("matrix", ("similar", "small")),  # studio_resnet -> unseen synthetic classes
    ("matrix_synthetic_fashion", ("different", "small")),  # studio_resnet -> real Fashion-MNIST
    ("matrix_imagenet_small", ("different", "small")),  # EfficientNet-Lite0 -> real Fashion-MNIST
)


def transfer_contrast(out_dir: Path | str = RESULTS_DIR) -> list[dict]:
    """One row per committed measurement: backbone, target, examples per class, scratch,
    the best pretrained strategy, and its gain over scratch (points). Missing files are skipped."""
    rows = []
    for name, (sim, size) in CONTRAST:
        payload = read_results(name, out_dir)
        if not payload:
            continue
        cell = [r for r in payload["table"] if (r["similarity"], r["size"]) == (sim, size)]
        if not cell:
            continue
        means = {r["strategy"]: r["val_acc_mean"] for r in cell}
        best = max((s for s in means if s != "scratch"), key=means.get)
        rows.append(
            {
                "backbone": payload["settings"]["backbone"],
                "dataset": cell[0]["dataset"],
                "per_class": cell[0]["per_class"],
                "scratch": means["scratch"],
                "best": best,
                "best_acc": means[best],
                "gain_points": 100 * (means[best] - means["scratch"]),
                "seeds": cell[0]["seeds"],
                "file": name,
            }
        )
    return rows
