"""A matrix run on disk: <name>.csv (the summary), <name>_runs.csv (every run), <name>.json (with
how it was made) and <name>.md (the table and each cell's verdict in words); ``resummarise_matrix``
rewrites them from the committed runs without training.

Not for: running or reading the matrix (matrix), reading committed files back (results).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from tlcore.core.spreadsheet import safe_frame
from tlcore.lab.experiments.matrix import (
    RULE,
    MatrixSettings,
    backbone_groups,
    cell_verdicts,
    partial_depths,
    summarise_matrix,
    with_depths,
)
from tlcore.lab.experiments.results import RESULTS_DIR, provenance
from tlcore.models import catalog


def write_matrix(
    runs: pd.DataFrame, settings: MatrixSettings, out_dir: Path, command: str, seconds: float, name: str = "matrix"
) -> dict:
    """Write <name>.csv (summary), <name>_runs.csv (every run), <name>.json and <name>.md.

    The JSON says what was measured: the backbone and image size (in "settings"), its layer
    groups ("groups"), and each row's freeze depth (in "table" and "runs")."""
    out_dir.mkdir(parents=True, exist_ok=True)
    groups = settings.groups()
    table = summarise_matrix(runs)
    verdicts = cell_verdicts(table, num_groups=len(groups))
    safe_frame(runs).to_csv(out_dir / f"{name}_runs.csv", index=False)
    safe_frame(table).to_csv(out_dir / f"{name}.csv", index=False)
    payload = {
        **provenance(command, seconds, settings),
        "groups": groups,
        "table": table.to_dict("records"),
        "verdicts": verdicts,
        "runs": runs.to_dict("records"),
    }
    (out_dir / f"{name}.json").write_text(json.dumps(payload, indent=2, default=float) + "\n", encoding="utf-8")
    (out_dir / f"{name}.md").write_text(matrix_markdown(table, verdicts, payload), encoding="utf-8")
    return payload


def _pretrained_on(backbone: str) -> str:
    if catalog.backbone(backbone).pretrained_on == "synthetic":
        return "pretrained offline on synthetic procedural images, not ImageNet"
    return "pretrained on ImageNet"


def _matrix_table(table: pd.DataFrame) -> list[str]:
    """One row per cell, one column per strategy: mean ± std over seeds, the winners in bold."""
    lines = []
    strategies = list(dict.fromkeys(table["strategy"]))
    lines += ["| cell | dataset | " + " | ".join(strategies) + " | winner |", "|---|---|" + "---:|" * len(strategies) + "---|"]
    for (sim, size), cell in table.groupby(["similarity", "size"], sort=False):
        first = cell.iloc[0]
        cells = []
        for st in strategies:
            texts = []
            for r in cell[cell["strategy"] == st].itertuples():
                text = f"{100 * r.val_acc_mean:.1f} ± {100 * (r.val_acc_std if r.val_acc_std == r.val_acc_std else 0):.1f}"
                text += f" (k={r.freeze_depth})" if st == "partial" else ""
                texts.append(f"**{text}**" if r.winner else text)
            cells.append("<br>".join(texts))
        winner = ", ".join(cell.loc[cell["winner"], "strategy"])  # equal means: every best one
        lines.append(f"| {sim} + {size} ({first.per_class}/class) | {first.dataset} | " + " | ".join(cells) + f" | {winner} |")
    return lines


def _verdict_line(v: dict) -> str:
    """One cell's verdict against the seeds' matrix, as a Markdown list item."""
    mark = (
        ("agrees (a tie within the seeds' spread)" if v.get("tie") else "agrees")
        if v["agrees"]
        else "**does not agree**"
        if v.get("measured", True)
        else f"**not measured**: the rule's {v['expected']} at k={v['expected_depth']} was not raced"
    )
    return (
        f"- {v['similarity']} + {v['size']}: the matrix says *{v['advice']}* ({v['expected']}, "
        f"k={v['expected_depth']}, {_pm(v['expected_acc'], v.get('expected_std'))}); measured winner "
        f"**{v['winner']}** (k={v['winner_depth']}, {_pm(v['winner_acc'], v.get('winner_std'))}): {mark}. "
        + (
            f"Best pretrained strategy vs scratch: {100 * v['transfer_gain']:+.1f} points."
            if v["transfer_gain"] is not None
            else ""
        )
        + (
            f" The pretrained strategies lie within {100 * v['spread']:.1f} points of each other: "
            "this target is too easy at this size to tell them apart."
            if v["spread"] < 0.015
            else ""
        )
    )


def matrix_markdown(table: pd.DataFrame, verdicts: list[dict], meta: dict) -> str:
    s = meta["settings"]
    depths = "; ".join(f"{sim}: k = {', '.join(map(str, ks))}" for sim, ks in partial_depths(table).items())
    lines = [
        "# The transfer matrix, measured",
        "",
        f"Backbone `{s['backbone']}` ({_pretrained_on(s['backbone'])}), "
        f"{s['image_size']} px, seeds {', '.join(map(str, s['seeds']))}; val accuracy, mean ± std over seeds "
        f"({s['val_per_class']} validation images per class). Partial = the first k of "
        f"{len(meta['groups'])} groups ({', '.join(meta['groups'])}) frozen ({depths}); "
        f"a linear probe freezes all {len(meta['groups']) - 1} body groups.",
        "",
        f"Made by `{meta['command']}` in {meta['seconds'] / 60:.1f} min on {meta['device']} ({meta['created']}).",
        "",
    ]
    lines += _matrix_table(table)
    lines += ["", "## Against the seeds' matrix", ""]
    lines += [f"Rule: {RULE}.", ""]
    lines += [_verdict_line(v) for v in verdicts]
    if not all(v["agrees"] for v in verdicts):
        lines += [
            "",
            "A cell that does not follow the matrix is a lesson too. The matrix is a rule of thumb "
            "for large backbones pretrained on large photo collections; here the backbone is small"
            + (", its source is synthetic" if catalog.backbone(s["backbone"]).pretrained_on == "synthetic" else "")
            + ", and each run gets a few epochs on a few examples per class. With so few examples, "
            "training fewer weights (a linear probe) over-fits least; the closer the target is to the "
            "source, the longer freezing stays the best choice.",
        ]
    return "\n".join(lines) + "\n"


def _pm(mean: float | None, std: float | None) -> str:
    """'94.9 ± 1.4%': a mean with its spread over seeds, in percent."""
    if mean is None:
        return "not measured"
    return f"{100 * mean:.1f} ± {100 * std:.1f}%" if std is not None and std == std else f"{100 * mean:.1f}%"


def resummarise_matrix(name: str = "matrix", out_dir: Path | str = RESULTS_DIR) -> dict:
    """Rewrite <name>.csv/.json/.md from the committed <name>_runs.csv, keeping how and when
    the runs were made (no training): for when the reading of the runs changes, not the runs."""
    out_dir = Path(out_dir)
    old = json.loads((out_dir / f"{name}.json").read_text(encoding="utf-8"))
    settings = old["settings"]
    runs = with_depths(pd.read_csv(out_dir / f"{name}_runs.csv"), settings)
    groups = old.get("groups") or backbone_groups(settings["backbone"], settings["image_size"])
    table = summarise_matrix(runs)
    verdicts = cell_verdicts(table, num_groups=len(groups))
    safe_frame(runs).to_csv(out_dir / f"{name}_runs.csv", index=False)
    safe_frame(table).to_csv(out_dir / f"{name}.csv", index=False)
    keep = {k: v for k, v in old.items() if k not in ("groups", "table", "verdicts", "runs")}
    payload = {**keep, "groups": groups, "table": table.to_dict("records"), "verdicts": verdicts, "runs": runs.to_dict("records")}
    (out_dir / f"{name}.json").write_text(json.dumps(payload, indent=2, default=float) + "\n", encoding="utf-8")
    (out_dir / f"{name}.md").write_text(matrix_markdown(table, verdicts, payload), encoding="utf-8")
    return payload
