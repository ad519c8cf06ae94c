"""A run's results on screen: its charts (live and final), a race's curves and table, the
finished run's confusion matrix, mistakes, weight drift and downloads.

Everything drawn comes from the job's HistorySnapshots (tlcore.core.events); figures are built
by studio.plots and kept per session until the run moves on (`figures`). Not for: polling a
running job or its Stop button (studio.job_panel), times (studio.time_notes).
"""

from __future__ import annotations

import html
from collections.abc import Callable

import numpy as np
import streamlit as st

from studio import forgetting_panel, plots, takehome
from studio.i18n import class_title, current_lang, explain, run_labels, t
from studio.image_panels import encoded, pictures
from tlcore.core import metrics
from tlcore.core.bounded import LRU
from tlcore.core.events import HistorySnapshot, RunResult
from tlcore.serve.jobs import JobView
from tlcore.train.config import RunConfig


def translator() -> Callable[[str], str]:
    lang = current_lang()
    return lambda key: t(key, lang=lang)


FIGURES_KEPT = 4  # chart sets kept per session (live panel, finished run, a race, one spare)


def snap_version(snap: HistorySnapshot) -> int:
    """A run's history only grows: its length says whether anything new arrived."""
    return len(snap.events)


def figures(key: str, version, build: Callable[[], tuple]) -> tuple:
    """The figures `build()` makes, rebuilt only when `version` (or the language) changed.

    Building the four plotly figures of a run costs about 100 ms of server CPU (plotly
    validates every trace and layout property); serialising ready ones about 5 ms. The live
    panel redraws every second, and on a full page (a click, a finished run) every chart is
    redrawn too, mostly with nothing new: measured with `python -m tools.loadtest`, this is
    the server time a class of pollers spends for nothing. Kept in session state (this
    learner's own figures), a few sets at most."""
    store = st.session_state.get("_figures")
    if not isinstance(store, LRU):
        store = st.session_state["_figures"] = LRU(FIGURES_KEPT)
    stamp = (version, current_lang())
    hit = store.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    figs = build()
    store.put(key, (stamp, figs))
    return figs


def chart(fig, caption_key: str, key: str, text: plots.ChartText | None = None) -> None:
    """A chart, what it shows now in one sentence and its data as a table (folded), then how to read it."""
    st.plotly_chart(fig, width="stretch", key=key, config={"displaylogo": False})
    if text is not None:
        chart_text(text)
    if caption_key:
        st.caption(t(caption_key))


def live_chart(drawn: str, caption_key: str, text: plots.ChartText) -> None:
    """A live chart (studio.plots.live: HTML, cheap for the browser to redraw every poll), what it
    shows now in one sentence and its data as a table (folded), then how to read it."""
    st.html(drawn)
    chart_text(text)
    st.caption(t(caption_key))


def chart_text(text: plots.ChartText) -> None:
    """A chart's text alternative (WCAG 1.1.1): the sentence, and the numbers behind the chart
    as a real table in a folded expander (a screen reader reads a table cell by cell; the chart's
    SVG says nothing)."""
    st.markdown(text.summary)
    if text.table:
        with st.expander(t("chart.table"), expanded=False):
            st.html(table_html(text.table, t("chart.table")))


def table_html(table: dict[str, list], label: str) -> str:
    """Columns as an HTML table with header cells, in a box a keyboard can scroll (a wide table
    on a phone scrolls inside it, not the page; st.table's scrolling box took no focus)."""
    names = list(table)
    rows = zip(*(table[n] for n in names), strict=False)
    head = "".join(f'<th scope="col">{html.escape(str(n))}</th>' for n in names)
    body = "".join(
        "<tr>"
        + "".join(
            (f'<th scope="row">{html.escape(str(v))}</th>' if i == 0 else f"<td>{html.escape(str(v))}</td>")
            for i, v in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return (
        f'<div class="tls-table" tabindex="0" role="region" aria-label="{html.escape(label)}">'
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def draw_run_charts(snap: HistorySnapshot, *, key: str, live: bool = False) -> None:
    """Loss and accuracy curves, gradient-norm heatmap and bars, throughput. While the run
    trains (`live`), only the loss curve and the heatmap are drawn, as HTML (studio.plots.live):
    plotly redrawing charts every second took the training's CPU (docs/demo-speed.md)."""
    tr = translator()
    evals = snap.evals
    cols = st.columns(3)
    cols[0].metric(
        t("metric.step"), f"{snap.steps[-1].step if snap.steps else 0} / {snap.started.total_steps if snap.started else '?'}"
    )
    cols[1].metric(t("metric.val_acc"), f"{evals[-1].val_acc:.1%}" if evals else "–")
    unit = "sentences" if (snap.config or {}).get("task") == "text" else "images"  # per task
    cols[2].metric(t(f"metric.{unit}_per_s"), f"{evals[-1].examples_per_s:.0f}" if evals else "–", help=t(f"help.{unit}_per_s"))
    if live:
        loss, heatmap = figures(key, snap_version(snap), lambda: (plots.live_loss(snap, tr), plots.live_heatmap(snap, tr)))
        left, right = st.columns(2)
        with left:
            live_chart(loss, "caption.loss", plots.loss_text(snap, tr))
        with right:
            live_chart(heatmap, "caption.grad_heatmap", plots.grad_text(snap, tr))
        return
    figs = figures(
        key,
        snap_version(snap),
        lambda: (
            plots.loss_figure(snap, tr),
            plots.accuracy_figure(snap, tr),
            plots.grad_norm_heatmap(snap, tr),
            plots.grad_norm_bars(snap, tr),
        ),
    )
    left, right = st.columns(2)
    with left:
        chart(figs[0], "caption.loss", f"{key}:loss", plots.loss_text(snap, tr))
    with right:
        chart(figs[1], "caption.acc", f"{key}:acc", plots.accuracy_text(snap, tr))
    left, right = st.columns([3, 2])
    with left:
        chart(figs[2], "caption.grad_heatmap", f"{key}:grad", plots.grad_text(snap, tr))
    with right:
        chart(figs[3], "caption.grad_bars", f"{key}:bars", plots.bars_text(snap, tr))


def draw_race(view: JobView, *, key: str, live: bool = False) -> None:
    """Several runs of one job: validation curves overlaid, one per label (as HTML while they
    train, `live`: studio.plots.live)."""
    tr = translator()
    runs = {label: snap for label, snap in zip(run_labels(view), view.runs, strict=False) if snap.started is not None}
    version = tuple(len(snap.evals) for snap in runs.values())  # the curves move once an epoch, not every step
    if live:
        drawn = figures(key, version, lambda: (plots.live_race(runs, "val/acc", tr), plots.live_race(runs, "val/loss", tr)))
        left, right = st.columns(2)
        with left:
            live_chart(drawn[0], "caption.race_acc", plots.race_text(runs, "val/acc", tr))
        with right:
            live_chart(drawn[1], "caption.race_loss", plots.race_text(runs, "val/loss", tr))
        return
    figs = figures(key, version, lambda: (plots.race_figure(runs, "val/acc", tr), plots.race_figure(runs, "val/loss", tr)))
    left, right = st.columns(2)
    with left:
        chart(figs[0], "caption.race_acc", f"{key}:race_acc", plots.race_text(runs, "val/acc", tr))
    with right:
        chart(figs[1], "caption.race_loss", f"{key}:race_loss", plots.race_text(runs, "val/loss", tr))


def race_table(view: JobView) -> list[dict]:
    """One row per finished run: final and best validation accuracy, training throughput,
    the frozen groups whose features were computed once (cached), trainable share.

    No seconds: on a shared machine the same run's time swings several-fold with the load,
    so wall times of different runs teach nothing. Throughput is per example through the
    part that trains, which is what caching a frozen prefix speeds up."""
    rows = []
    text = bool(view.configs) and view.configs[0].task == "text"
    for label, snap in zip(run_labels(view), view.runs, strict=False):
        result = snap.result
        if result is None:
            continue
        share = metrics.Trainable(result.trainable_params, result.total_params).values()
        rows.append(
            {
                t("race.col.strategy"): label,
                t("race.col.val_acc"): round(result.val_acc, 3),
                t("race.col.best_acc"): round(result.best_val_acc, 3),
                **({} if text else {t("race.col.imagenet"): forgetting_panel.forgetting_cell(result)}),
                t("race.col.throughput_text" if text else "race.col.throughput"): round(train_throughput(snap)),
                t("race.col.cached"): cached_groups(snap),
                t("race.col.trainable"): f"{share['trainable']} / {share['total']}",
                t("race.col.share"): f"{share['percent']}%",
            }
        )
    return rows


def train_throughput(snap: HistorySnapshot) -> float:
    """Examples per second through the trained part, median epoch (the engine's `train_per_s`;
    for a run recorded before it existed, the median of its epochs' own rates)."""
    result = snap.result
    if result and result.train_per_s:
        return float(result.train_per_s)
    rates = sorted(e.examples_per_s for e in snap.evals)
    if not rates:
        return float(result.examples_per_s or 0.0) if result else 0.0
    mid = len(rates) // 2
    return rates[mid] if len(rates) % 2 else (rates[mid - 1] + rates[mid]) / 2


def cached_groups(snap: HistorySnapshot) -> str:
    """'stem → stage2': the frozen groups run once over the data, their outputs kept; '–' if none."""
    depth = int((snap.result.cached_depth if snap.result else 0) or (snap.started.cached_depth if snap.started else 0) or 0)
    groups = list(snap.started.groups) if snap.started else []
    if depth <= 0 or not groups:
        return "–"
    names = [plots.group_label(g, t) for g in groups[:depth]]
    return names[0] if len(names) == 1 else f"{names[0]} → {names[-1]}"


def draw_race_results(view: JobView) -> None:
    """A finished job of several runs: overlaid curves and the results table."""
    draw_race(view, key=f"end:{view.id}")
    rows = race_table(view)
    if rows:
        st.dataframe(rows, hide_index=True, width="stretch")
        text = bool(view.configs) and view.configs[0].task == "text"
        st.caption(
            t("caption.race_table", unit=t("race.unit.sentences" if text else "race.unit.images"), cached=t("race.col.cached"))
        )
        forgetting_panel.race_caption([snap.result for snap in view.runs])


def draw_result_header(view: JobView) -> RunResult | None:
    """The finished run's curves, its note and the results heading; returns the result (None if it did not finish)."""
    snap = view.runs[0]
    if snap.started is not None:
        draw_run_charts(snap, key=f"end:{view.id}")
    result = snap.result
    if result is None:
        return None
    if result.note:
        note = result.note_message or {}
        st.info(explain(note.get("key"), note.get("values"), result.note))
    st.subheader(t("results.title"))
    return result


def draw_results(view: JobView) -> None:
    """The finished single run: curves, confusion matrix, mistakes, weight drift, downloads."""
    snap, config = view.runs[0], view.configs[0]
    result = draw_result_header(view)
    if result is None:
        return
    tr = translator()
    # Class names in the learner's language, as the data preview above names them.
    name = lambda c: class_title(config.dataset, str(c))  # noqa: E731
    classes = [name(c) for c in (result.classes or list(snap.started.classes))]
    left, right = st.columns(2)
    with left:
        if result.confusion:
            chart(
                plots.confusion_figure(result.confusion, classes, tr),
                "caption.confusion",
                f"end:{view.id}:confusion",
                plots.confusion_text(result.confusion, classes, tr),
            )
    with right:
        if result.weight_drift:
            frozen = snap.started.frozen if snap.started else ()
            chart(
                plots.drift_figure(result.weight_drift, frozen, tr),
                "caption.drift",
                f"end:{view.id}:drift",
                plots.drift_text(result.weight_drift, frozen, tr),
            )
        else:
            st.caption(t("results.no_drift"))
    # A run read back from the server's store (tlcore.serve.store) has its images back as PNG decodes;
    # one whose image could not be kept is left out rather than drawn as a broken image.
    wrong = [item for item in result.misclassified if item.get("image") is not None]
    st.markdown(f"**{t('results.mistakes')}**")
    if wrong:
        pictures(
            [
                (
                    encoded(picture(item["image"])),
                    t("alt.mistake", true=name(item["true"]), pred=name(item["pred"])),
                    t("results.true_pred", true=name(item["true"]), pred=name(item["pred"])),
                )
                for item in wrong
            ]
        )
        st.caption(t("caption.mistakes"))
    else:
        st.caption(t("results.no_mistakes"))
    forgetting_panel.forgetting_panel(result)
    draw_downloads(snap, config, key=view.id)


def picture(image) -> np.ndarray:
    """A misclassified example as an (H, W[, 3]) uint8 array (a grey image may come as (H, W, 1))."""
    array = np.asarray(image)
    if array.dtype != np.uint8:
        array = np.clip(array * (255 if array.max() <= 1.0 else 1), 0, 255).astype(np.uint8)
    return array[..., 0] if array.ndim == 3 and array.shape[-1] == 1 else array


def draw_downloads(snap: HistorySnapshot, config: RunConfig, *, key: str) -> None:
    st.markdown(f"**{t('results.downloads')}**")
    cols = st.columns(2)
    cols[0].download_button(
        t("results.csv"), snap.to_csv(), file_name="history.csv", mime="text/csv", key=f"csv:{key}", help=t("help.csv")
    )
    cols[1].download_button(
        t("results.json"),
        config.to_json(),
        file_name="config.json",
        mime="application/json",
        key=f"json:{key}",
        help=t("help.json"),
    )
    st.caption(t("results.cli"))
    st.code(config.to_cli(), language="bash")
    takehome.model_download(snap, config, key=key)
