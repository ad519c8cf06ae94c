"""A run's two live charts while it trains, as plain HTML and SVG: the loss curve and the
gradient-norm heatmap, redrawn at every poll of the live panel (studio.job_panel).

Why not plotly while it trains: each poll gave plotly a new figure, and plotly laid both charts
out anew (axes, tick labels measured one by one, the colour bar, the notes): about 2,700 changes
to the page a poll. In Chromium on a 2-core box the page's renderer took about 0.55 of a core for
it, beside the training, and page 3's default run took 10.5 s from the click against 4.4 s for the
same job through the same queue without a browser. Drawn as HTML, a poll replaces one small
element; the finished run's charts are plotly's as before (hover, zoom, the toolbar). Measured
with `python -m tools.demotime` (docs/demo-speed.md, session 38).

The drawing matches the plotly charts of the same run (studio.plots.one_run): the same titles,
axis titles, colours (plotly's Viridis for the norms), text of at least FONT_PX, the x axis fixed
to the run's steps while it goes, the loss axis from zero, frozen groups grey and named. Each
chart is a `<figure class="tls-live">` whose `data-chart` says which and whose `data-points` says
how many logged steps it shows (what tools and tests read); the numbers are in the chart's text
alternative under it (chart_text), as for every chart.

Not for: finished runs, several runs (comparisons), Streamlit code (studio.results draws these).
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from plotly.colors import sample_colorscale, sequential

from studio.plots.one_run import grad_norm_matrix
from studio.plots.style import _BLUE, _GREY, _ORANGE, _PALETTE, FONT_PX, Translate, _english, group_label
from tlcore.core.events import HistorySnapshot

PLOT_PX = 240  # the plotting area's height (plotly's live charts: 320 and 300 px with their margins)
SHARP = ' shape-rendering="crispEdges"'  # the heatmap's cells meet without a blurred seam
_VIEW = 1000  # the SVG's own units across and down (stretched to the area; lines keep their width)


def nice_ticks(low: float, high: float, most: int = 6) -> list[float]:
    """Round values from `low` to `high` (1, 2 or 5 times a power of ten apart), at most `most`."""
    if not high > low:
        return [low]
    raw = (high - low) / max(1, most - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw * (1 - 1e-9))
    first = math.ceil(low / step - 1e-9) * step
    count = int(math.floor((high - first) / step + 1e-9)) + 1
    return [round(first + i * step, 12) for i in range(count)]


def _label(value: float) -> str:
    return f"{value:.4g}"


def _pct(value: float, low: float, high: float) -> float:
    """Where `value` is between `low` and `high`, in percent (clamped)."""
    return 100 * min(1.0, max(0.0, (value - low) / (high - low))) if high > low else 0.0


def _frame(
    chart: str, points: int, title: str, y_title: str, x_title: str, body: str, x_ticks: str, extra: str = "", legend: str = ""
) -> str:
    """The parts every live chart has around its plotting area: title, axis titles, x tick labels
    (and what is beside the area, `extra`, and under it, `legend`)."""
    return (
        f'<figure class="tls-live" data-chart="{chart}" data-points="{points}" role="img" aria-label="{html.escape(title)}">'
        f'<div class="tls-live-title">{html.escape(title)}</div>'
        f'<div class="tls-live-grid"><div class="tls-live-ytitle"><span>{html.escape(y_title)}</span></div>'
        f'{body}{extra}<div class="tls-live-xticks">{x_ticks}</div>'
        f'<div class="tls-live-xtitle">{html.escape(x_title)}</div></div>{legend}'
        "</figure>"
    )


def _x_ticks(total: float, step: float | None = None) -> str:
    """Tick labels under the plotting area, 0 .. `total` (every `step` when given: whole epochs)."""
    ticks = [i * step for i in range(int(total // step) + 1)] if step else nice_ticks(0, total)
    return "".join(f'<span style="left:{_pct(v, 0, total):.2f}%">{_label(v)}</span>' for v in ticks if v <= total)


def _svg(view_box: str, content: str, attributes: str = "") -> str:
    """An SVG drawing stretched over the plotting area, as an image: Streamlit's st.html keeps no
    inline <svg> (its sanitiser's HTML profile), and an image is the cheapest thing to redraw."""
    svg = f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{view_box}" preserveAspectRatio="none"{attributes}>{content}</svg>'
    return f'<img class="tls-live-svg" alt="" src="data:image/svg+xml;base64,{base64.b64encode(svg.encode()).decode()}">'


@dataclass(frozen=True)
class Line:
    """One curve: its name in the legend, colour, points (x, y), and where it has dots: at every
    point (`dots`, plotly's lines+markers) or at its newest point only (`head`)."""

    label: str
    colour: str
    points: list[tuple[float, float]]
    dots: bool = True
    head: bool = False


def _drawing(lines: Sequence[Line], ticks: Sequence[float], guide: tuple[float, str] | None, x_max: float, y_max: float) -> str:
    """The SVG of a line chart: a grid line at each tick, the dashed guide, each curve."""

    def level(y: float) -> str:
        return f"{_VIEW * (1 - min(y, y_max) / y_max):.1f}"

    def rule(y: float, colour: str, extra: str = "") -> str:
        return f'<line x1="0" x2="{_VIEW}" y1="{level(y)}" y2="{level(y)}" stroke="{colour}" vector-effect="non-scaling-stroke"{extra}/>'

    drawn = "".join(rule(v, "#e2e8f0") for v in ticks)
    if guide is not None:
        drawn += rule(guide[0], "#64748b", ' stroke-width="1.5" stroke-dasharray="6 4"')
    for ln in lines:
        if ln.points:
            xy = " ".join(f"{_VIEW * x / x_max:.1f},{level(y)}" for x, y in ln.points)
            drawn += (
                f'<polyline points="{xy}" fill="none" stroke="{ln.colour}" stroke-width="2.5" '
                'vector-effect="non-scaling-stroke" stroke-linejoin="round"/>'
            )
    return drawn


def _line_chart(
    chart: str,
    points: int,
    titles: tuple[str, str, str],
    lines: Sequence[Line],
    x_axis: tuple[str, float],
    waiting: str,
    *,
    percent: bool = False,
    guide: tuple[float, str] | None = None,
) -> str:
    """Curves on an x axis from 0 to `x_axis`'s end (its tick labels first) and a y axis from 0
    (to 102% for a `percent` axis, else to just over the highest point), a legend under them, a
    note while there is no point, and a dashed `guide` line (y, its words): plotly's chance line."""
    lines = [Line(ln.label, ln.colour, [(x, y) for x, y in ln.points if math.isfinite(y)], ln.dots, ln.head) for ln in lines]
    x_ticks, x_max = x_axis
    values = [y for ln in lines for _, y in ln.points]
    y_max = 1.02 if percent else max(values) * 1.05 if values and max(values) > 0 else 1.0
    ticks = [i / 5 for i in range(6)] if percent else nice_ticks(0, y_max)

    def at(x: float, y: float) -> str:
        return f"left:{_pct(x, 0, x_max):.2f}%;top:{100 - _pct(y, 0, y_max):.2f}%"

    drawn = _drawing(lines, ticks, guide, x_max, y_max)
    marks = "".join(
        f'<i class="tls-live-dot{"" if ln.dots else " tls-live-head"}" style="{at(x, y)};background:{ln.colour}"></i>'
        for ln in lines
        for x, y in (ln.points if ln.dots else ln.points[-1:] if ln.head else [])
    )
    if guide is not None:
        marks += f'<div class="tls-live-guide" style="top:{100 - _pct(guide[0], 0, y_max):.2f}%">{html.escape(guide[1])}</div>'
    note = "" if values else f'<div class="tls-live-note">{html.escape(waiting)}</div>'
    y_labels = "".join(
        f'<span style="top:{100 - _pct(v, 0, y_max):.2f}%">{f"{v:.0%}" if percent else _label(v)}</span>' for v in ticks
    )
    body = (
        f'<div class="tls-live-yticks">{y_labels}</div>'
        f'<div class="tls-live-plot">{_svg(f"0 0 {_VIEW} {_VIEW}", drawn)}{marks}{note}</div>'
    )
    legend = (
        '<div class="tls-live-legend">'
        + "".join(f'<span><i style="background:{ln.colour}"></i>{html.escape(ln.label)}</span>' for ln in lines)
        + "</div>"
    )
    title, x_title, y_title = titles
    return _frame(chart, points, title, y_title, x_title, body, x_ticks, legend=legend)


def live_loss(snapshot: HistorySnapshot, t: Translate = _english) -> str:
    """Train loss per logged step (its newest point a dot) and validation loss per epoch (dots),
    one step axis from 0 to the run's last step, the loss axis from 0: plotly's `loss_figure`."""
    steps, evals = snapshot.steps, snapshot.evals
    end = 1.02 * max([snapshot.started.total_steps if snapshot.started else 0] + [e.step for e in steps] + [1])
    lines = (
        Line(t("plot.train"), _BLUE, [(e.step, e.loss) for e in steps], dots=False, head=True),
        Line(t("plot.val"), _ORANGE, [(e.step, e.val_loss) for e in evals]),
    )
    titles = (t("plot.loss.title"), t("plot.step"), t("plot.loss.y"))
    return _line_chart("loss", len(steps), titles, lines, (_x_ticks(end), end), t("plot.waiting_step"))


def live_race(runs: Mapping[str, HistorySnapshot], metric: str = "val/acc", t: Translate = _english) -> str:
    """One curve per run of validation accuracy or loss per epoch, epochs 0 .. the last, accuracy
    from 0 to 100% with the chance line: plotly's `race_figure` (studio.plots.comparisons)."""
    snaps = list(runs.values())
    end = 0.25 + max([s.started.epochs for s in snaps if s.started] + [e.epoch for s in snaps for e in s.evals] + [1])
    accuracy = metric == "val/acc"
    lines = [
        Line(label, _PALETTE[i % len(_PALETTE)], [(e.epoch, e.val_acc if accuracy else e.val_loss) for e in snap.evals])
        for i, (label, snap) in enumerate(runs.items())
    ]
    classes = {len(s.started.classes) for s in snaps if s.started and s.started.classes}
    guide = None
    if accuracy and len(classes) == 1:
        chance = 1 / classes.pop()
        guide = (chance, t("plot.chance").format(percent=round(100 * chance)))
    kind = "acc" if accuracy else "loss"
    titles = (t(f"plot.race.{kind}.title"), t("plot.epoch"), t(f"plot.{kind}.y"))
    points = sum(len(s.evals) for s in snaps)
    axis = (_x_ticks(end, 1), end)
    return _line_chart(f"race_{kind}", points, titles, lines, axis, t("plot.waiting_epoch"), percent=accuracy, guide=guide)


def _viridis(fractions: list[float]) -> list[str]:
    """Plotly's Viridis at each fraction, in one call: plotly looks the scale up by name on each call
    (a class experiment's live panel spent most of its time there, one call per cell, py-spy)."""
    return sample_colorscale("Viridis", [min(1.0, max(0.0, f)) for f in fractions]) if fractions else []


def live_heatmap(snapshot: HistorySnapshot, t: Translate = _english) -> str:
    """Layer groups (shallow at the bottom) x the run's steps, colour = log10 of the gradient
    norm on plotly's Viridis, frozen groups grey and named: plotly's `grad_norm_heatmap`, drawn
    as HTML, its step axis fixed to the run's steps while it goes."""
    names, steps, z = grad_norm_matrix(snapshot)
    total = max([snapshot.started.total_steps if snapshot.started else 0] + steps + [1])
    values = [v for row in z for v in row if v is not None]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    rows = len(names)
    spans = []  # (x, y, width, value) of every cell; row 0 (the shallowest group) at the bottom
    for r, row in enumerate(z):
        starts = [0, *steps]
        spans += [(x, rows - 1 - r, step - x, v) for x, step, v in zip(starts, steps, row, strict=False)]
    colours = iter(_viridis([(v - low) / (high - low) for *_, v in spans if v is not None]))
    cells = [
        f'<rect x="{x}" y="{y}" width="{width}" height="1" fill="{_GREY if v is None else next(colours)}"/>'
        for x, y, width, v in spans
    ]
    frozen = t("plot.frozen")
    notes = "".join(
        f'<div class="tls-live-frozen" style="top:{100 * (rows - 1 - r + 0.5) / rows:.2f}%">{html.escape(frozen)}</div>'
        for r, row in enumerate(z)
        if row and all(v is None for v in row)
    )
    waiting = "" if steps else f'<div class="tls-live-note">{html.escape(t("plot.waiting_step"))}</div>'
    labels = "".join(
        f'<span style="top:{100 * (rows - 1 - r + 0.5) / rows:.2f}%">{html.escape(group_label(g, t))}</span>'
        for r, g in enumerate(names)
    )
    body = (
        f'<div class="tls-live-yticks tls-live-groups">{labels}</div>'
        f'<div class="tls-live-plot">{_svg(f"0 0 {total} {max(rows, 1)}", "".join(cells), SHARP)}{notes}{waiting}</div>'
    )
    stops = ", ".join(sequential.Viridis)
    scale = (
        f'<div class="tls-live-scale"><div class="tls-live-scale-title">{html.escape(t("plot.grad.colour"))}</div>'
        f'<div class="tls-live-scale-bar"><i style="background:linear-gradient(to top, {stops})"></i>'
        f'<span style="top:0%">{high:.2g}</span><span style="top:100%">{low:.2g}</span></div></div>'
        if values
        else ""
    )
    return _frame("grad", len(steps), t("plot.grad.title"), t("plot.grad.y"), t("plot.step"), body, _x_ticks(total), scale)


# The live charts' look, in the page's one stylesheet (studio.page_frame). Every text is at least
# FONT_PX, as on the plotly charts (readable from the back of a classroom).
CSS = f"""
.tls-live {{ margin: 0 0 0.5rem; font-size: {FONT_PX}px; color: #0f172a; }}
.tls-live-title {{ font-size: {FONT_PX + 3}px; font-weight: 700; margin: 0.25rem 0 0.5rem; }}
.tls-live-grid {{ display: grid; grid-template-columns: 1.5rem auto 1fr auto; grid-template-rows: {PLOT_PX}px 1.6rem auto; }}
.tls-live-grid > * {{ grid-row: 1; }}
.tls-live-grid > .tls-live-xticks {{ grid-row: 2; grid-column: 3; }}
.tls-live-grid > .tls-live-xtitle {{ grid-row: 3; grid-column: 3; }}
.tls-live-ytitle {{ position: relative; }}
.tls-live-ytitle span {{ position: absolute; left: 50%; top: 50%; transform: translate(-50%, -50%) rotate(-90deg);
  white-space: nowrap; color: #334155; }}
.tls-live-yticks {{ position: relative; min-width: 2.5rem; margin-right: 0.4rem; }}
.tls-live-yticks span {{ position: absolute; right: 0; transform: translateY(-50%); white-space: nowrap; color: #334155; }}
.tls-live-groups {{ min-width: 4.5rem; }}
.tls-live-plot {{ position: relative; border-left: 1px solid #94a3b8; border-bottom: 1px solid #94a3b8; }}
.tls-live-plot .tls-live-svg {{ position: absolute; inset: 0; width: 100%; height: 100%; max-width: none; }}
.tls-live-dot {{ position: absolute; width: 9px; height: 9px; border-radius: 50%; transform: translate(-50%, -50%); }}
.tls-live-head {{ width: 7px; height: 7px; }}
.tls-live-note, .tls-live-frozen {{ position: absolute; left: 0; right: 0; text-align: center; color: #475569; }}
.tls-live-note {{ top: 50%; transform: translateY(-50%); }}
.tls-live-guide {{ position: absolute; right: 0.25rem; transform: translateY(-115%); color: #475569; }}
.tls-live-frozen {{ transform: translateY(-50%); }}
.tls-live-xticks {{ position: relative; }}
.tls-live-xticks span {{ position: absolute; top: 0.15rem; transform: translateX(-50%); color: #334155; }}
.tls-live-xtitle {{ text-align: center; color: #334155; }}
.tls-live-legend {{ display: flex; gap: 1.25rem; justify-content: center; margin-top: 0.25rem; }}
.tls-live-legend i {{ display: inline-block; width: 1.5rem; height: 3px; vertical-align: middle; margin-right: 0.4rem; }}
.tls-live-scale {{ display: flex; flex-direction: column; margin-left: 0.6rem; width: 4.9rem; }}
.tls-live-scale-title {{ line-height: 1.15; margin-bottom: 0.3rem; color: #334155; }}
.tls-live-scale-bar {{ position: relative; flex: 1; }}
.tls-live-scale-bar i {{ position: absolute; left: 0; top: 0; bottom: 0; width: 0.9rem; }}
.tls-live-scale-bar span {{ position: absolute; left: 1.3rem; transform: translateY(-50%); color: #334155; }}
"""
