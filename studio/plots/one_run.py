"""One run's charts: its curves while it trains (loss, accuracy, the gradient norm per layer
group as a heatmap and as dots on a log axis, `decades` for that axis), what it shows after it
ends (the confusion matrix, each group's weight drift), and the backbone as a row of blocks,
frozen ones grey.

Not for: several runs side by side (comparisons), a chart as words (chart_text), what every
chart shares (style).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go

from studio.plots.style import _BLUE, _GREY, _ORANGE, Translate, _chance, _english, _epoch_axis, _layout, _waiting, group_label
from tlcore.core.events import HistorySnapshot
from tlcore.core.metrics import human

# --- one run's curves ----------------------------------------------------------------


def loss_figure(snapshot: HistorySnapshot, t: Translate = _english) -> go.Figure:
    """Train loss per logged step and validation loss per epoch, on one step axis."""
    steps, evals = snapshot.steps, snapshot.evals
    fig = go.Figure()
    fig.add_scatter(
        x=[e.step for e in steps], y=[e.loss for e in steps], mode="lines", name=t("plot.train"), line=dict(color=_BLUE)
    )
    fig.add_scatter(
        x=[e.step for e in evals],
        y=[e.val_loss for e in evals],
        mode="lines+markers",
        name=t("plot.val"),
        line=dict(color=_ORANGE),
    )
    total = max([snapshot.started.total_steps if snapshot.started else 0] + [e.step for e in steps] + [1])
    fig.update_xaxes(range=[0, total * 1.02])  # the whole run's steps, from 0, fixed while it goes
    fig.update_yaxes(rangemode="tozero")  # a loss is never negative
    if not steps:
        fig.update_yaxes(range=[0, 1])
        _waiting(fig, t("plot.waiting_step"))
    return _layout(fig, t("plot.loss.title"), t("plot.step"), t("plot.loss.y"))


def accuracy_figure(snapshot: HistorySnapshot, t: Translate = _english) -> go.Figure:
    """Train and validation accuracy after each epoch."""
    evals = snapshot.evals
    fig = go.Figure()
    fig.add_scatter(
        x=[e.epoch for e in evals],
        y=[e.train_acc for e in evals],
        mode="lines+markers",
        name=t("plot.train"),
        line=dict(color=_BLUE),
    )
    fig.add_scatter(
        x=[e.epoch for e in evals],
        y=[e.val_acc for e in evals],
        mode="lines+markers",
        name=t("plot.val"),
        line=dict(color=_ORANGE),
    )
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%")
    _chance(fig, [snapshot], t)
    _epoch_axis(fig, [snapshot])
    if not evals:
        _waiting(fig, t("plot.waiting_epoch"))
    return _layout(fig, t("plot.acc.title"), t("plot.epoch"), t("plot.acc.y"))


def grad_norm_matrix(snapshot: HistorySnapshot) -> tuple[list[str], list[int], list[list[float | None]]]:
    """(groups, steps, z) where z[g][s] = log10 of the norm, or None when the group was frozen."""
    started = snapshot.started
    steps = snapshot.steps
    groups = list(started.groups) if started else sorted({g for e in steps for g in e.grad_norms})
    z = [[_log10(e.grad_norms[g]) if g in e.grad_norms else None for e in steps] for g in groups]
    return groups, [e.step for e in steps], z


def _log10(value: float) -> float:
    # A trainable group can have an exactly-zero gradient (dead ReLUs): floor, don't crash.
    return math.log10(max(value, 1e-12))


def grad_norm_heatmap(snapshot: HistorySnapshot, t: Translate = _english) -> go.Figure:
    """Layer groups x steps, colour = log10 of the gradient norm; frozen cells are grey and
    labelled "frozen" (a frozen group has no gradient, which is not the same as zero)."""
    names, steps, z = grad_norm_matrix(snapshot)
    groups = [group_label(g, t) for g in names]
    frozen_label = t("plot.frozen")
    frozen = [[1 if v is None else None for v in row] for row in z]
    hover = [[frozen_label if v is None else f"{10**v:.3g}" for v in row] for row in z]
    fig = go.Figure()
    fig.add_heatmap(
        x=steps, y=groups, z=frozen, colorscale=[[0, _GREY], [1, _GREY]], showscale=False, hoverinfo="skip", name=frozen_label
    )
    fig.add_heatmap(
        x=steps,
        y=groups,
        z=z,
        colorscale="Viridis",
        customdata=hover,
        colorbar=dict(title=t("plot.grad.colour")),
        hovertemplate="%{y} · " + t("plot.step") + " %{x}: %{customdata}<extra></extra>",
    )
    # Name the frozen rows on the chart itself, not only in the hover text.
    for g, row in zip(groups, z, strict=False):
        if row and all(v is None for v in row):
            fig.add_annotation(x=steps[len(steps) // 2], y=g, text=frozen_label, showarrow=False, font=dict(color="#475569"))
    fig.update_yaxes(categoryorder="array", categoryarray=groups)
    if not steps:
        fig.update_xaxes(range=[0, snapshot.started.total_steps if snapshot.started else 1])
        _waiting(fig, t("plot.waiting_step"))
    return _layout(fig, t("plot.grad.title"), t("plot.step"), t("plot.grad.y"), height=300)


def grad_norm_bars(snapshot: HistorySnapshot, t: Translate = _english) -> go.Figure:
    """The latest logged gradient norm of each group, as dots on a log axis.

    Norms of different groups differ by orders of magnitude, so the axis is logarithmic; on a
    log axis a bar's length depends on where the axis happens to start (the largest bar can
    look shortest), so each group is a dot with its value written beside it, and the axis
    title says the scale. Frozen groups have no norm and are named as frozen.

    The axis spans whole decades with a gridline at each power of ten and none between
    (the caption says "each gridline x10"), and leaves room right of the largest dot for
    its value."""
    started, steps = snapshot.started, snapshot.steps
    names = list(started.groups) if started else []
    latest = steps[-1].grad_norms if steps else {}
    values = [latest.get(g) for g in names]
    groups = [group_label(g, t) for g in names]
    live = [(g, v) for g, v in zip(groups, values, strict=False) if v is not None]
    fig = go.Figure()
    fig.add_scatter(
        y=[g for g, _ in live],
        x=[v for _, v in live],
        mode="markers+text",
        marker=dict(size=14, color=_BLUE),
        text=[f"{v:.3g}" for _, v in live],
        textposition="middle right",
        showlegend=False,
        cliponaxis=False,
    )
    lo, hi = decades([v for _, v in live])
    powers = [10.0**k for k in range(lo, hi + 1)]  # one tick and gridline per power of ten, none between
    fig.update_xaxes(type="log", range=[lo, hi], tickmode="array", tickvals=powers, ticktext=[f"{p:g}" for p in powers])
    fig.update_yaxes(categoryorder="array", categoryarray=groups)
    if not steps:
        _waiting(fig, t("plot.waiting_step"))
    for g, v in zip(groups, values, strict=False):
        if v is None and steps:
            fig.add_annotation(
                x=0, xref="paper", y=g, text=t("plot.frozen"), showarrow=False, xanchor="left", font=dict(color="#475569")
            )
    return _layout(fig, t("plot.bars.title"), t("plot.bars.x"), t("plot.drift.x"), height=300)


LABEL_ROOM = 0.3  # share of a log axis kept right of the largest value for its written number


def decades(values: Sequence[float]) -> tuple[int, int]:
    """(lo, hi) exponents of a log axis from 10**lo to 10**hi: whole decades around the
    values, at least one, with LABEL_ROOM of the axis free right of the largest."""
    positive = [v for v in values if v > 0]
    if not positive:
        return -3, 1
    lo, top = math.floor(math.log10(min(positive))), math.log10(max(positive))
    # (hi - top) >= LABEL_ROOM * (hi - lo)  <=>  hi >= (top - LABEL_ROOM * lo) / (1 - LABEL_ROOM)
    hi = math.ceil((top - LABEL_ROOM * lo) / (1 - LABEL_ROOM) - 1e-9)
    return lo, max(hi, lo + 1)


# --- after the run -------------------------------------------------------------------


def confusion_figure(confusion: Sequence[Sequence[int]], classes: Sequence[str], t: Translate = _english) -> go.Figure:
    """Counts of (true, predicted) class pairs; the diagonal is what the model got right."""
    classes = [str(c) for c in classes]
    fig = go.Figure(
        go.Heatmap(
            z=confusion,
            x=classes,
            y=classes,
            colorscale="Blues",
            text=confusion,
            texttemplate="%{text}",
            showscale=False,
            hovertemplate="%{y} → %{x}: %{z}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category")
    size = max(320, 28 * len(classes) + 120)
    return _layout(fig, t("plot.confusion.title"), t("plot.confusion.x"), t("plot.confusion.y"), height=size)


def drift_figure(drift: Mapping[str, float], frozen: Sequence[str] = (), t: Translate = _english) -> go.Figure:
    """Relative distance each pretrained group moved; frozen groups stay at zero."""
    groups = list(drift)
    fig = go.Figure()
    fig.add_bar(
        x=[group_label(g, t) for g in groups],
        y=[drift[g] for g in groups],
        marker_color=[_GREY if g in frozen else _BLUE for g in groups],
        text=[t("plot.frozen") if g in frozen else f"{drift[g]:.3f}" for g in groups],
        textposition="outside",
    )
    fig.update_yaxes(rangemode="tozero")  # a bar's length is its value only from zero
    return _layout(fig, t("plot.drift.title"), t("plot.drift.x"), t("plot.drift.y"))


# --- the backbone ---------------------------------------------------------------------


def block_diagram(counts: Mapping[str, int], frozen: Sequence[str], t: Translate = _english) -> go.Figure:
    """The layer groups as a row of equal blocks, shallow -> deep; frozen ones grey.

    A drawing, not a bar chart: every block has the same height, and each block's parameter
    count is written inside it. (Heights that grew with the log of the count made a stage
    with 10,000 times the stem's weights look under twice as tall.)
    """
    groups = list(counts)
    fig = go.Figure()
    fig.add_bar(
        x=[group_label(g, t) for g in groups],
        y=[1.0] * len(groups),
        base=[-0.5] * len(groups),
        marker=dict(color=[_GREY if g in frozen else _BLUE for g in groups], line=dict(color="#334155", width=1)),
        text=[
            f"<b>{group_label(g, t)}</b><br>{human(counts[g])}" + (f"<br>❄ {t('plot.frozen')}" if g in frozen else "")
            for g in groups
        ],
        textposition="inside",
        insidetextanchor="middle",
        hovertemplate="%{x}: %{customdata} " + t("plot.params") + "<extra></extra>",
        customdata=[f"{counts[g]:,}" for g in groups],
    )
    fig.update_yaxes(visible=False, range=[-0.55, 0.55])
    fig.update_xaxes(showticklabels=False)  # the names are written inside the blocks
    fig.update_layout(bargap=0.15, showlegend=False)
    # No y axis: the blocks' size means nothing; the numbers inside say how big each group is.
    return _layout(fig, t("plot.blocks.title"), t("plot.blocks.x"), "", height=240)
