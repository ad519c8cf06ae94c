"""What the room sees: the class code and its QR large enough for the back row, a join link a
student's device can open, and the projector view (`/class?view=projector&key=...`): only the
class's shared state, large, no sidebar and no buttons, fitted to 1280x720 and 1920x1080.

Before an experiment the view shows the code, the QR and "Joined: N"; during and after it, the
question the class tests, the chart with "k of n runs", the fixed settings and the claim. It reads
the same class state as the teacher's page (tlcore.serve.classroom), redrawn every VIEW_S, so a
second window on the projector follows while the teacher's laptop keeps the controls. Its URL
carries the class's projector key (made when the class opens, kept when the code rotates): the
code alone does not open it. Not for: the teacher's controls (studio.class_panels).
"""

from __future__ import annotations

import base64
import html
import io
from urllib.parse import urlencode

import streamlit as st

from studio import class_view, predictions
from studio.hosts import public_root
from studio.i18n import current_lang, t
from studio.server import class_room, read_job

VIEW_S = 2.0  # the projector redraws this often
CHART_PX = class_view.PROJECTOR_PX  # the result chart's height on the projector: fits 720 px high with the question above it

# Streamlit's own `p { font-size: inherit }` is more specific than a class on a <p> inside markdown:
# the code is a <div> of its own (st.html), sized here.
CODE_CSS = """<style>
.class-code { font-size: clamp(3.2rem, 6vw, 6rem) !important; font-weight: 700; letter-spacing: 0.12em;
  line-height: 1.1; font-family: ui-monospace, 'DejaVu Sans Mono', monospace; margin: 0 0 0.25rem 0; color: #0f172a;
  white-space: nowrap; }
.class-qr img { width: min(100%, 360px, 46vh); height: auto; background: white; padding: 10px; }
</style>"""

PROJECTOR_CSS = """<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stHeader"],
[data-testid="stToolbar"], [data-testid="stDecoration"], [data-testid="stSidebarNav"], .tls-skip { display: none !important; }
[data-testid="stMainBlockContainer"], .block-container { padding: 1rem 2rem 0.5rem 2rem !important; max-width: 100% !important; }
.projector-question { font-size: clamp(1.4rem, 2.3vw, 2.6rem); font-weight: 700; line-height: 1.2; margin: 0; color: #0f172a; }
.projector-line { font-size: clamp(1.05rem, 1.4vw, 1.7rem); line-height: 1.35; margin: 0.2rem 0; color: #1e293b; }
.projector-small { font-size: clamp(0.95rem, 1.1vw, 1.35rem); line-height: 1.35; margin: 0.2rem 0; color: #334155; }
.projector-count { font-size: clamp(2rem, 4vw, 4.5rem); font-weight: 700; margin: 0.3rem 0; color: #0f172a; }
.st-key-projector .class-code { font-size: clamp(4rem, 10vw, 12rem) !important; }
.st-key-projector .class-qr img { width: min(100%, 64vh); }
</style>"""


def join_link(code: str) -> tuple[str, bool]:
    """The join link students open (and whether their devices can reach it: studio.hosts.public_root)."""
    root, reachable = public_root(getattr(st.context, "url", None) or "")
    return f"{root}/?join={code}", reachable


def projector_link(key: str) -> str:
    """The projector view's address on the teacher's own machine (a second window there)."""
    here = (getattr(st.context, "url", None) or "").split("?")[0]
    return f"{here or '/class'}?{urlencode({'view': 'projector', 'key': key, 'lang': current_lang()})}"


def qr_html(link: str) -> str:
    """The join link as a QR code (SVG, drawn here: no service reached), large enough for the back row."""
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(link, image_factory=qrcode.image.svg.SvgPathImage, box_size=20, border=2)
    buffer = io.BytesIO()
    image.save(buffer)
    data = base64.b64encode(buffer.getvalue()).decode()
    alt = html.escape(t("class.join.qr_alt", link=link), quote=True)
    return f'<div class="class-qr"><img src="data:image/svg+xml;base64,{data}" alt="{alt}"></div>'


def code_html(code: str) -> str:
    spaced = " ".join(code[i : i + 3] for i in range(0, len(code), 3))
    label = html.escape(f"{t('class.join.code')}: {' '.join(code)}", quote=True)
    return f'<div class="class-code" role="img" aria-label="{label}">{spaced}</div>'


def requested() -> bool:
    return st.query_params.get("view") == "projector"


def page() -> None:
    """The projector view, or one line saying why not (a stale or missing key)."""
    room = class_room()
    if room.code is None or not room.is_projector(str(st.query_params.get("key", ""))):
        st.warning(t("class.projector.bad_key"))
        return
    st.html(CODE_CSS + PROJECTOR_CSS)
    view()


@st.fragment(run_every=VIEW_S)
def view() -> None:
    room = class_room()
    room.collect(read_job)
    exp = room.latest()
    q = room.current_question()
    with st.container(key="projector"):
        if q is not None and (q.open or q.revealed):
            _question_screen(room, q)
        elif exp is None:
            _join_screen(room)
        else:
            _result_screen(room, exp)


def _question_screen(room, q) -> None:
    """While open: the question and "Answered: 23 of 28", nothing of the answers; revealed: the
    class's predictions (every vote) beside what was measured, and the sentence."""
    exp = room.latest() if q.experiment else None
    exp = exp if exp is not None and exp.id == q.experiment else None
    answered, joined = room.answered()
    head, corner = st.columns([4, 1.1], vertical_alignment="top")
    head.html(f'<p class="projector-question">{html.escape(predictions.question_text(q, exp))}</p>')
    corner.html(
        f'<p class="projector-small">{html.escape(t("class.projector.code_corner", code=room.code or "", joined=joined))}</p>'
    )
    if q.revealed:
        predictions.revealed(q, exp, key="projector", height=CHART_PX, big=True)
        return
    if q.kind != "accuracy":
        st.html(
            '<p class="projector-line">'
            + " · ".join(html.escape(predictions.choice_label(q, c, exp)) for c in q.choices)
            + "</p>"
        )
    state = "class.projector.answered" if q.open else "class.projector.closed"
    st.html(f'<p class="projector-count">{html.escape(t(state, answered=answered, joined=joined, vote=q.vote))}</p>')


def _join_screen(room) -> None:
    code = room.code or ""
    link, _reachable = join_link(code)
    joined, here = room.count()
    left, right = st.columns([1.25, 1], gap="large", vertical_alignment="center")
    with left:
        st.html(f'<p class="projector-question">{html.escape(t("class.projector.join_title"))}</p>')
        st.html(code_html(code))
        st.html(f'<p class="projector-line">{html.escape(t("class.projector.open", link=link))}</p>')
        st.html(f'<p class="projector-count">{html.escape(t("class.projector.joined", joined=joined, here=here))}</p>')
    with right:
        st.html(qr_html(link))


def _result_screen(room, exp) -> None:
    code = room.code or ""
    joined, _here = room.count()
    head, corner = st.columns([4, 1.1], vertical_alignment="top")
    head.html(f'<p class="projector-question">{html.escape(class_view.question(exp))}</p>')
    corner.html(f'<p class="projector-small">{html.escape(t("class.projector.code_corner", code=code, joined=joined))}</p>')
    chart, words = st.columns([2.3, 1], gap="medium")
    with chart:
        fig = class_view.result_chart(exp, height=CHART_PX)
        st.plotly_chart(fig, key="projector_result", config={"displayModeBar": False, "staticPlot": True})
    with words:
        st.html(
            f'<p class="projector-count">{html.escape(t("class.projector.runs", filled=exp.filled(), cells=len(exp.cells)))}</p>'
            f'<p class="projector-small">{html.escape(t("class.projector.rounds", rounds=exp.round, seeds=exp.seeds_per_round))}</p>'
            f'<p class="projector-line">{html.escape(class_view.summary(exp).replace("**", ""))}</p>'
            f'<p class="projector-small">{html.escape(class_view.claim(exp))}</p>'
            f'<p class="projector-small"><b>{html.escape(t("class.view.fixed_heading"))}</b> '
            f"{html.escape(class_view.fixed_text(exp))}</p>"
        )
