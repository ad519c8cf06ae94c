"""The feature space panel: the learner's training examples as the pretrained body, a random
body of the same architecture and (after a fine-tune) the fine-tuned body see them, in 2-D,
one colour per class, each point's picture (or sentence) on hover, and beside each the
accuracy a probe reaches on those frozen features.

The work (a few seconds of forward passes) is done by tlcore.explain.feature_space on its own background
thread and kept there per backbone, dataset, size and seed: a page run only asks for it and
draws what is ready. The learner starts it once with a button; while it is computed a
fragment looks every second and the page is redrawn once when it is done. Changing the data
or the projection afterwards starts the new view by itself.

The hover thumbnails are Vega-Lite tooltips: vega-tooltip (in Streamlit's chart component)
draws a tooltip field titled `image` as a picture, and one titled `title` as its heading.
"""

from __future__ import annotations

import base64
import dataclasses
import threading
from collections.abc import Callable, Sequence

import streamlit as st

from studio import plots
from studio.bound_widgets import bound
from studio.choices import register_choices
from studio.i18n import class_title, current_lang, lesson, t, translated
from studio.image_panels import encoded
from studio.learner import network_address, owner
from studio.server import job_queue, kept_model
from studio.state import callback, job_id, keep_settings
from tlcore.explain import feature_space
from tlcore.models import catalog
from tlcore.serve import class_limits
from tlcore.train.config import RunConfig

SETTING = "features_method"
register_choices({SETTING: feature_space.methods_available})
POLL_S = 1.0  # seconds between looks while a view is computed
TURN_S = 2.0  # seconds between asks while the worker has no place for the view
PANEL_PX = {1: 300, 2: 300, 3: 200}  # one panel's plot width for 1 to 3 panels: all fit the page at 1280 x 720
PLOT_PX = 260  # plot height
# One colour per class, the same in every panel (studio.plots' palette first, then three more).
CLASS_COLOURS = (*plots._PALETTE, "#db2777", "#65a30d", "#475569")
KIND_ORDER = ("pretrained", "random", "finetuned")
# vega-tooltip's own text is 11-13 px: the hover label at the charts' smallest size, its picture enlarged
TOOLTIP_CSS = (
    f"<style>#vg-tooltip-element {{font-size: {plots.FONT_PX}px;}} "
    f"#vg-tooltip-element h2 {{font-size: {plots.FONT_PX + 2}px;}} "
    "#vg-tooltip-element img {width: 96px; height: 96px; image-rendering: auto;}</style>"
)


def _wanted_key(key: str) -> str:
    return f"features_wanted:{key}"


def request_for(config: RunConfig, finetune_slots: Sequence[str] = ()) -> feature_space.Request:
    """The view of the data a run with `config` would train on (its backbone: the offline fallback
    already applied by the page), in the learner's projection, with the fine-tuned body of the first
    of `finetune_slots` that trained on the same data."""
    base = feature_space.Request.of(config, st.session_state.get(SETTING, "pca"))
    model_id = _finetuned_id(base, finetune_slots)
    return dataclasses.replace(base, finetuned_id=model_id) if model_id else base


def _finetuned_id(base: feature_space.Request, slots: Sequence[str]) -> str:
    """The model id of the first slot's finished run that trained on this view's data (same
    backbone, dataset, validation split and size) and is still on the shelf; else "".

    Only this learner's own run: its id is in its result (as for "Try it"). The view's
    validation examples are then the run's own held-out ones, never trained on."""
    for slot in slots:
        current = job_id(slot)
        view = job_queue().get(current, owner(), heartbeat=False) if current else None
        if view is None or not view.runs or view.state != "done":
            continue
        config, result = view.configs[-1], view.runs[-1].result
        model_id = result.model_id if result else None
        same = (
            config.task == base.task
            and config.backbone == base.backbone
            and config.dataset == base.dataset
            and config.data_root == base.root
            and config.val_per_class == base.val_per_class
            and config.data_seed == base.seed
            and (base.task == "text" or config.image_size == base.image_size)
        )
        entry = kept_model(model_id) if same and model_id else None
        # a LoRA text model's features are not read apart from its adapters: no third view of it
        if entry is not None and getattr(entry.model, "can_cache_features", lambda: True)():
            return model_id
    return ""


@callback
def _want(key: str, wanted: bool) -> None:
    st.session_state[_wanted_key(key)] = wanted


def feature_space_panel(
    key: str,
    make: Callable[[], RunConfig | None],
    *,
    finetune_slots: Sequence[str] = (),
    expander: bool = True,
    prefetch: bool = False,
) -> None:
    """The feature space of the training split that the run `make()` describes, under its
    backbone's pretrained and random bodies (and the fine-tuned body of the first finished run
    in `finetune_slots` on the same data), in an expander (or inline with `expander=False`).
    Nothing is drawn while the settings describe no valid run (the Start button says why).

    prefetch: start computing the view when the panel is first drawn, before the learner asks
    (page 1's view is the same for everyone: computed once per server, ready by the click)."""
    holder = st.empty()
    with holder.container():  # an "invalid settings" message is the Start button's to say
        config = make()
    holder.empty()
    if config is None:
        return
    task = config.task
    box = st.expander(t("features.title"), icon=":material/scatter_plot:") if expander else st.container()
    with box:
        if not expander:
            st.subheader(t("features.title"))
        keep_settings({SETTING: "pca"}, group="features")
        st.caption(
            t(
                "features.intro_text" if task == "text" else "features.intro",
                n=min(config.per_class, feature_space.MAX_PER_CLASS[task]),
            )
        )
        if not st.session_state.get(_wanted_key(key), False):
            if prefetch:
                _prefetch(request_for(config, finetune_slots))
            st.button(
                t("features.show"),
                key=f"features_show:{key}",
                icon=":material/scatter_plot:",
                on_click=_want,
                args=(key, True),
                help=t("features.show_help"),
            )
            return
        _method_and_hide(key)
        _view_or_progress(key, request_for(config, finetune_slots))


def _method_and_hide(key: str) -> None:
    """The projection picker, and the button that hides the view again beside it."""
    method_col, hide_col = st.columns([2, 1], vertical_alignment="bottom")
    with method_col:
        st.segmented_control(
            t("features.method"),
            feature_space.methods_available(),
            format_func=lambda m: t(f"features.method.{m}"),
            help=t("features.method_help"),
            **bound(SETTING),
        )
    with hide_col:  # beside the picker, not at the chart's top right where its toolbar appears
        st.button(
            t("features.hide"),
            key=f"features_hide:{key}",
            on_click=_want,
            args=(key, False),
            icon=":material/visibility_off:",
            type="tertiary",
        )


class OneAtATime(feature_space.Busy):
    """This learner's other view is still being computed: theirs first, then this one."""


# One waiting view per learner: the worker's places (8) go round the class, not to one learner's
# tabs (one learner filled all 8 and a classmate had no chart after 240 s); per client address
# where the class file says each device has its own (`one_run_per_address`), so that twenty
# cookies of one script are one learner here too. Process-level.
_asked: dict[str, feature_space.Request] = {}  # learner (or "address:...") -> the view they wait for
_asked_lock = threading.Lock()


def start_for(
    learner: str, request: feature_space.Request, finetuned, spaces: feature_space.FeatureSpaces
) -> feature_space.Status:
    """Start `request` for `learner` unless another view of theirs is still computed (OneAtATime);
    the same view as a classmate's shares its computation, and costs this learner nothing."""
    with _asked_lock:
        mine = _asked.get(learner)
        if mine is not None and mine != request and spaces.status(mine).state == "running":
            raise OneAtATime(f"{learner}'s other feature view is still being computed")
        status = spaces.start(request, finetuned)
        if status.state == "running":
            _asked[learner] = request
        else:
            _asked.pop(learner, None)
        if len(_asked) > 4 * spaces.max_waiting:  # only the running ones matter: forget the rest
            for who in [w for w, r in _asked.items() if spaces.status(r).state != "running"]:
                del _asked[who]
    return status


def _start(request: feature_space.Request) -> feature_space.Status:
    """Start the view in the background with this learner's fine-tuned model (from the shelf,
    tlcore.serve.kept_models) when it names one; gone from the shelf: failed, and said why."""
    finetuned = kept_model(request.finetuned_id) if request.finetuned_id else None
    if request.finetuned_id and finetuned is None:
        return feature_space.Status("failed", error=feature_space.FinetunedGone(request.finetuned_id))
    return start_for(waiter(), request, finetuned, feature_space.shared_spaces())


def waiter() -> str:
    """Who holds a place in the feature worker's line: this learner, or this learner's address
    where the class file says `one_run_per_address` (as the job queue counts; this machine's own
    tabs, whose address is unknown, count by learner)."""
    address = network_address()
    if address is not None and class_limits.load().one_run_per_address:
        return f"address:{address}"
    return owner()


def _prefetch(request: feature_space.Request) -> None:
    """Start the view in the background if nobody has (returns at once; a busy worker is left alone)."""
    spaces = feature_space.shared_spaces()
    if spaces.status(request).state == "missing":
        try:
            _start(request)
        except feature_space.Busy:
            pass


def _view_or_progress(key: str, request: feature_space.Request) -> None:
    spaces = feature_space.shared_spaces()
    status = spaces.status(request)
    if status.state == "missing":
        try:
            status = _start(request)
        except feature_space.Busy as busy:
            _wait_turn(request, t("features.one_at_a_time" if isinstance(busy, OneAtATime) else "features.busy"))
            return
    if status.state == "running":
        shown = status.view is not None
        if shown:  # the bodies done so far (the pretrained panel first), the rest as it arrives
            draw_view(status.view, request)

        @st.fragment(run_every=POLL_S)
        def wait() -> None:
            now = spaces.status(request)
            if now.state != "running" or (now.view is not None) != shown:
                st.rerun()  # once per step: draw what is new outside the polling fragment
            st.info(t("features.computing_rest" if shown else "features.computing"), icon=":material/hourglass_top:")

        wait()
        return
    if status.state == "failed":
        st.warning(_why(status.error), icon=":material/error:")
        st.button(t("features.retry"), key=f"features_retry:{key}", on_click=_retry, args=(request,))
        return
    draw_view(status.view, request)


def _wait_turn(request: feature_space.Request, message: str) -> None:
    """The worker has no place for this view yet (the learner's other view first, or the class's
    views fill it): say so and ask again every TURN_S, without a click; once it has started, the
    whole page runs again and shows its progress. (Said "starts when it is ready" and then waited
    for a click that nobody knew to make: a learner's first view never came in 240 s.)"""

    @st.fragment(run_every=TURN_S)
    def wait_turn() -> None:
        try:
            _start(request)
        except feature_space.Busy:
            st.info(message, icon=":material/hourglass_top:")
            return
        st.rerun()

    wait_turn()


@callback
def _retry(request: feature_space.Request) -> None:
    try:
        _start(request)
    except feature_space.Busy:  # the next page run asks again (and says so if the worker is still full)
        pass


def _why(error: BaseException | None) -> str:
    from studio.i18n import explain_error

    if isinstance(error, feature_space.FinetunedGone):
        return t("features.finetuned_gone")
    return t("features.failed", reason=explain_error(error) if error is not None else "")


# --- the picture --------------------------------------------------------------------------


def _axis(space: feature_space.Space, method: str, i: int) -> str:
    if space.explained is not None:
        return t("features.axis_pca", i=i + 1, share=round(100 * space.explained[i]))
    return t(f"features.axis.{method}", i=i + 1)


@st.cache_data(show_spinner=False, max_entries=16)
def _thumbnails(data_key: tuple, _view: feature_space.FeatureView) -> list[str]:
    """Each training image as a PNG data URL (the tooltip's picture), encoded once per data set."""
    return ["data:image/png;base64," + base64.b64encode(encoded(image)).decode("ascii") for image in _view.thumbs]


def chart_spec(view: feature_space.FeatureView, request: feature_space.Request, lang_class) -> object:
    """The Altair chart: one scatter per body side by side over one table (the thumbnails are sent
    once), colours by class shared by every panel; clicking a class in the legend lights it up
    in each panel."""
    import altair as alt
    import pandas as pd

    names = [lang_class(c) for c in view.classes]
    table = {"cls": [names[y] for y in view.labels]}
    tooltip = [alt.Tooltip("cls:N", title="title")]  # vega-tooltip: "title" is the heading ...
    if view.thumbs is not None:
        table["image"] = _thumbnails(request.data_key(), view)
        tooltip.append(alt.Tooltip("image:N", title="image"))  # ... and "image" is drawn as a picture
    else:
        table["sentence"] = list(view.texts)
        tooltip.append(alt.Tooltip("sentence:N", title=t("features.sentence")))
    kinds = [k for k in KIND_ORDER if k in view.spaces]
    for kind in kinds:
        coords = view.spaces[kind].coords
        table[f"x_{kind}"], table[f"y_{kind}"] = coords[:, 0].tolist(), coords[:, 1].tolist()
    data = pd.DataFrame(table)
    picked = alt.selection_point(fields=["cls"], bind="legend", name="picked_class")
    colour = alt.Color(
        "cls:N",
        title=t("features.class"),
        scale=alt.Scale(domain=names, range=[CLASS_COLOURS[i % len(CLASS_COLOURS)] for i in range(len(names))]),
        legend=alt.Legend(orient="bottom", columns=min(5, len(names)), symbolSize=160),
    )
    width = PANEL_PX[len(kinds)]
    # The numbers on the axes mean nothing (only which points are near which): no tick labels;
    # a margin inside the frame keeps every dot in it (a dot over the edge pushed its title up).
    bare, inside = alt.Axis(labels=False, ticks=False), alt.Scale(zero=False, nice=False, padding=10)
    panels = []
    for kind in kinds:
        space = view.spaces[kind]
        # short lines: a panel is as wide as its title (a long one pushed the third panel off the page)
        subtitle = [t("features.probe", acc=f"{100 * space.probe_acc:.0f}"), t("features.ncm", acc=f"{100 * space.ncm_acc:.0f}")]
        panels.append(
            alt.Chart(title=alt.TitleParams(t(f"features.kind.{kind}"), subtitle=subtitle, anchor="start"))
            .mark_circle(size=70, stroke="white", strokeWidth=0.5)
            .encode(
                x=alt.X(f"x_{kind}:Q", title=_axis(space, view.method, 0), scale=inside, axis=bare),
                y=alt.Y(f"y_{kind}:Q", title=_axis(space, view.method, 1), scale=inside, axis=bare),
                color=colour,
                tooltip=tooltip,
                opacity=alt.condition(picked, alt.value(0.85), alt.value(0.08)),
            )
            .properties(width=width, height=PLOT_PX)
        )
    panels[0] = panels[0].add_params(picked)  # one selection, read by every panel
    font = plots.FONT_PX
    return (
        alt.hconcat(*panels, data=data, spacing=24)
        .configure_axis(titleFontSize=font, labelFontSize=font, titleFontWeight="normal")
        .configure_legend(titleFontSize=font, labelFontSize=font, labelLimit=160)
        .configure_title(fontSize=font + 3, subtitleFontSize=font, subtitleColor="#334155")
        .configure_view(strokeWidth=1, stroke="#cbd5e1")
    )


@st.cache_data(show_spinner=False, max_entries=32)
def _spec(request: feature_space.Request, lang: str, kinds: tuple[str, ...], _view: feature_space.FeatureView) -> dict:
    """The chart as a Vega-Lite dict, built once per view, bodies shown and language: building and
    validating it took 0.3 s of a page run (500 points, three panels, a busy 2-core CPU), on every
    click while the view is shown."""
    return chart_spec(_view, request, lambda c: class_title(_view.dataset, c)).to_dict()


def draw_view(view: feature_space.FeatureView, request: feature_space.Request) -> None:
    """The panels, a line of what was measured, and what the picture means."""
    if "pretrained" not in view.spaces:
        st.info(t("features.no_pretrained"))
    st.html(TOOLTIP_CSS)
    st.vega_lite_chart(
        spec=_spec(request, current_lang(), tuple(view.spaces), view),
        width="content",
        theme=None,
        key=f"features_chart:{request.task}:{request.dataset}:{len(view.spaces)}",
    )
    backbone = view.spaces[next(iter(view.spaces))].backbone  # under the chart: its toolbar covers the line above
    st.markdown(t("features.backbone", model=translated(f"backbone.title.{backbone}", catalog.backbone(backbone).title)))
    st.caption(_measured_line(view))
    if "pretrained" in view.spaces and "random" in view.spaces:
        gap = round(100 * view.gap)
        st.markdown(
            t(
                "features.gap" if gap >= 1 else "features.gap_none",
                gap=gap,
                pre=f"{100 * view.spaces['pretrained'].probe_acc:.0f}",
                rand=f"{100 * view.spaces['random'].probe_acc:.0f}",
            )
        )
    if "finetuned" in view.spaces:
        st.caption(t("features.finetuned_note"))
    with st.expander(t("features.read"), expanded=False):
        for section in ("picture", "why", "probes"):
            lesson("features", section, level=4)


def _measured_line(view: feature_space.FeatureView) -> str:
    seconds = view.timings.get("total_s", 0.0)
    return t(
        "features.measured",
        n=len(view.labels),
        val=view.n_val,
        classes=len(view.classes),
        method=t(f"features.method.{view.method}"),
        seconds=f"{seconds:.1f}",
        dim=view.spaces[next(iter(view.spaces))].dim,
    )
