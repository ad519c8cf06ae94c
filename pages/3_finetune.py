"""Lesson 3: fine-tune live: data in, Start, curves and gradient norms while it trains.

While a run is going its live panel comes first, under the title (studio.job_panel.live_panel),
and the settings, the reading guide and Try it fold into expanders drawn only when opened: on a
1280x720 projector the curves are in view, and the browser spends its cores on them, not on
what is shut.
"""

from __future__ import annotations

import streamlit as st

from studio.feature_space_panel import feature_space_panel
from studio.frozen_blocks import frozen_blocks
from studio.i18n import lesson, t
from studio.image_panels import data_preview, try_image_panel
from studio.job_panel import active_elsewhere, job_panel, live_panel, start_button
from studio.page_frame import ensure_frame
from studio.time_notes import estimate_note
from studio.widgets import backbone_ui, config_from_state, dataset_ui, folded, group_names, strategy_ui, training_ui

ensure_frame()
st.title(t("page3.title"))
running = live_panel("finetune") is not None


def settings():
    """The data, the model and how it trains (the Start button's `choice`)."""
    data_col, run_col = st.columns(2, gap="large")
    with data_col:
        st.subheader(t("page3.data"))
        choice = dataset_ui(st.session_state.get("online", False))
        training_ui(choice)
    with run_col:
        st.subheader(t("page3.model"))
        backbone = backbone_ui()
        strategy, depth = strategy_ui(group_names(backbone))
        frozen_blocks(backbone, strategy, depth, key="blocks3", compact=True)
        s = st.session_state
        st.caption(t("page3.rates", lr=f"{s['lr']:g}", mult=f"{s['head_lr_mult']:g}", decay=f"{s['layer_decay']:g}"))
    data_preview(choice.dataset, choice.data_root, ready=choice.ready)
    feature_space_panel("finetune", lambda: config_from_state(choice) if choice.ready else None, finetune_slots=("finetune",))
    return choice


def reading_guide() -> None:
    lesson("finetune", "curves", level=4)
    lesson("finetune", "gradnorms", level=4)
    lesson("finetune", "results", level=4)


if running:  # the settings, the reading guide and Try it folded, each drawn when opened (studio.widgets.folded)
    for label, key, draw, icon in (
        (t("page3.settings"), "fold:settings3", settings, ":material/tune:"),
        (t("page3.reading"), "fold:reading3", reading_guide, None),
        (t("try.title"), "fold:try3", lambda: try_image_panel("try:finetune"), ":material/image_search:"),
    ):
        box = folded(label, key, icon=icon)
        if box.open:
            with box:
                draw()
else:
    lesson("finetune", "intro", level=3)
    choice = settings()
    if active_elsewhere("finetune"):
        st.info(t("job.busy_elsewhere"))
    else:
        if choice.ready:
            estimate_note(lambda: config_from_state(choice))
        start_button(
            "finetune",
            t("page3.start"),
            lambda: config_from_state(choice),
            type="primary",
            disabled=not choice.ready,
            help=t("help.start"),
            icon=":material/play_arrow:",
            key="start",
        )
    with st.expander(t("page3.reading"), expanded=False):
        reading_guide()
    job_panel("finetune")
    st.divider()
    try_image_panel("try:finetune")
