"""The frame around every page: sidebar (language, device, online state, job queue) and
the page list for `st.navigation`.

`app.py` draws the frame on every run. A page calls `ensure_frame()` first: when the
frame did not run (Streamlit started with a `pages/` folder and the first visitor came
in through a deep link such as /finetune, so Streamlit ran the page file alone), the
page switches the server to `st.navigation` for all later runs and runs again at once, drawing
nothing (under Streamlit's AppTest, which runs every page alone, it draws the frame itself).
"""

from __future__ import annotations

import re
from pathlib import Path

import streamlit as st
from streamlit import config as st_config

from studio import class_panels, hosts, i18n, plots, predictions, teacher
from studio.feedback import error as show_error
from studio.i18n import t
from studio.learner import owner
from studio.server import job_queue
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
_QUESTION_SLOT = "_question_slot"  # this run's place above the page for the class's question (None: not in the class)
_SWITCHED = "_frame_switched"  # this session asked the server to run app.py first
# Korean breaks lines between words, not inside them (keep-all); a long unbroken token (a
# file name, a model id) may still wrap anywhere rather than overflow its column.
CSS = """<style>
[data-testid="stAppViewContainer"] :is(p, li, td, th, label, span, h1, h2, h3, h4, div) {
  word-break: keep-all; overflow-wrap: break-word;
}
.st-key-charts-early { display: none; }
/* Accessibility (WCAG 2.1 AA, docs/accessibility.md). Captions carry content (the similarity
   verdict, "trainable: N of M", how to read a chart): Streamlit's grey at 0.6 opacity was
   3.88:1 on white, this is 7.6:1. Pills' text 4.48:1 -> 7:1 and more. */
[data-testid="stCaptionContainer"] { opacity: 1 !important; }
[data-testid="stCaptionContainer"], [data-testid="stCaptionContainer"] * { color: #4b5563 !important; }
[data-testid="stButtonGroup"] button p { color: #1f2937; }
/* A redraw keeps the page readable: Streamlit fades what a running script has not drawn again
   yet to 0.33 opacity (body text 1.9:1), and on a busy class server a timer's redraw can take
   seconds, every few seconds. Instead, a redraw that lasts over a second shows a moving bar along
   the top of the window (a quick one shows nothing: the timers redraw every few seconds). */
[data-stale="true"] { opacity: 1 !important; transition: none !important; }
body:has([data-stale="true"])::before {
  content: ""; position: fixed; top: 0; left: 0; right: 0; height: 4px; z-index: 1000000; pointer-events: none;
  background: repeating-linear-gradient(90deg, #1d4ed8 0 40px, #93c5fd 40px 80px); background-size: 80px 4px;
  opacity: 0; animation: tls-redraw-shown 0s linear 1s forwards, tls-redraw-moves 1s linear infinite;
}
@keyframes tls-redraw-shown { to { opacity: 1; } }
@keyframes tls-redraw-moves { to { background-position: 80px 0; } }
@media (prefers-reduced-motion: reduce) { body:has([data-stale="true"])::before { animation: tls-redraw-shown 0s linear 1s forwards; } }
[data-testid="stButtonGroup"] button[kind$="Active"] p { color: #1e3a8a; }
/* A code block wraps instead of scrolling: a scrolling box that no key can reach hid the end of
   the CLI command from keyboard users (and made phones scroll sideways). */
[data-testid="stCode"] pre, [data-testid="stCode"] code { white-space: pre-wrap !important; overflow-wrap: anywhere; }
/* Code's syntax colours at 4.5:1 and more on the code block (Streamlit's own: 2.6-2.8:1 for numbers and
   options): every token dark grey, then a few kinds in colours that keep 4.8:1 or more. */
[data-testid="stCode"] .token { color: #1f2937 !important; }
[data-testid="stCode"] :is(.token.parameter, .token.variable, .token.function) { color: #1d4ed8 !important; }
[data-testid="stCode"] :is(.token.number, .token.boolean, .token.constant) { color: #047857 !important; }
[data-testid="stCode"] :is(.token.string, .token.char) { color: #9a3412 !important; }
[data-testid="stCode"] :is(.token.keyword, .token.builtin) { color: #6d28d9 !important; }
[data-testid="stCode"] .token.comment { color: #4b5563 !important; }
/* The focus ring on every control, always visible (a keyboard learner must see where they are). */
:is(a, button, summary, input, textarea, [role="tab"], [role="slider"], [role="option"], [tabindex]:not([tabindex="-1"])):focus-visible {
  outline: 3px solid #1d4ed8 !important; outline-offset: 2px;
}
/* An element's toolbar (a chart's fullscreen) is a tab stop: shown whenever it holds focus. */
[data-testid="stElementToolbar"]:focus-within { opacity: 1 !important; }
/* A heading's "Link to heading" anchor is a tab stop too, shown only on hover: shown on focus. */
[data-testid="stHeaderActionElements"]:focus-within, [data-testid="stHeaderActionElements"] a:focus {
  opacity: 1 !important; visibility: visible !important; transition: none !important;
}
.tls-table { max-width: 100%; overflow-x: auto; }
.tls-table table { border-collapse: collapse; font-size: 0.875rem; }
.tls-table :is(th, td) { border: 1px solid #cbd5e1; padding: 0.25rem 0.5rem; text-align: right; white-space: nowrap; }
.tls-table th[scope="row"], .tls-table thead th:first-child { text-align: left; }
.tls-sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.tls-figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(6.5rem, 1fr)); gap: 0.75rem; margin: 0.25rem 0 0.75rem; }
.tls-figures figure { margin: 0; }
.tls-figures img, .tls-figure img { width: 100%; height: auto; image-rendering: pixelated; display: block; }
.tls-figures figcaption, .tls-figure figcaption { font-size: 0.875rem; color: #4b5563; overflow-wrap: anywhere; }
/* Phones and tablets: nothing wider than the screen, touch targets of 44 px, Start always in reach. */
@media (max-width: 1024px), (pointer: coarse) {
  [data-testid="stMain"] :is(button, [role="tab"], summary, [data-testid="stPageLink"] a),
  [data-testid="stSidebar"] :is(button, a, label), [data-testid="stRadio"] label { min-height: 44px; }
  [data-testid="stRadio"] label { display: flex; align-items: center; }
  [class*="st-key-cell-"] button :is(p, div) { white-space: normal !important; text-overflow: clip !important; overflow: visible !important; }
  [data-testid="stMarkdownContainer"] :is(td, th) { word-break: normal; overflow-wrap: anywhere; }
  [data-testid="stMarkdownContainer"] table { max-width: 100%; }
  .st-key-start, .st-key-exp_start, .st-key-race_start, .st-key-sweep_start, .st-key-text_start, .st-key-text_race_start {
    position: sticky; bottom: 0; z-index: 20; background: #ffffff; padding: 0.5rem 0; width: 100% !important;
    box-shadow: 0 -6px 8px -6px rgba(15, 23, 42, 0.25);
  }
}
</style>"""  # set by the frame, consumed by the page, in the same run
CSS = CSS.replace("</style>", plots.LIVE_CSS + "</style>")  # a run's live charts (studio.plots.live)
# Set once per language by the frame (st.html runs a script again only when its text changes):
# <html lang> follows the page's language (a screen reader reads Korean with a Korean voice), one
# polite and one assertive live region that outlive Streamlit's redraws (a region drawn by a
# script run is replaced with it, and a new region's text is not read out: studio.feedback.announce
# writes into these), and focus kept on the control used when a rerun redraws it (a matrix
# cell), or moved to the control that took its place (Start -> Stop -> Start).
PAGE_JS = """<script>
(() => {
  document.documentElement.lang = 'LANG';
  window.__tlsSkip = 'SKIP';  // Streamlit's own skip link, in the page's language (kept on every redraw)
  // ... and the main area it jumps to is its target, not one more Tab stop on every page (Streamlit
  // gives it tabindex 0; at -1 the skip link still lands there and the keys still scroll it)
  const skip = () => { const a = document.querySelector('[data-testid="stSkipToContent"]');
    if (a && a.textContent !== window.__tlsSkip) a.textContent = window.__tlsSkip;
    const main = document.getElementById('stMain');
    if (main && main.getAttribute('tabindex') !== '-1') main.setAttribute('tabindex', '-1'); };
  skip();
  if (!window.__tlsSkipWatch) { window.__tlsSkipWatch = new MutationObserver(skip);
    window.__tlsSkipWatch.observe(document.body, { childList: true, subtree: true }); }
  if (window.__tlsA11y) return;
  window.__tlsA11y = true;
  // On a phone the sidebar lies over the page: a link in it ("Open your part") closes it on the way.
  document.addEventListener('click', (e) => {
    if (innerWidth >= 768 || !e.target.closest('[data-testid="stSidebar"] [data-testid="stPageLink-NavLink"]')) return;
    const close = document.querySelector('[data-testid="stSidebarCollapseButton"] button');
    if (close) setTimeout(() => close.click(), 0);
  }, true);
  for (const [id, level] of [['tls-live', 'polite'], ['tls-alert', 'assertive']]) {
    const region = document.createElement('div');
    region.id = id; region.className = 'tls-sr';
    region.setAttribute('aria-live', level); region.setAttribute('role', level === 'polite' ? 'status' : 'alert');
    document.body.appendChild(region);
  }
  let last = null, lastEl = null;  // the Streamlit key class (st-key-...) and element that last had focus
  const keyOf = (el) => { for (let p = el; p && p.classList; p = p.parentElement)
    for (const c of p.classList) if (c.startsWith('st-key-')) return c; return null; };
  document.addEventListener('focusin', (e) => { const k = keyOf(e.target); if (k) { last = k; lastEl = e.target; } }, true);
  const focusable = (box) => box && box.querySelector('button:not([disabled]), a[href], input, [role="tab"], [tabindex]:not([tabindex="-1"])');
  const restore = () => {  // only when the redraw took focus away (the control gone or disabled), not a click elsewhere
    const el = document.activeElement;
    if (!last || (el && el !== document.body) || (lastEl && lastEl.isConnected && !lastEl.disabled)) return;
    let target = focusable(document.querySelector('.' + CSS.escape(last)));
    if (!target && /^st-key-(start|exp_start|race_start|sweep_start|text_start|text_race_start)$/.test(last))
      target = focusable(document.querySelector('[class*="st-key-stop-"]'));
    if (!target && last.startsWith('st-key-join'))  // joined: the join box made way for the "joined" line
      target = focusable(document.querySelector('[class*="st-key-joined-"]'));
    if (!target && last.startsWith('st-key-stop-'))
      target = focusable(document.querySelector('.st-key-start, .st-key-exp_start, .st-key-race_start, .st-key-sweep_start, .st-key-text_start, .st-key-text_race_start'));
    if (target) { target.focus({preventScroll: true}); last = keyOf(target); }
  };
  new MutationObserver(() => setTimeout(restore, 50)).observe(document.body, {childList: true, subtree: true});
})();
</script>"""


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
    'frame ran' mark, and the place above the page where a joined learner's question goes."""
    st.set_page_config(page_title="Transfer Learning Studio", page_icon=str(ICON), layout="wide")
    hosts.guard()  # once per server: websockets for this machine's own names only (studio.hosts)
    if teacher.limits().teacher_mode:
        teacher.one_time_code()  # in the server's log from its first page on (studio.teacher)
    lang = i18n.current_lang()
    st.html(CSS + PAGE_JS.replace("LANG", lang).replace("SKIP", i18n.t("a11y.skip")), unsafe_allow_javascript=True)
    keep_settings()
    shared = teacher.apply_link_settings()  # a link from the teacher: its settings, once
    if shared is not None:
        applied, ignored = shared
        if applied:
            st.success(t("link.applied", names=teacher.link_names(applied)))
        if ignored:
            st.warning(t("link.ignored", names=teacher.left_out_names(ignored)))
    class_panels.join_from_link()  # a class's join link (its QR): join, say so, drop the parameter
    class_panels.banner()  # the teacher brought this learner here (studio.class_panels.follow_teacher)
    # the class's question, above every page: a joined learner's pulse draws it there (class_status)
    st.session_state[_QUESTION_SLOT] = st.container() if class_panels.joined() else None
    st.session_state[_SEEN] = True
    failed = st.session_state.pop("_callback_error", None)
    if failed:
        show_error(t("error.callback", message=failed))


def sidebar(page: str = "") -> None:
    """The sidebar; `page`: the URL path of the page this run draws (its fragments read it later)."""
    st.session_state[class_panels.CURRENT_PAGE] = page
    class_panels.follow_teacher()  # after the teacher's push: their settings and page, before anything is drawn
    i18n.language_picker()
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
        question_slot = st.session_state.get(_QUESTION_SLOT)  # (made by `start` in this run)
        if question_slot is not None:
            # the queue line, the class and its question, every PULSE_S (FAST_PULSE_S while the class predicts)
            st.fragment(class_status, run_every=class_panels.pace())(question_slot)
        else:
            queue_status()


@st.fragment(run_every=3)
def queue_status() -> None:
    queue_line()


def class_status(question_slot) -> None:
    """A class member's sidebar (a fragment on the member's pace, `class_panels.pace`): the queue
    line and the class (a push lands within one pulse), and the class's question drawn above the
    page into `question_slot` (a container outside this fragment: an answer's press reruns this
    fragment only, and a question reaches every member at their next pulse with no page run)."""
    queue_line()
    class_panels.pulse()
    with question_slot:
        predictions.question_box()


def queue_line() -> None:
    # While this browser tab is open, on any page, its run counts as watched: the queue
    # cancels only runs whose tab has gone (no heartbeat for minutes).
    me, queue = owner(), job_queue()
    active = queue.active_for(me)
    if active is not None:
        queue.heartbeat(active, me)
    counts = queue.snapshot()
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
    """Switch the server to app.py and run again if app.py did not run before this page (see the
    module docstring). Nothing is drawn by such a run: Streamlit names a widget after the page that
    draws it, and a page run alone has another name than the same page under st.navigation, so every
    widget drawn here was a new one at the next run and the visitor's first click on it was lost
    (seen in Chromium: the "Upload" of page 3's picture panel took two clicks; a tab went back)."""
    if st.session_state.pop(_SEEN, False):
        return
    # Streamlit's AppTest runs every page alone (a new page manager each run): there the frame is
    # always drawn here, so that one run names the page's widgets as the next does.
    if not st.session_state.get(_SWITCHED) and not st_config.get_option("global.appTest"):  # (st.get_option: False there)
        st.session_state[_SWITCHED] = True
        st.navigation(pages())  # from now on the server runs app.py first, as designed
        st.rerun()
    start()  # a page run alone (AppTest; a Streamlit that did not switch): the frame is drawn here
    st.session_state.pop(_SEEN, None)
    st.navigation(pages())
    sidebar()
