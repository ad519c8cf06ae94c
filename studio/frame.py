"""The frame around every page: sidebar (language, device, online state, job queue) and
the page list for `st.navigation`.

`app.py` draws the frame on every run. A page calls `ensure_frame()` first: when the
frame did not run (Streamlit started with a `pages/` folder and the first visitor came
in through a deep link such as /finetune, so Streamlit ran the page file alone), the
page draws the frame itself and switches the server to `st.navigation` for all later runs.
"""

from __future__ import annotations

import re
from pathlib import Path

import streamlit as st

from studio import classroom_ui, i18n, plots, teacher
from studio.i18n import t
from studio.learner import owner, remember_learner
from studio.server import queue
from studio.state import keep_settings
from tlcore.core import offline
from tlcore.models.catalog import backbone as get_backbone
from tlcore.models.catalog import offline_default, weights_cached
from tlcore.train.device import describe_device

PAGES = Path(__file__).resolve().parent.parent / "pages"
# The browser tab's icon, served by the app itself: a Material icon name (":material/school:")
# makes every browser fetch it from Google's font servers, which an offline classroom cannot reach.
# (Layer groups, the two shallow ones frozen: assets/icon.png.)
ICON = PAGES.parent / "assets" / "icon.png"
# The lesson pages in teaching order: (file, i18n key of the title, icon).
LESSONS = [
    ("1_pretraining.py", "nav.pretraining", ":material/school:"),
    ("2_strategy.py", "nav.strategy", ":material/grid_view:"),
    ("3_finetune.py", "nav.finetune", ":material/model_training:"),
    ("4_compare.py", "nav.compare", ":material/leaderboard:"),
]
ICONS = {"6_class": ":material/groups:"}  # pages after the lessons (the text page keeps text_fields)
_SEEN = "_frame_seen"
# Korean breaks lines between words, not inside them (keep-all); a long unbroken token (a
# file name, a model id) may still wrap anywhere rather than overflow its column.
CSS = """<style>
[data-testid="stAppViewContainer"] :is(p, li, td, th, label, span, h1, h2, h3, h4, div) {
  word-break: keep-all; overflow-wrap: break-word;
}
.st-key-charts-early { display: none; }
</style>"""  # set by the frame, consumed by the page, in the same run


@st.cache_resource(show_spinner=False)
def device_name() -> str:
    return describe_device()


@st.cache_data(ttl=300, show_spinner=False)
def online_status() -> dict[str, bool]:
    """Can ImageNet weights and datasets be used? Cached for 5 minutes; a short timeout,
    so a classroom without internet gets an answer in about a second, not a hang."""
    internet = offline.reachable("https://download.pytorch.org", timeout=1.5)
    return {
        "internet": internet,
        "imagenet_cached": weights_cached("resnet18"),
        "offline_backbone": weights_cached(offline_default()),
    }


def pages() -> list:
    """The lessons in order, then any page other engineers add (e.g. text models)."""
    found = [
        st.Page(str(PAGES / name), title=t(key), icon=icon, default=(i == 0))
        for i, (name, key, icon) in enumerate(LESSONS)
        if (PAGES / name).exists()
    ]
    known = {name for name, _, _ in LESSONS}
    for path in sorted(PAGES.glob("*.py")):
        if path.name not in known and not path.name.startswith("_"):
            key = f"nav.{path.stem}"
            title = t(key) if t(key) != key else path.stem.lstrip("0123456789_").replace("_", " ").title()
            found.append(st.Page(str(path), title=title, icon=ICONS.get(path.stem, ":material/text_fields:")))
    return found


def start() -> None:
    """Per-run set-up before any page: page config, language, shared settings, the
    'frame ran' mark."""
    st.set_page_config(page_title="Transfer Learning Studio", page_icon=str(ICON), layout="wide")
    i18n.current_lang()
    st.html(CSS)
    keep_settings()
    shared = teacher.apply_link_settings()  # a link from the teacher: its settings, once
    if shared is not None:
        applied, ignored = shared
        if applied:
            st.success(t("link.applied", names=teacher.link_names(applied)))
        if ignored:
            st.warning(t("link.ignored", names=teacher.left_out_names(ignored)))
    classroom_ui.join_from_link()  # a class's join link (its QR): join, say so, drop the parameter
    classroom_ui.banner()  # the teacher brought this learner here (studio.classroom_ui.follow_teacher)
    st.session_state[_SEEN] = True
    failed = st.session_state.pop("_callback_error", None)
    if failed:
        st.error(t("error.callback", message=failed))


def sidebar() -> None:
    classroom_ui.follow_teacher()  # after the teacher's push: their settings and page, before anything is drawn
    i18n.language_picker()
    with st.sidebar:
        remember_learner()
    status = online_status()
    st.session_state["online"] = status["internet"]
    with st.sidebar:
        st.markdown(f"**{t('side.device')}**: {i18n.device_text(device_name())}")
        if status["internet"]:
            st.markdown(t("side.online"))
        elif status["imagenet_cached"]:
            st.markdown(t("side.cached"))
        else:
            st.markdown(t("side.offline"))
        if not status["offline_backbone"]:
            st.caption(t("side.no_offline_backbone", name=get_backbone(offline_default()).title))
        queue_status()
        classroom_ui.sidebar()


@st.fragment(run_every=3)
def queue_status() -> None:
    # While this browser tab is open, on any page, its run counts as watched: the queue
    # cancels only runs whose tab has gone (no heartbeat for minutes).
    me = owner()
    active = queue().active_for(me)
    if active is not None:
        queue().heartbeat(active, me)
    counts = queue().snapshot()
    st.markdown(t("side.queue", running=counts["running"], waiting=counts["waiting"]))
    load_charts_early()


def load_charts_early() -> None:
    """Have the browser load Plotly's code while the learner reads: a hidden, empty chart, drawn
    once, by this fragment's first re-run (3 s after the page is up), so neither the page's first
    draw nor the first run's live curve waits for it. In a fresh browser on the 2-core box the
    first Start's curve waited 1.5 s for that load (Finished 5.3 s against 3.5 s), and a chart
    in the page's first draw cost its time to interactive 0.9 s (docs/demo-speed.md)."""
    runs = st.session_state.get(_CHARTS_EARLY, 0)
    if runs == 1:  # once per session: the code stays loaded when the chart is gone
        with st.container(key="charts-early"):
            st.plotly_chart(plots.empty_figure(), key="charts_early", config={"staticPlot": True})
    st.session_state[_CHARTS_EARLY] = min(runs + 1, 2)


_CHARTS_EARLY = "_charts_early"


# A folder path in an error's text ("/tmp/tlstudio-up-x1/camera-ab/a", "C:\\Users\\x\\"): the server's
# layout is no learner's business (and a shared server's paths name other learners' folders).
_FOLDERS = re.compile(r"(?:\b[A-Za-z]:)?[/\\](?:[^\s'\"/\\]+[/\\])+")


def error_text(error: BaseException) -> str:
    """The page's last-resort error line: what went wrong, without the server's folders."""
    return t("error.page", kind=type(error).__name__, message=_FOLDERS.sub("…/", str(error)))


def ensure_frame() -> None:
    """Draw the frame if app.py did not run before this page (see the module docstring)."""
    if st.session_state.pop(_SEEN, False):
        return
    start()
    st.session_state.pop(_SEEN, None)
    st.navigation(pages())  # from now on the server runs app.py first, as designed
    sidebar()
