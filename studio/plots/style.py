"""What every chart shares: the chart text in English (`LABELS`, keys "plot.*" and the layer
groups' names; the app's i18n files carry the same keys), `Translate`, the colours, a layer
group's name in the chart's language (`group_label`), the smallest text (`FONT_PX`, set on every
figure by `_fonts`), the template, the title under the toolbar's band (`TOOLBAR_PX`), the common
layout (`_layout`), an empty chart's note (`_waiting`), the chance line, the epoch axis, and a
mean with its spread written as a percentage (`_pct`).

Not for: any one chart (one_run, comparisons), a chart as words (chart_text), Streamlit code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import plotly.graph_objects as go
import plotly.io as pio

from tlcore.core.events import HistorySnapshot

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


def _pct(mean: float, std: float | None) -> str:
    """'94.9 ± 1.4%' (mean ± standard deviation over seeds), or '94.9%' without a spread."""
    return f"{100 * mean:.1f} ± {100 * std:.1f}%" if std is not None and std == std else f"{100 * mean:.1f}%"
