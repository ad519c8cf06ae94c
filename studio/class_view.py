"""The class experiment's projected view: every seed a dot, each level's mean with its spread, the
cells still running, the teacher's own run and what the matrix predicts; the class-wide
gradient-norm map; the same in words and as a table; the export (CSV of every run, the chart as HTML).

Built from the class's cell summaries (tlcore.serve.classroom), never from live sessions. Not for:
joining or leading the class (studio.class_panels).
"""

from __future__ import annotations

import html
import math
import random
from collections.abc import Callable, Sequence
from typing import Any

import plotly.graph_objects as go

from studio.i18n import current_lang, t
from studio.plots import _fonts, _layout
from studio.widgets import backbone_title
from tlcore.core import spreadsheet
from tlcore.core.bounded import LRU
from tlcore.serve import classroom
from tlcore.serve.classroom import Experiment, LevelStats

PROJECTOR_PX = 470  # a chart this tall or taller is the projector's (studio.projector): larger type
DOT = "#2563eb"  # a seed's run
MEAN = "#0f172a"  # a level's mean and its bar
YOU = "#ea580c"  # the learner's own dot
TEACHER = "#16a34a"  # the teacher's own run
PREDICTED = "rgba(22, 163, 74, 0.10)"  # the level the matrix would choose


def level_label(factor: str, level: Any) -> str:
    """A level as the pages name it: "Full fine-tuning", "k = 4", "20 per class", "lr 1e-3", a backbone's title."""
    if factor == "strategy":
        return t(f"strategy.{level}")
    if factor == "freeze_depth":
        return t("class.level.freeze_depth", k=level)
    if factor == "per_class":
        return t("class.level.per_class", n=level)
    if factor == "lr":
        return t("class.level.lr", lr=f"{level:g}")
    if factor == "backbone":
        return backbone_title(str(level))
    return str(level)


def factor_label(factor: str) -> str:
    return t(f"class.factor.{factor}")


# ----------------------------------------------------------------------------- figures, drawn once per state
# The teacher's projector redraws every 2 s and each learner's Class page on every rerun, but the
# charts change only when a cell is filled: a figure is built once for each set of results (and
# language, viewer's dot, teacher's diamond) and handed out again. Building the two charts cost
# about 0.1 s of a 2-core server's CPU each time (tools.loadtest). Who took a cell and its run's id
# are not drawn: keyed on them, the 30 presses of a class's Start built the chart 30 times, each
# in its learner's page run, 9% of the server's interpreter in that burst (py-spy, session 29).
FIGURES_KEPT = 64
_FIGURES: LRU[tuple, go.Figure | None] = LRU(FIGURES_KEPT)


def state_of(exp: Experiment) -> tuple:
    """Everything of an experiment its charts show: its design and its cells' results (a cell not
    finished is one of its level's "still running")."""
    return (
        exp.id,
        exp.round,
        tuple(
            (
                c.level,
                c.seed,
                c.round,
                None if c.result is None else (c.result.acc, tuple(sorted(c.result.grads.items()))),
            )
            for c in exp.cells
        ),
    )


def _drawn_once(key: tuple, build: Callable[[], go.Figure | None]) -> go.Figure | None:
    return _FIGURES.get_or_make((*key, current_lang()), build)


def result_chart(
    exp: Experiment, *, mine: int | None = None, teacher_run: tuple[int, float] | None = None, height: int = 440
) -> go.Figure:
    """result_figure, built once per state of the experiment (see above)."""
    return _drawn_once(
        ("result", state_of(exp), mine, teacher_run, height),
        lambda: result_figure(exp, mine=mine, teacher_run=teacher_run, height=height),
    )


def grad_chart(exp: Experiment) -> go.Figure | None:
    """grad_figure, built once per state of the experiment (see above)."""
    return _drawn_once(("grads", state_of(exp)), lambda: grad_figure(exp))


def result_figure(
    exp: Experiment,
    *,
    mine: int | None = None,
    teacher_run: tuple[int, float] | None = None,
    spread: str = "sd",
    height: int = 440,
) -> go.Figure:
    """Accuracy (%) per level: a dot per finished seed (slightly spread sideways so equal values
    stay visible), the mean as a bar with its standard deviation (or 95% interval), n and the
    cells still running under each level. mine: the cell index of this learner (an orange dot);
    teacher_run: (level index, accuracy) of the teacher's own run (a green diamond)."""
    stats = classroom.level_stats(exp)
    fig = go.Figure()
    any_finished = _seed_dots(fig, exp)
    _level_means(fig, stats, spread)
    _own_runs(fig, exp, mine, teacher_run)
    _predicted_level(fig, exp)
    return _result_layout(fig, exp, stats, any_finished, height)


def _seed_dots(fig: go.Figure, exp: Experiment) -> bool:
    """A dot per finished seed, spread sideways by a fixed draw (the same chart for the same
    results); False while no run has finished."""
    jitter = random.Random(7)
    xs, ys, texts = [], [], []
    for cell in exp.cells:
        if cell.result is None:
            continue
        xs.append(cell.level + jitter.uniform(-0.12, 0.12))
        ys.append(100 * cell.result.acc)
        texts.append(t("class.view.dot", seed=cell.seed, acc=f"{100 * cell.result.acc:.1f}"))
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name=t("class.view.seeds"), text=texts, hoverinfo="text",
                             marker=dict(size=11, color=DOT, opacity=0.75, line=dict(width=1, color="white"))))  # fmt: skip
    return bool(ys)


def _level_means(fig: go.Figure, stats: Sequence[LevelStats], spread: str) -> None:
    """Each level's mean as a bar, its spread (SD, or the 95% interval) as an error bar."""
    means = [(i, s) for i, s in enumerate(stats) if s.mean is not None]
    if not means:
        return
    bars = [_bar(s, spread) for _, s in means]
    fig.add_trace(
        go.Scatter(
            x=[i for i, _ in means],
            y=[100 * s.mean for _, s in means],
            mode="markers",
            name=t(f"class.view.mean_{spread}"),
            marker=dict(symbol="line-ew", size=44, color=MEAN, line=dict(width=4, color=MEAN)),
            error_y=dict(type="data", array=bars, visible=True, color=MEAN, thickness=2, width=14),
            hovertemplate="%{y:.1f}%<extra></extra>",
        )
    )


def _own_runs(fig: go.Figure, exp: Experiment, mine: int | None, teacher_run: tuple[int, float] | None) -> None:
    """The learner's own dot (orange, named beside it) and the teacher's own run (a green diamond)."""
    if mine is not None and exp.cells[mine].result is not None:
        cell = exp.cells[mine]
        fig.add_trace(go.Scatter(x=[cell.level], y=[100 * cell.result.acc], mode="markers+text", name=t("class.view.you"),
                                 text=[t("class.view.you")],  # (beside the dot, on the side with room)
                                 textposition="middle left" if cell.level == len(exp.levels) - 1 else "middle right",
                                 marker=dict(size=16, color=YOU, line=dict(width=2, color="white"))))  # fmt: skip
    if teacher_run is not None:
        fig.add_trace(go.Scatter(x=[teacher_run[0]], y=[100 * teacher_run[1]], mode="markers", name=t("class.view.teacher"),
                                 marker=dict(symbol="diamond", size=15, color=TEACHER, line=dict(width=1, color="white"))))  # fmt: skip


def _predicted_level(fig: go.Figure, exp: Experiment) -> None:
    """A band behind the level the matrix would choose, named above it."""
    predicted = classroom.predicted(exp)["level"]
    if predicted in exp.levels:
        k = exp.levels.index(predicted)
        fig.add_vrect(x0=k - 0.45, x1=k + 0.45, fillcolor=PREDICTED, line_width=0, layer="below")
        fig.add_annotation(x=k, y=1.0, yref="paper", yanchor="bottom", text=t("class.view.predicted"), showarrow=False)


def _result_layout(fig: go.Figure, exp: Experiment, stats: Sequence[LevelStats], any_finished: bool, height: int) -> go.Figure:
    """The levels named under the axis with n and the runs to go, the accuracy axis from zero,
    the title; larger type on the projector's chart."""
    labels = [level_label(exp.factor, s.level) for s in stats]
    ticks = [f"{label}<br>n = {s.n}" + _pending_text(s) for label, s in zip(labels, stats)]
    fig.update_xaxes(tickmode="array", tickvals=list(range(len(labels))), ticktext=ticks, range=[-0.6, len(labels) - 0.4])
    fig.update_yaxes(rangemode="tozero", ticksuffix="%")
    if not any_finished:  # no run finished yet: the whole scale, not plotly's 0..4 of nothing
        fig.update_yaxes(range=[0, 100])
    title = t("class.view.title", factor=factor_label(exp.factor), filled=exp.filled(), cells=len(exp.cells))
    fig = _layout(fig, title, factor_label(exp.factor), t("class.view.acc"), height=height)
    fig.update_layout(margin=dict(l=60, r=20, t=70, b=110), legend=dict(orientation="h", y=-0.34))
    if height >= PROJECTOR_PX:  # the projector's chart: read from the back row
        fig.update_layout(font=dict(size=17), title_font_size=20, margin=dict(l=70, r=20, t=60, b=130))
        fig.update_xaxes(tickfont_size=17)
        fig.update_yaxes(tickfont_size=16)
    return fig


def _pending_text(s: LevelStats) -> str:
    """ " · 2 to go": the level's runs not finished (never "running" before anyone pressed Start; who
    runs what now is in the teacher's roster). Not keyed on Start presses: a class's burst of Starts
    builds no chart."""
    return f" · {t('class.view.to_go', n=s.pending)}" if s.pending else ""


def _bar(s: LevelStats, spread: str) -> float:
    value = s.ci95 if spread == "ci" else s.sd
    return 100 * value if value is not None else 0.0


def grad_figure(exp: Experiment) -> go.Figure | None:
    """Layer groups (shallow at the bottom) x levels: each level's mean gradient norm over its
    class runs, log10 colour; a group frozen in every run of a level is grey and says so."""
    groups, rows = classroom.grad_table(exp)
    if not groups:
        return None
    labels = [level_label(exp.factor, lv) for lv in exp.levels]
    z = [[math.log10(v) if v else None for v in row] for row in rows]
    text = [[f"{v:.2g}" if v else t("class.view.frozen") for v in row] for row in rows]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=labels,
            y=groups,
            text=text,
            texttemplate="%{text}",
            colorscale="Viridis",
            colorbar=dict(title=dict(text="log10 ‖g‖")),
            hovertemplate="%{y} · %{x}: %{text}<extra></extra>",
        )
    )
    fig.update_layout(plot_bgcolor="#e2e8f0")
    fig = _layout(fig, t("class.view.grads_title"), "", t("class.view.groups"), height=120 + 28 * len(groups))
    return _fonts(fig)


def summary(exp: Experiment, spread: str = "sd") -> str:
    """The chart in one sentence per level, for a screen reader and the projector's back row."""
    parts = []
    for s in classroom.level_stats(exp):
        label = level_label(exp.factor, s.level)
        if s.mean is None:
            parts.append(t("class.view.level_none", level=label, pending=s.pending))
            continue
        value = s.ci95 if spread == "ci" else s.sd
        spread_text = f" ± {100 * value:.1f}" if value is not None else ""
        parts.append(t("class.view.level_line", level=label, mean=f"{100 * s.mean:.1f}", spread=spread_text, n=s.n))
    best = max((s for s in classroom.level_stats(exp) if s.mean is not None), key=lambda s: s.mean, default=None)
    head = t("class.view.best", level=level_label(exp.factor, best.level)) if best is not None else ""
    return " ".join([head, "; ".join(parts) + "."]).strip()


def grad_summary(exp: Experiment) -> str:
    """The gradient map in one sentence: for each level, the layer group whose gradients were largest."""
    groups, rows = classroom.grad_table(exp)
    places = []
    for j, level in enumerate(exp.levels):
        column = [(row[j], g) for g, row in zip(groups, rows, strict=True) if row[j] is not None]
        if column:
            places.append(f"{level_label(exp.factor, level)}: {max(column)[1]}")
    return t("alt.class_grads", places="; ".join(places)) if places else ""


def grad_columns(exp: Experiment) -> dict[str, list]:
    """The gradient map's numbers as table columns: a row per layer group (shallow first), a
    column per level with its mean gradient norm, "frozen", or a dash while the level has no
    finished run (the map's text alternative)."""
    groups, rows = classroom.grad_table(exp)
    out: dict[str, list] = {t("class.view.groups"): list(groups)}
    for j, level in enumerate(exp.levels):
        ran = any(c.level == j and c.result is not None for c in exp.cells)
        out[level_label(exp.factor, level)] = [
            f"{row[j]:.3g}" if row[j] else (t("class.view.frozen") if ran else "–") for row in rows
        ]
    return out if groups else {}


def table(exp: Experiment, name_of: Callable[[str | None], str]) -> dict[str, list]:
    """The runs as columns for an HTML table (a screen reader reads it cell by cell)."""
    out: dict[str, list] = {}
    for row in rows(exp, name_of):
        for key in ("level", "round", "seed", "learner", "state", "val_acc", "seconds"):
            value = row[key]
            if key == "level":
                value = level_label(exp.factor, value)
            elif key == "val_acc" and value is not None:
                value = f"{100 * value:.1f}%"
            out.setdefault(t(f"class.col.{key}"), []).append("" if value is None else value)
    return out


def claim(exp: Experiment) -> str:
    """What the seeds' matrix and the advice say for this design, in the class's words (the run's
    epochs included: in 3 epochs the smallest rate has not moved far enough yet)."""
    p = classroom.predicted(exp)
    base = exp.base
    words = {
        "similarity": t(f"matrix.{p['similarity']}"),
        "size": t(f"matrix.{p['size']}"),
        "strategy": t(f"strategy.{p['strategy']}"),
        "k": p["freeze_depth"],
        "epochs": base.get("epochs", 3),
    }
    if exp.factor == "lr":
        words["low"] = f"{min(exp.levels):g}"
        words["high"] = f"{max(exp.levels):g}"
    return t(f"class.claim.{exp.factor}", **words)


def question(exp: Experiment) -> str:
    """The question the class tests: does the factor change accuracy more than the seed does?"""
    return t("class.question", factor=factor_label(exp.factor).lower() if current_lang() == "en" else factor_label(exp.factor))


FIXED_KEYS = ("backbone", "strategy", "freeze_depth", "lr", "head_lr_mult", "layer_decay", "dataset", "per_class",
              "image_size", "epochs", "batch_size")  # fmt: skip
FIXED_LABELS = {"batch_size": "train.batch_size"}


def fixed_settings(exp: Experiment) -> list[tuple[str, str, str]]:
    """Every setting the experiment holds fixed, as (key, label, value): what the room must know
    to read the result (the factor's own setting left out, and those its levels set)."""
    return fixed_of(exp.base, exp.factor, exp.levels[0] if exp.levels else None)


def fixed_of(base: dict[str, Any], factor: str, level: Any) -> list[tuple[str, str, str]]:
    """fixed_settings for a design not started yet (the teacher's form)."""
    from studio.teacher import LABELS  # (the settings' widget labels, one table for the pages)

    base = dict(base)
    varied = {factor, *classroom.FACTORS[factor].fixed(None, level)}
    out = []
    for key in FIXED_KEYS:
        if key in varied or key not in base:
            continue
        if key == "freeze_depth" and base.get("strategy") != "partial":
            continue
        if key == "layer_decay" and base.get("strategy") != "full_llrd":
            continue
        value = base[key]
        if key == "backbone":
            text = backbone_title(str(value))
        elif key == "strategy":
            text = t(f"strategy.{value}")
        elif key == "dataset":
            text = t(f"dataset.{value}") if t(f"dataset.{value}") != f"dataset.{value}" else str(value)
        elif isinstance(value, float):
            text = f"{value:g}"
        else:
            text = str(value)
        label = t(LABELS.get(key) or FIXED_LABELS.get(key, key))
        out.append((key, label, text))
    return out


def fixed_text(exp: Experiment) -> str:
    return " · ".join(f"{label}: {value}" for _k, label, value in fixed_settings(exp))


def rows(exp: Experiment, name_of: Callable[[str | None], str]) -> list[dict[str, Any]]:
    """Every cell as a row: what it ran, who filled it (as the projector names them), its results."""
    out = []
    fixed = {f"fixed_{key}": exp.base.get(key) for key, _label, _value in fixed_settings(exp)}  # the same for every cell
    for i, cell in enumerate(exp.cells):
        r = cell.result
        out.append(
            {
                "experiment": exp.id,
                "round": cell.round,
                "factor": exp.factor,
                "level": exp.levels[cell.level],
                "seed": cell.seed,
                "cell": i,
                "learner": name_of(cell.learner) if cell.learner else "",
                "state": "done" if r else ("running" if cell.job else ("open" if not cell.learner else "assigned")),
                "val_acc": round(r.acc, 4) if r else None,
                "val_acc_per_epoch": " ".join(f"{a:.4f}" for a in r.accs) if r else "",
                "seconds": round(r.seconds, 2) if r else None,
                "reused": r.reused if r else None,
                **fixed,
            }
        )
    return out


def to_csv(table: Sequence[dict[str, Any]]) -> str:
    """The rows as CSV, every cell a spreadsheet would run as a formula escaped (tlcore.core.spreadsheet)."""
    return spreadsheet.to_csv(table)


def to_html(
    exp: Experiment,
    teacher_run: tuple[int, float] | None = None,
    name_of: Callable[[str | None], str] | None = None,
    extra: str = "",
) -> str:
    """The question, the fixed settings, the result chart, the claim, the gradient map, the summary
    and every run as a table, as one page that opens offline. Every text is escaped."""
    figures = [result_figure(exp, teacher_run=teacher_run)]
    grads = grad_figure(exp)
    if grads is not None:
        figures.append(grads)
    body = [figures[0].to_html(full_html=False, include_plotlyjs=True)]
    body += [f.to_html(full_html=False, include_plotlyjs=False) for f in figures[1:]]
    from studio.results import table_html

    esc = html.escape
    fixed = "".join(f"<li>{esc(label)}: {esc(value)}</li>" for _k, label, value in fixed_settings(exp))
    runs = table_html(table(exp, name_of or (lambda _key: "")), t("class.view.table"))
    return (
        f'<!doctype html><html lang="{current_lang()}"><head><meta charset="utf-8"><title>{esc(exp.id)}</title></head>'
        f"<body><h1>{esc(question(exp))}</h1><h2>{esc(t('class.view.fixed_heading'))}</h2><ul>{fixed}</ul>"
        f"<p>{esc(summary(exp).replace('**', ''))}</p><p>{esc(claim(exp))}</p>{''.join(body)}"
        f"<h2>{esc(t('class.view.table'))}</h2>{runs}{extra}</body></html>"
    )
