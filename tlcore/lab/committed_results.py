"""Committed experiment results as page 4 shows them: read, described, turned into rows.

The measured matrix says what it was measured with (backbone, image size, freeze depths)
from the result file's own metadata, never from text written beside it. Words come
through a `translate(key, **values)` function the page passes in (the app's `t`), so this
module needs no streamlit.

    matrix = committed_results.measured_matrix("matrix")    None when not committed
    matrix.backbone, matrix.image_size, matrix.partial_depths, matrix.verdicts
    committed_results.results_rows(matrix.table, t)         the details table, translated
    committed_results.recommended_markdown(num_groups, t)   the rule of thumb for a backbone
    committed_results.transfer_depth_series(result, t)      curves for plots.depth_figure

Not for: running experiments (tlcore.lab.experiments) or drawing (studio.plots).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tlcore.lab import experiments
from tlcore.models import catalog
from tlcore.train import strategies

Translate = Callable[..., str]  # (key, **values) -> text in the learner's language


def read(name: str, out_dir: Path | str = experiments.RESULTS_DIR) -> dict | None:
    """A committed result ("matrix", "transfer_depth", ...), or None if absent or unreadable."""
    try:
        return experiments.read_results(name, out_dir)
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class MeasuredMatrix:
    """A committed matrix measurement and what it was measured with (from its own file)."""

    backbone: str
    pretrained_on: str  # "imagenet" or "synthetic"
    image_size: int  # pixels square
    groups: list[str]  # the backbone's layer groups, shallow to deep
    partial_depths: dict[str, list[int]]  # similarity column -> the k partial was raced at
    datasets: dict[str, str]  # similarity column -> target dataset
    seeds: int  # seeds per strategy and cell
    commands: list[str]  # how it was made
    device: str
    table: list[dict]  # per cell, strategy and depth: mean and std accuracy
    verdicts: list[dict]  # per cell: experiments.cell_verdicts


def measured_matrix(*names: str, out_dir: Path | str = experiments.RESULTS_DIR) -> MeasuredMatrix | None:
    """One or more committed matrix files made with the same backbone and size, as one
    measurement (the ImageNet matrix is committed cell by cell); None if none is there."""
    payloads = [p for p in (read(n, out_dir) for n in names or ("matrix",)) if p]
    if not payloads:
        return None
    first = payloads[0]["settings"]
    groups = payloads[0].get("groups") or experiments.backbone_groups(first["backbone"], first["image_size"])
    table = [row for p in payloads for row in _with_depth(p["table"], p["settings"], len(groups))]
    return MeasuredMatrix(
        backbone=first["backbone"],
        pretrained_on=catalog.backbone(first["backbone"]).pretrained_on,
        image_size=int(first["image_size"]),
        groups=list(groups),
        partial_depths=experiments.partial_depths(table),
        datasets={r["similarity"]: r["dataset"] for r in table},
        seeds=min(int(r["seeds"]) for r in table),
        commands=[p.get("command", "?") for p in payloads],
        device=payloads[0].get("device", "?"),
        table=table,
        verdicts=[v for p in payloads for v in p.get("verdicts", [])],
    )


def _with_depth(rows: list[dict], settings: dict, num_groups: int) -> list[dict]:
    """Rows of a file saved before each row carried its freeze depth: the depth from its settings."""
    depth = {"linear_probe": num_groups - 1, "partial": settings.get("freeze_depth")}
    return [r if "freeze_depth" in r else {**r, "freeze_depth": depth.get(r["strategy"], 0)} for r in rows]


def setup_text(m: MeasuredMatrix, t: Translate) -> str:
    """One line naming what a measured matrix was measured with, in the learner's language."""
    depths = ", ".join(f"k = {'/'.join(map(str, ks))} ({t(f'matrix.{sim}')})" for sim, ks in m.partial_depths.items())
    return t(
        "page4.measured_setup",
        backbone=backbone_title(m.backbone, t),
        size=m.image_size,
        depths=depths,
        groups=len(m.groups),
        body=len(m.groups) - 1,
        seeds=m.seeds,
        datasets=", ".join(f"{t(f'matrix.{sim}')}: {_title(d, t)}" for sim, d in m.datasets.items()),
    )


def backbone_title(backbone: str, t: Translate) -> str:
    text = t(f"backbone.title.{backbone}")
    return catalog.backbone(backbone).title if text == f"backbone.title.{backbone}" else text


def _title(dataset: str, t: Translate) -> str:
    text = t(f"dataset.{dataset}")
    return catalog.dataset(dataset).title if text == f"dataset.{dataset}" else text


def at_rule_depths(m: MeasuredMatrix) -> bool:
    """Was every cell's recommended strategy raced at the rule's depth (strategies.recommend)?"""
    return all(v.get("measured", False) for v in m.verdicts)


def results_rows(table: list[dict], t: Translate) -> list[dict]:
    """A committed matrix table in the learner's language: cell, examples, strategy (with k
    for partial), accuracy mean ± std, seeds, and the cell's best."""

    def std(r: dict) -> float:
        value = r.get("val_acc_std")
        return value if value is not None and value == value else 0.0

    def strategy(r: dict) -> str:
        k = r.get("freeze_depth")
        return t(f"strategy.{r['strategy']}") + (f" (k={k})" if r["strategy"] == "partial" and k is not None else "")

    return [
        {
            t("results.col.cell"): f"{t('matrix.' + r['similarity'])} + {t('matrix.' + r['size'])}",
            t("results.col.examples"): r["per_class"],
            t("race.col.strategy"): strategy(r),
            t("results.col.accuracy"): f"{100 * r['val_acc_mean']:.1f} ± {100 * std(r):.1f}",
            t("results.col.seeds"): r.get("seeds", ""),
            t("results.col.winner"): "✓" if r.get("winner") else "",
        }
        for r in table
    ]


def recommended_markdown(num_groups: int, t: Translate) -> str:
    """The rule of thumb as the engine applies it to a backbone of `num_groups` groups, as a
    Markdown table (a table wraps long cells, unlike a dataframe)."""
    lines = [f"| | {t('matrix.col.similar')} | {t('matrix.col.different')} |", "|---|---|---|"]
    for size in ("large", "small"):
        cells = []
        for similarity in ("similar", "different"):
            rec = strategies.recommend(similarity, size, num_groups=num_groups)
            cells.append(
                f"{t(f'matrix.cell.{size}_{similarity}')}<br>→ **{t(f'strategy.{rec.strategy}')}** (k={rec.freeze_depth})"
            )
        lines.append(f"| **{t(f'matrix.row.{size}')}** | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def transfer_depth_series(result: dict, t: Translate) -> dict[str, tuple[list[int], list[float]]]:
    """A committed transfer-depth result as curves: mode label -> (k values, mean accuracies)."""
    series: dict[str, tuple[list[int], list[float]]] = {}
    for row in result.get("table", []):
        depths, accs = series.setdefault(t(f"page4.transfer_depth.mode.{row['mode']}"), ([], []))
        depths.append(row["k"])
        accs.append(row["val_acc_mean"])
    return series
