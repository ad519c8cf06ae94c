"""Charts that set runs or models side by side: a race's curves (one per strategy), accuracy
against a depth (the freeze-depth sweep, the committed transfer-depth experiment), the measured
2x2 matrix of best strategies, and the first layer's filters, pretrained beside random.

Not for: one run's charts (one_run), a chart as words (chart_text), what every chart shares
(style), running the experiments (tlcore.lab.experiments).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from studio.plots.style import (
    _PALETTE,
    TOOLBAR_PX,
    Translate,
    _chance,
    _english,
    _epoch_axis,
    _fonts,
    _layout,
    _pct,
    _title,
    _waiting,
)
from tlcore.core.events import HistorySnapshot
from tlcore.lab.experiments import tile_grid

# --- several runs ----------------------------------------------------------------------


def race_figure(runs: Mapping[str, HistorySnapshot], metric: str = "val/acc", t: Translate = _english) -> go.Figure:
    """One curve per run (strategy) of validation accuracy or loss per epoch, overlaid."""
    fig = go.Figure()
    for i, (label, snap) in enumerate(runs.items()):
        evals = snap.evals
        y = [e.val_acc if metric == "val/acc" else e.val_loss for e in evals]
        fig.add_scatter(
            x=[e.epoch for e in evals], y=y, mode="lines+markers", name=label, line=dict(color=_PALETTE[i % len(_PALETTE)])
        )
    _epoch_axis(fig, list(runs.values()))
    fig.update_layout(showlegend=True)  # name the run even while it is the only curve so far
    if not any(snap.evals for snap in runs.values()):
        _waiting(fig, t("plot.waiting_epoch"))
    if metric == "val/acc":
        fig.update_yaxes(range=[0, 1.02], tickformat=".0%")
        _chance(fig, list(runs.values()), t)
        return _layout(fig, t("plot.race.acc.title"), t("plot.epoch"), t("plot.acc.y"))
    return _layout(fig, t("plot.race.loss.title"), t("plot.epoch"), t("plot.loss.y"))


def depth_figure(
    series: Mapping[str, tuple[Sequence[int], Sequence[float]]], t: Translate = _english, *, depth: str = "freeze_depth"
) -> go.Figure:
    """Final validation accuracy against a depth; one line per series. Two different
    experiments, never on one axis: depth="freeze_depth" (the app's sweep: every group
    pretrained, the first k frozen) or "transfer_depth" (the committed experiment: the
    first k groups copied, the rest re-initialised, then 'frozen' or 'fine-tuned')."""
    fig = go.Figure()
    for i, (label, (depths, accuracies)) in enumerate(series.items()):
        fig.add_scatter(
            x=list(depths), y=list(accuracies), mode="lines+markers", name=label, line=dict(color=_PALETTE[i % len(_PALETTE)])
        )
    fig.update_xaxes(dtick=1)
    # Zoom in from below (to a tenth under the lowest point) so that differences of a few
    # points between depths are visible; the axis shows where it starts.
    values = [a for _, accs in series.values() for a in accs]
    low = max(0.0, math.floor((min(values, default=0.0) - 0.05) * 10) / 10)
    fig.update_yaxes(range=[low, 1.02], tickformat=".0%")
    return _layout(fig, t(f"plot.{depth}.title"), t(f"plot.{depth}.x"), t("plot.acc.y"))


MATRIX_TEXT_PX = 16  # cell text on a projector: 14 px at the least


def matrix_figure(verdicts: Sequence[Mapping], t: Translate = _english) -> go.Figure:
    """The 2x2 matrix as measured: colour = the best accuracy, text = the strategy that
    reached it and whether the rule's recommendation agrees (verdicts from
    tlcore.lab.experiments.cell_verdicts, which compare accuracies, not names).

    Each number carries its spread over seeds (± one standard deviation) where the verdict
    has it, so a "tie" can be checked on the chart; when the best is not the rule's own
    strategy and depth, the rule's accuracy is written beneath, or that it was not measured."""
    cols, rows = ["similar", "different"], ["large", "small"]
    z = [[None, None], [None, None]]
    text = [["", ""], ["", ""]]

    def name(strategy: str, depth) -> str:  # partial names its depth: k = groups frozen
        return t(f"strategy.{strategy}") + (f" k={depth}" if strategy == "partial" and depth is not None else "")

    for v in verdicts:
        r, c = rows.index(v["size"]), cols.index(v["similarity"])
        z[r][c] = v["winner_acc"]
        measured = v.get("measured", True)
        mark = ("✓ " + t("plot.matrix.tie") if v.get("tie") else "✓") if v["agrees"] else "✗" if measured else "–"
        winner = name(v["winner"], v.get("winner_depth"))
        expected = name(v.get("expected", v["winner"]), v.get("expected_depth"))
        rule = ""
        if not measured:
            rule = f"<br>{t('plot.matrix.rule')}: {expected}, {t('plot.matrix.not_measured')}"
        elif expected != winner and v.get("expected_acc") is not None:
            rule = f"<br>{t('plot.matrix.rule')}: {expected}, {_pct(v['expected_acc'], v.get('expected_std'))}"
        text[r][c] = f"{winner}<br>{_pct(v['winner_acc'], v.get('winner_std'))} {mark}{rule}"
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[t(f"plot.{c}") for c in cols],
            y=[t(f"plot.{r}") for r in rows],
            text=text,
            texttemplate="%{text}",
            textfont=dict(size=MATRIX_TEXT_PX),
            colorscale="Blues",
            zmin=0,
            zmax=1,
            showscale=False,
            hoverinfo="skip",
        )
    )
    fig.update_yaxes(autorange="reversed")
    fig = _layout(fig, t("plot.matrix.title"), t("plot.matrix.x"), t("plot.matrix.y"), height=420)
    fig.update_layout(font=dict(size=MATRIX_TEXT_PX))  # titles as large as the cells
    for axis in (fig.update_xaxes, fig.update_yaxes):  # (the app's chart theme sizes ticks and axis titles apart)
        axis(tickfont=dict(size=MATRIX_TEXT_PX), title_font=dict(size=MATRIX_TEXT_PX))
    return fig


def filters_figure(pretrained: np.ndarray | None, random: np.ndarray, t: Translate = _english, zoom: int = 6) -> go.Figure:
    """First-layer filters as image tiles, pretrained beside random.

    pretrained / random: (num_filters, k, k, 3) floats in [0, 1] (tlcore.lab.experiments);
    pretrained may be None when the offline weights are not installed.
    """
    panels = [(t("plot.filters.pretrained"), pretrained), (t("plot.filters.random"), random)]
    panels = [(name, tiles) for name, tiles in panels if tiles is not None]
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[name for name, _ in panels], horizontal_spacing=0.05)
    for i, (_, tiles) in enumerate(panels, start=1):
        fig.add_trace(go.Image(z=tile_grid(tiles, zoom), hoverinfo="skip"), row=1, col=i)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(
        title=_title(t("plot.filters.title")),
        height=300 + TOOLBAR_PX,
        margin=dict(l=10, r=10, t=70 + TOOLBAR_PX, b=10),
    )
    return _fonts(fig)
