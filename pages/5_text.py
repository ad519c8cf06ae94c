"""Lesson 5: text models: fine-tune a BERT-family model, compare strategies, guess masked words."""

from __future__ import annotations

import streamlit as st

from studio.bound_widgets import bound
from studio.feature_space_panel import feature_space_panel
from studio.i18n import lesson, t
from studio.job_panel import active_elsewhere, job_panel, live_panel, start_button
from studio.page_frame import ensure_frame
from studio.results import draw_race_results
from studio.text.pretraining import live_pretraining_ui, scale_table
from studio.text.widgets import (
    STRATEGIES,
    backbone_ui,
    data_ui,
    draw_text_results,
    fill_mask_ui,
    init_state,
    lora_rates,
    make_config,
    race_configs,
    rates_ui,
    readout,
    strategy_ui,
    training_ui,
)
from studio.time_notes import estimate_note
from studio.widgets import kept_tabs, tab_drawn

ensure_frame()
init_state()
st.title(t("text.title"))
# While a run goes, its live panel comes first, under the title: in view whichever tab is open.
live = live_panel("text", "text_race")
lesson("text", "intro", level=3)
online = st.session_state.get("online", False)


def finetune() -> tuple:
    """The fine-tune tab: the data, the model and its strategy (the comparison starts from them too)."""
    data_col, model_col = st.columns(2, gap="large")
    with model_col:
        st.subheader(t("text.model"))
        backbone = backbone_ui()
        choice = strategy_ui(backbone)
        readout(backbone, choice)
        rates_ui()
    with data_col:
        st.subheader(t("text.data"))
        data = data_ui(online)
        training_ui(data)
    feature_space_panel("text", lambda: make_config(data, choice) if data.ready else None, finetune_slots=("text",))
    if active_elsewhere("text"):
        st.info(t("job.busy_elsewhere"))
    elif live != "text":
        if data.ready:
            estimate_note(lambda: make_config(data, choice))
        start_button(
            "text",
            t("text.start"),
            lambda: make_config(data, choice),
            type="primary",
            disabled=not data.ready,
            key="text_start",
            icon=":material/play_arrow:",
        )
    if live != "text":
        job_panel("text", results=draw_text_results)
    return data, choice, backbone


def compare(data, choice, backbone) -> None:
    st.caption(t("text.compare_note"))
    lora_rates()
    picked = (
        st.pills(
            t("text.compare_pick"),
            STRATEGIES,
            selection_mode="multi",
            format_func=lambda s: t(f"strategy.{s}"),
            **bound("text_race_strategies"),
        )
        or []
    )
    if active_elsewhere("text_race"):
        st.info(t("job.busy_elsewhere"))
    elif live != "text_race":
        if picked and data.ready:
            estimate_note(lambda: race_configs(data, choice, backbone, picked))
        start_button(
            "text_race",
            t("text.compare_start"),
            lambda: race_configs(data, choice, backbone, picked),
            list(picked),
            disabled=not (picked and data.ready),
            key="text_race_start",
        )
    if live != "text_race":
        job_panel("text_race", results=draw_race_results)


def masked_words() -> None:
    lesson("text", "mlm", level=4)
    fill_mask_ui()
    st.subheader(t("mlmlive.title"))
    live_pretraining_ui()
    scale_table()
    lesson("text", "scale", level=4)
    lesson("text", "korean", level=4)


finetune_tab, compare_tab, mask_tab = kept_tabs("text_tab", [t("text.tab.finetune"), t("text.tab.compare"), t("text.tab.mask")])
# While a run trains, only the open tab is drawn (studio.widgets.tab_drawn). The comparison takes
# the fine-tune tab's data and model only for its Start, which no tab shows while a run goes (one
# run at a time: studio.job_panel.active_elsewhere).
running = live is not None
made = (None, None, None)
if tab_drawn(finetune_tab, running):
    with finetune_tab:
        made = finetune()
if tab_drawn(compare_tab, running):
    with compare_tab:
        compare(*made)
if tab_drawn(mask_tab, running):
    with mask_tab:
        masked_words()

with st.expander(t("text.more")):
    for key in ("models", "techniques", "groups", "reading", "offline"):
        lesson("text", key, level=4)
