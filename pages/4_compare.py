"""Lesson 4: strategies race on the same data and seed; the matrix, recommended vs measured."""

from __future__ import annotations

import streamlit as st

from studio import plots
from studio.bound_widgets import bound
from studio.i18n import device_text, lesson, t
from studio.job_panel import active_elsewhere, job_panel, live_panel, start_button
from studio.page_frame import ensure_frame
from studio.results import chart, draw_race_results, translator
from studio.time_notes import estimate_note
from studio.widgets import (
    RACE_CHOICES,
    backbone_ui,
    config_from_state,
    dataset_ui,
    group_names,
    kept_tabs,
    tab_drawn,
    training_ui,
)
from tlcore.lab import committed_results
from tlcore.serve.jobs import JobView
from tlcore.train import strategies

ensure_frame()
st.title(t("page4.title"))
# While the race or the sweep goes, its live panel comes first, above the settings and the
# tabs: in view at 1280x720 whichever tab is open.
live = live_panel("race", "sweep")
lesson("compare", "race", level=3)


@st.cache_data(show_spinner=False)
def read_result(name: str) -> dict | None:
    """A committed experiment result (assets/results/<name>.json), or None if absent or unreadable."""
    return committed_results.read(name)


@st.cache_data(show_spinner=False)
def measured(names: tuple[str, ...]) -> committed_results.MeasuredMatrix | None:
    """Committed matrix files as one measurement, with what it was measured with."""
    return committed_results.measured_matrix(*names)


def draw_setup(matrix: committed_results.MeasuredMatrix) -> None:
    """What a measured matrix was measured with, from its own file."""
    st.markdown(f"**{t('page4.measured', backbone=matrix.backbone, size=matrix.image_size)}**")
    st.caption(committed_results.setup_text(matrix, t))
    if not committed_results.at_rule_depths(matrix):
        st.warning(t("page4.measured_not_rule"))


def draw_chart(matrix: committed_results.MeasuredMatrix, key: str) -> None:
    """The verdicts per cell (full width: the cell text is projector-sized), then the numbers."""
    chart(plots.matrix_figure(matrix.verdicts, translator()), "", key, plots.matrix_text(matrix.verdicts, translator()))
    st.caption(
        t("caption.matrix_measured", command="; ".join(f"`{c}`" for c in matrix.commands), device=device_text(matrix.device))
    )
    with st.expander(t("page4.matrix_details")):
        st.dataframe(committed_results.results_rows(matrix.table, t), hide_index=True, width="stretch")


# --- settings shared by the race and the sweep ---
data_col, model_col = st.columns(2, gap="large")
with data_col:
    choice = dataset_ui(st.session_state.get("online", False))
    training_ui(choice)
with model_col:
    backbone = backbone_ui()
    groups = group_names(backbone)
    # Pills, not a multiselect: every strategy in view and clickable (a multiselect's chips were clipped).
    # wrap: straight in a column, Streamlit keeps them on one row that scrolls sideways (the last two
    # were out of sight at 1280 px).
    picked = (
        st.pills(
            t("page4.strategies"),
            RACE_CHOICES,
            selection_mode="multi",
            wrap=True,
            **bound("race_strategies"),
            format_func=lambda s: t(f"strategy.{s}"),
            help=t("help.race_strategies"),
        )
        or []
    )
    # 'partial' in the race uses the depth chosen on page 2, or half the body if that froze nothing or everything.
    depth = strategies.partial_depth(st.session_state["freeze_depth"], len(groups) - 1)
    st.caption(t("page4.partial_depth", depth=depth))


def race_tab() -> None:
    if active_elsewhere("race"):
        st.info(t("job.busy_elsewhere"))
    elif live != "race":
        if picked and choice.ready:
            estimate_note(lambda: [config_from_state(choice, strategy=s, freeze_depth=depth) for s in picked])
        start_button(
            "race",
            t("page4.race_start"),
            lambda: [config_from_state(choice, strategy=s, freeze_depth=depth) for s in picked],
            list(picked),  # keys: each page names them in its own language (studio.i18n.run_labels)
            type="primary",
            disabled=not (picked and choice.ready),
            help=t("help.race_start"),
            key="race_start",
            icon=":material/flag:",
        )
    if live != "race":
        job_panel("race", results=draw_race_results)


def sweep_tab() -> None:
    lesson("compare", "sweep", level=4)
    depths = list(range(len(groups)))  # 0 = nothing frozen ... len-1 = only the head trains
    if active_elsewhere("sweep"):
        st.info(t("job.busy_elsewhere"))
    elif live != "sweep":
        if choice.ready:
            estimate_note(lambda: [config_from_state(choice, strategy="partial", freeze_depth=d) for d in depths])
        start_button(
            "sweep",
            t("page4.sweep_start", n=len(depths)),
            lambda: [config_from_state(choice, strategy="partial", freeze_depth=d) for d in depths],
            [f"k={d}" for d in depths],
            disabled=not choice.ready,
            help=t("help.sweep_start"),
            key="sweep_start",
        )

    def sweep_results(view: JobView) -> None:
        finished = [
            (config.freeze_depth, snap.result.val_acc)
            for config, snap in zip(view.configs, view.runs, strict=True)
            if snap.result is not None
        ]
        if finished:
            series = {t("page4.sweep_this"): ([d for d, _ in finished], [a for _, a in finished])}
            chart(plots.depth_figure(series, translator()), "caption.sweep", "sweep", plots.depth_text(series, translator()))
        draw_race_results(view)

    if live != "sweep":
        job_panel("sweep", results=sweep_results)

    # The committed transfer-depth experiment (Yosinski's: the first k groups copied, frozen or
    # fine-tuned, the rest re-initialised), on its own axis: the synthetic backbone on digits,
    # Lite0 on Fashion-MNIST.
    committed = [
        (name, key, r)
        for name, key in (
            ("transfer_depth", "page4.transfer_depth.studio"),
            ("transfer_depth_imagenet", "page4.transfer_depth.imagenet"),
        )
        if (r := read_result(name))
    ]
    if committed:
        st.markdown(f"#### {t('page4.transfer_depth.heading')}")
        st.caption(t("page4.transfer_depth.intro"))
    for col, (name, key, result) in zip(st.columns(max(1, len(committed))), committed, strict=False):
        with col:
            st.markdown(f"**{t(key)}**")
            series = committed_results.transfer_depth_series(result, t)
            chart(
                plots.depth_figure(series, translator(), depth="transfer_depth"),
                "",
                f"transfer_depth:{name}.json",
                plots.depth_text(series, translator()),
            )
            st.caption(
                t("caption.transfer_depth", command=result.get("command", "?"), device=device_text(result.get("device", "?")))
            )


def matrix_tab() -> None:
    lesson("compare", "measured", level=4)
    matrix = measured(("matrix",))
    seeds_col, measured_col = st.columns(2, gap="large")
    with seeds_col:
        st.markdown(f"**{t('page4.recommended')}**")
        st.markdown(committed_results.recommended_markdown(len(groups), t), unsafe_allow_html=True)
        st.caption(t("caption.matrix_recommended"))
    with measured_col:
        if matrix:
            draw_setup(matrix)
        else:
            st.info(t("page4.no_results"))
    if matrix:
        draw_chart(matrix, "matrix_measured")
    # The same measurement with real ImageNet weights on real photos (Fashion-MNIST, the 'different' column).
    real = measured(("matrix_imagenet_small", "matrix_imagenet_large"))
    if real:
        st.divider()
        st.caption(t("page4.measured_imagenet"))
        draw_setup(real)
        draw_chart(real, "matrix_imagenet")


tabs = kept_tabs("compare_tab", [t("page4.tab.race"), t("page4.tab.sweep"), t("page4.tab.matrix")])
for tab, draw in zip(tabs, (race_tab, sweep_tab, matrix_tab), strict=True):
    if tab_drawn(tab, live is not None):  # while the race or the sweep trains, only the open tab
        with tab:
            draw()
