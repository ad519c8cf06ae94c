"""Every chart the studio shows, as plotly figures built from a run's History.

The studio's one module that imports plotly (tlcore never does: a contract in
pyproject.toml checks it). Each function takes plain data (a
HistorySnapshot, lists, dicts) and returns a `plotly.graph_objects.Figure` with a title
and axis labels, so the pages stay thin and the charts can be tested without a browser.

Text on the charts goes through `t(key)`: pass the app's translation function to get
Korean labels; the default gives the English in `LABELS`.

Not for: computing metrics (tlcore.train.trainer, tlcore.core.events) or any Streamlit code.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from tlcore.core.events import HistorySnapshot
from tlcore.core.metrics import human
from tlcore.lab.experiments import tile_grid

# English chart text; the app's i18n files carry the same keys ("plot.*") in each language.
LABELS: dict[str, str] = {
    "plot.step": "optimiser step",
    "plot.epoch": "epoch",
    "plot.loss.title": "Loss: training vs validation",
    "plot.loss.y": "cross-entropy loss",
    "plot.acc.title": "Accuracy",
    "plot.acc.y": "accuracy",
    "plot.chance": "chance ({percent}%)",
    "plot.train": "train",
    "plot.val": "validation",
    "plot.grad.title": "Gradient norm per layer group (log scale)",
    "plot.grad.y": "layer group (shallow at the bottom)",
    "plot.grad.colour": "log10 ‖grad‖",
    "plot.frozen": "frozen",
    "plot.bars.title": "Latest gradient norm per layer group",
    "plot.bars.x": "‖grad‖ (L2 norm, log scale)",
    "plot.confusion.title": "Confusion matrix (validation)",
    "plot.confusion.x": "predicted class",
    "plot.confusion.y": "true class",
    "plot.drift.title": "Weight drift from the pretrained weights",
    "plot.drift.x": "layer group",
    "plot.drift.y": "‖w − w₀‖ / ‖w₀‖",
    "plot.blocks.title": "Layer groups: grey = frozen, blue = trained",
    "plot.blocks.x": "input → layer groups → new head",
    "plot.params": "parameters",
    "plot.freeze_depth.title": "Validation accuracy vs freeze depth",
    "plot.freeze_depth.x": "freeze depth (groups frozen from the input side)",
    "plot.transfer_depth.title": "Validation accuracy vs groups transferred",
    "plot.transfer_depth.x": "k: groups copied from the pretrained network (the rest start random)",
    "plot.race.loss.title": "Validation loss by strategy",
    "plot.race.acc.title": "Validation accuracy by strategy",
    "plot.matrix.title": "Measured best strategy per cell",
    "plot.matrix.tie": "(tie)",
    "plot.matrix.rule": "rule",
    "plot.matrix.not_measured": "not measured at the rule's depth",
    "strategy.scratch": "scratch",
    "strategy.linear_probe": "linear probe",
    "strategy.partial": "partial",
    "strategy.full": "full",
    "strategy.full_llrd": "full + layer decay",
    "strategy.gradual": "gradual",
    "plot.matrix.x": "similarity to the pretraining data",
    "plot.matrix.y": "dataset size",
    "plot.filters.title": "First-layer filters: what the very first layer looks for",
    "plot.filters.pretrained": "pretrained",
    "plot.filters.random": "random init",
    "plot.similar": "similar",
    "plot.different": "different",
    "plot.small": "small",
    "plot.large": "large",
    "plot.waiting_epoch": "waiting for the first epoch…",
    "plot.waiting_step": "waiting for the first step…",
    # layer groups (tlcore.models): the English is the group's own name, other languages say it in words
    "group.stem": "stem",
    "group.stage": "stage{a}",
    "group.head": "head",
    "group.embed": "embed",
    "group.blocks": "blocks{a}-{b}",
    "group.embeddings": "embeddings",
    "group.layer": "layer{a}",
    "group.pretrained": "pretrained",
}

Translate = Callable[[str], str]

_BLUE, _ORANGE, _GREY = "#2563eb", "#ea580c", "#cbd5e1"
_PALETTE = ("#2563eb", "#ea580c", "#16a34a", "#9333ea", "#dc2626", "#0891b2", "#ca8a04")


def empty_figure() -> go.Figure:
    """A chart with nothing in it: the frame draws one, hidden, so the browser loads Plotly's code
    before a page needs it (studio.page_frame.load_charts_early)."""
    return go.Figure(layout=dict(height=10, margin=dict(l=0, r=0, t=0, b=0)))


def _english(key: str) -> str:
    return LABELS.get(key, key)


_GROUP_NAME = re.compile(r"(?P<kind>[a-z]+)(?P<a>\d+)?(?:-(?P<b>\d+))?")


def group_label(name: str, t: Translate = _english) -> str:
    """A layer group's name in the chart's language ("stage2" -> "2단계" in Korean); a name
    the labels do not know is shown as it is."""
    match = _GROUP_NAME.fullmatch(name)
    if match is None:
        return name
    key = f"group.{match['kind']}"
    text = t(key)
    return name if text == key else text.format(a=match["a"] or "", b=match["b"] or "")


# The smallest text on any chart, in CSS px: readable from the back of a classroom on a
# 1280x720 projector. Set on every figure by `_fonts`, the one place chart text is sized.
FONT_PX = 14


# Every figure starts from this template: set as plotly's default once, it is applied when a
# figure is made (about 1 ms), where assigning it to each figure cost about 18 ms (validated
# and copied each time): a class's pages draw hundreds of charts a minute (tools.loadtest).
TEMPLATE = "plotly_white"
pio.templates.default = TEMPLATE


def _fonts(fig: go.Figure) -> go.Figure:
    """Every text of the figure at least FONT_PX (a larger size a chart chose stays): axes,
    titles, legend, hover, colour bars, values written on the marks, notes. Written into
    the figure's own layout, not a template: Streamlit's chart theme replaces the
    template's fonts (its tick labels are 12 px).

    Read from the figure as plain data and written back in one update per part: reading and
    writing plotly's objects property by property cost about 20 ms a figure."""

    def least(size: float | None, floor: int = FONT_PX) -> float:
        return max(size or 0, floor)

    def size(d: dict, *path: str) -> float | None:
        for key in path:
            d = d.get(key) or {}
        return d if isinstance(d, (int, float)) else None

    layout = fig.layout.to_plotly_json()
    changes = dict(
        font_size=least(size(layout, "font", "size")),
        title_font_size=least(size(layout, "title", "font", "size"), FONT_PX + 3),
        legend_font_size=least(size(layout, "legend", "font", "size")),
        hoverlabel_font_size=least(size(layout, "hoverlabel", "font", "size")),
        uniformtext=dict(minsize=least(size(layout, "uniformtext", "minsize")), mode="show"),
    )
    axes = sorted(
        {"xaxis", "yaxis", *(k for k in layout if k.startswith(("xaxis", "yaxis")))}
    )  # (as for_each_xaxis: always the first)
    for name in axes:
        axis = layout.get(name) or {}
        changes[name] = dict(
            tickfont=dict(size=least(size(axis, "tickfont", "size"))),
            title=dict(font=dict(size=least(size(axis, "title", "font", "size")))),
        )
    if layout.get("annotations"):
        changes["annotations"] = [
            {**a, "font": {**(a.get("font") or {}), "size": least(size(a, "font", "size"))}} for a in layout["annotations"]
        ]
    fig.update_layout(changes)
    for trace in fig.data:
        data = trace.to_plotly_json()
        update = {}
        if "textfont" in trace:
            update["textfont"] = dict(size=least(size(data, "textfont", "size")))
        if trace.type == "heatmap":
            bar = data.get("colorbar") or {}
            update["colorbar"] = dict(
                tickfont=dict(size=least(size(bar, "tickfont", "size"))),
                title=dict(font=dict(size=least(size(bar, "title", "font", "size")))),
            )
        if update:
            trace.update(update)
    return fig


# The title sits under the band where Plotly's toolbar (modebar) is drawn, so on a narrow
# screen (a phone, a tablet's half column) the toolbar never covers it.
TOOLBAR_PX = 56  # the toolbar Streamlit draws is 44 px tall, 2 px from the top; the title text starts ~5 px under the pad


def _title(text: str) -> dict:
    return dict(text=text, yref="container", y=1, yanchor="top", pad=dict(t=TOOLBAR_PX))


def _layout(fig: go.Figure, title: str, x: str, y: str, height: int = 320) -> go.Figure:
    fig.update_layout(
        title=_title(title),
        xaxis_title=x,
        yaxis_title=y,
        height=height + TOOLBAR_PX,
        margin=dict(l=60, r=20, t=50 + TOOLBAR_PX, b=50),
        legend=dict(orientation="h", y=-0.3),
    )
    return _fonts(fig)


def _waiting(fig: go.Figure, text: str) -> None:
    """An empty live chart says what it waits for, instead of showing a bare axis."""
    fig.add_annotation(x=0.5, y=0.5, xref="paper", yref="paper", text=text, showarrow=False, font=dict(color="#475569"))


def _chance(fig: go.Figure, snapshots: Sequence[HistorySnapshot], t: Translate) -> None:
    """A dashed line at the accuracy of guessing (1 / classes): a model below it has learnt
    nothing it can use (an English model on Korean sentences sits there)."""
    classes = {len(s.started.classes) for s in snapshots if s.started and s.started.classes}
    if len(classes) == 1:
        chance = 1 / classes.pop()
        fig.add_hline(
            y=chance,
            line_dash="dash",
            line_color="#64748b",
            annotation_position="bottom right",
            annotation_text=t("plot.chance").format(percent=round(100 * chance)),
        )


def _epoch_axis(fig: go.Figure, snapshots: Sequence[HistorySnapshot]) -> None:
    """Epochs 0 .. the run's last, whole numbers, fixed while the run goes (an empty plotly
    axis would run from -1 to 6)."""
    last = max([s.started.epochs for s in snapshots if s.started] + [e.epoch for s in snapshots for e in s.evals] + [1])
    fig.update_xaxes(dtick=1, range=[0, last + 0.25])


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


def _pct(mean: float, std: float | None) -> str:
    """'94.9 ± 1.4%' (mean ± standard deviation over seeds), or '94.9%' without a spread."""
    return f"{100 * mean:.1f} ± {100 * std:.1f}%" if std is not None and std == std else f"{100 * mean:.1f}%"


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


# --- text alternatives: what each chart shows now, in one sentence, and its data as a table -----
# (WCAG 1.1.1: a learner who cannot see the chart gets the same facts; docs/accessibility.md)

ALT_LABELS: dict[str, str] = {
    "alt.waiting": "No data yet: the chart fills in as the run trains.",
    "alt.loss": "Training loss went from {first} to {last} over {steps} steps; validation loss {val} after epoch {epoch}.",
    "alt.loss_no_val": "Training loss went from {first} to {last} over {steps} steps; no validation yet.",
    "alt.acc": "Validation accuracy went from {first} to {last} in {epochs} epochs; training accuracy ended at {train}.",
    "alt.grad": "Gradient norms of {n} layer groups over {steps} steps; frozen: {frozen}; largest at the last step: {top} ({value}).",
    "alt.bars": "Latest gradient norm per layer group: {values}.",
    "alt.confusion": "{correct} of {total} validation examples right ({percent}); mixed up most often: {true} taken for {pred} ({n} times).",
    "alt.confusion_clean": "{correct} of {total} validation examples right ({percent}); nothing mixed up.",
    "alt.drift": "The weights moved most in {top} ({value}); frozen groups did not move: {frozen}.",
    "alt.race": "{metric} after the last epoch so far: {values}.",
    "alt.blocks": "{trained} of {n} layer groups train ({groups}); frozen: {frozen}.",
    "alt.depth": "{name}: highest {best} at depth {depth}, lowest {worst} at depth {worst_depth}.",
    "alt.matrix": "Measured best strategy per cell: {cells}.",
    "alt.filters": "The first layer's filters drawn as small pictures, pretrained beside random: pretrained ones look like edges and colour blobs, random ones like noise.",
    "alt.none": "none",
    "alt.col.group": "layer group",
    "alt.col.value": "value",
    "alt.col.frozen": "frozen",
    "alt.col.params": "parameters",
    "alt.col.cell": "cell",
    "alt.col.best": "best strategy and accuracy",
}
LABELS.update(ALT_LABELS)


@dataclass(frozen=True)
class ChartText:
    """A chart as words: one sentence about what it shows now, and its data as table columns."""

    summary: str
    table: dict[str, list] = field(default_factory=dict)


def _g(value: float) -> str:
    return f"{value:.3g}"


def _p(value: float) -> str:
    return f"{100 * value:.0f}%"


def _thin(items: Sequence, most: int) -> list:
    """At most `most` of `items`, evenly spread, the last always kept (a table a reader can take in)."""
    items = list(items)
    if len(items) <= most:
        return items
    picks = {round(i * (len(items) - 1) / (most - 1)) for i in range(most)}
    return [items[i] for i in sorted(picks)]


def loss_text(snapshot: HistorySnapshot, t: Translate = _english) -> ChartText:
    steps, evals = snapshot.steps, snapshot.evals
    if not steps:
        return ChartText(t("alt.waiting"))
    values = {"first": _g(steps[0].loss), "last": _g(steps[-1].loss), "steps": steps[-1].step}
    summary = (
        t("alt.loss").format(**values, val=_g(evals[-1].val_loss), epoch=evals[-1].epoch)
        if evals
        else t("alt.loss_no_val").format(**values)
    )
    val_at = {e.step: e.val_loss for e in evals}
    rows = sorted({e.step for e in _thin(steps, 15)} | set(val_at))
    train_at = {e.step: e.loss for e in steps}
    table = {
        t("plot.step"): rows,
        t("plot.train"): [_g(train_at[s]) if s in train_at else "" for s in rows],
        t("plot.val"): [_g(val_at[s]) if s in val_at else "" for s in rows],
    }
    return ChartText(summary, table)


def accuracy_text(snapshot: HistorySnapshot, t: Translate = _english) -> ChartText:
    evals = snapshot.evals
    if not evals:
        return ChartText(t("alt.waiting"))
    summary = t("alt.acc").format(
        first=_p(evals[0].val_acc), last=_p(evals[-1].val_acc), epochs=evals[-1].epoch, train=_p(evals[-1].train_acc)
    )
    table = {
        t("plot.epoch"): [e.epoch for e in evals],
        t("plot.train"): [_p(e.train_acc) for e in evals],
        t("plot.val"): [_p(e.val_acc) for e in evals],
    }
    return ChartText(summary, table)


def grad_text(snapshot: HistorySnapshot, t: Translate = _english) -> ChartText:
    groups, steps, z = grad_norm_matrix(snapshot)
    if not steps:
        return ChartText(t("alt.waiting"))
    frozen = [g for g, row in zip(groups, z, strict=False) if all(v is None for v in row)]
    last = {g: row[-1] for g, row in zip(groups, z, strict=False) if row and row[-1] is not None}
    top = max(last, key=last.get) if last else "–"
    summary = t("alt.grad").format(
        n=len(groups),
        steps=steps[-1],
        frozen=", ".join(frozen) or t("alt.none"),
        top=top,
        value=_g(10 ** last[top]) if last else "–",
    )
    picks = _thin(range(len(steps)), 8)
    table = {t("alt.col.group"): groups}
    for i in picks:
        table[f"{t('plot.step')} {steps[i]}"] = [t("plot.frozen") if row[i] is None else _g(10 ** row[i]) for row in z]
    return ChartText(summary, table)


def bars_text(snapshot: HistorySnapshot, t: Translate = _english) -> ChartText:
    groups = list(snapshot.started.groups) if snapshot.started else []
    latest = snapshot.steps[-1].grad_norms if snapshot.steps else {}
    if not latest:
        return ChartText(t("alt.waiting"))
    shown = [_g(latest[g]) if g in latest else t("plot.frozen") for g in groups]
    summary = t("alt.bars").format(values=", ".join(f"{g} {v}" for g, v in zip(groups, shown, strict=False)))
    return ChartText(summary, {t("alt.col.group"): groups, t("plot.bars.x"): shown})


def confusion_text(confusion: Sequence[Sequence[int]], classes: Sequence[str], t: Translate = _english) -> ChartText:
    # (a matrix and a class list of different lengths, as a hand-made run can give: named by place)
    size = len(confusion)
    classes = [str(classes[i]) if i < len(classes) else str(i) for i in range(size)]
    total = sum(sum(row) for row in confusion)
    correct = sum(confusion[i][i] for i in range(size) if i < len(confusion[i]))
    values = {"correct": correct, "total": total, "percent": _p(correct / total) if total else "–"}
    wrong = [(n, i, j) for i, row in enumerate(confusion) for j, n in enumerate(row) if i != j and n > 0]
    if wrong:
        n, i, j = max(wrong)
        summary = t("alt.confusion").format(**values, true=classes[i], pred=classes[j], n=n)
    else:
        summary = t("alt.confusion_clean").format(**values)
    table = {f"{t('plot.confusion.y')} \\ {t('plot.confusion.x')}": classes}
    for j, name in enumerate(classes):
        table[name] = [row[j] if j < len(row) else "" for row in confusion]
    return ChartText(summary, table)


def drift_text(drift: Mapping[str, float], frozen: Sequence[str] = (), t: Translate = _english) -> ChartText:
    groups = list(drift)
    moving = {g: v for g, v in drift.items() if g not in frozen}
    top = max(moving, key=moving.get) if moving else "–"
    summary = t("alt.drift").format(
        top=top, value=_g(moving[top]) if moving else "–", frozen=", ".join(g for g in groups if g in frozen) or t("alt.none")
    )
    return ChartText(
        summary,
        {t("alt.col.group"): groups, t("plot.drift.y"): [t("plot.frozen") if g in frozen else _g(drift[g]) for g in groups]},
    )


def race_text(runs: Mapping[str, HistorySnapshot], metric: str = "val/acc", t: Translate = _english) -> ChartText:
    acc = metric == "val/acc"
    show = _p if acc else _g
    done = {label: snap.evals for label, snap in runs.items() if snap.evals}
    if not done:
        return ChartText(t("alt.waiting"))
    value = (lambda e: e.val_acc) if acc else (lambda e: e.val_loss)
    summary = t("alt.race").format(
        metric=t("plot.race.acc.title" if acc else "plot.race.loss.title"),
        values=", ".join(f"{label} {show(value(evals[-1]))}" for label, evals in done.items()),
    )
    epochs = sorted({e.epoch for evals in done.values() for e in evals})
    table = {t("plot.epoch"): epochs}
    for label, evals in done.items():
        at = {e.epoch: show(value(e)) for e in evals}
        table[label] = [at.get(k, "") for k in epochs]
    return ChartText(summary, table)


def blocks_text(counts: Mapping[str, int], frozen: Sequence[str], t: Translate = _english) -> ChartText:
    names = list(counts)
    groups = [group_label(g, t) for g in names]
    trained = [group_label(g, t) for g in names if g not in frozen]
    frozen = [group_label(g, t) for g in frozen]
    summary = t("alt.blocks").format(
        trained=len(trained), n=len(groups), groups=", ".join(trained) or t("alt.none"), frozen=", ".join(frozen) or t("alt.none")
    )
    table = {
        t("alt.col.group"): groups,
        t("alt.col.params"): [f"{counts[g]:,}" for g in names],
        t("alt.col.frozen"): ["❄ " + t("plot.frozen") if g in frozen else "" for g in groups],
    }
    return ChartText(summary, table)


def depth_text(series: Mapping[str, tuple[Sequence[int], Sequence[float]]], t: Translate = _english) -> ChartText:
    parts, table = [], {}
    depths = sorted({d for ds, _ in series.values() for d in ds})
    for name, (ds, accs) in series.items():
        if not accs:
            continue
        best, worst = max(range(len(accs)), key=accs.__getitem__), min(range(len(accs)), key=accs.__getitem__)
        parts.append(
            t("alt.depth").format(name=name, best=_p(accs[best]), depth=ds[best], worst=_p(accs[worst]), worst_depth=ds[worst])
        )
    if not parts:
        return ChartText(t("alt.waiting"))
    table["k"] = depths
    for name, (ds, accs) in series.items():
        at = dict(zip(ds, accs, strict=False))
        table[name] = [_p(at[d]) if d in at else "" for d in depths]
    return ChartText(" ".join(parts), table)


def matrix_text(verdicts: Sequence[Mapping], t: Translate = _english) -> ChartText:
    cells, best = [], []
    for v in verdicts:
        name = t(f"strategy.{v['winner']}") + (f" k={v['winner_depth']}" if v.get("winner_depth") is not None else "")
        cells.append(f"{t('plot.' + v['size'])}, {t('plot.' + v['similarity'])}")
        best.append(f"{name}, {_pct(v['winner_acc'], v.get('winner_std'))}")
    summary = t("alt.matrix").format(cells="; ".join(f"{c}: {b}" for c, b in zip(cells, best, strict=False)))
    return ChartText(summary, {t("alt.col.cell"): cells, t("alt.col.best"): best})


def filters_text(t: Translate = _english) -> ChartText:
    return ChartText(t("alt.filters"))
