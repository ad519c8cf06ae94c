"""The class in the pages: join by code, follow the teacher, run one's cell of the class experiment,
and the teacher's controls (code and QR, push, pause, the experiment; who joined and the seats: studio.class_roster).

Streamlit cannot push to a session: every joined learner's sidebar runs `pulse` in its timer
fragment (PULSE_S, studio.page_frame.class_status) that reads the server's class (tlcore.serve.classroom, one lock, microseconds)
and, when the teacher pushed a newer version, reruns the app once so that `follow_teacher` applies
the settings and switches the page. A learner who has not joined runs no such fragment and sees
no difference (docs/class-experiment.md: what it costs per session).
Not for: the projected view's figures and export (studio.class_view).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import streamlit as st

from studio import class_view, predictions, projector, teacher
from studio.bound_widgets import bound
from studio.class_roster import VIEW_S, joined_count, seat_controls
from studio.feedback import announce, held_messages, replay_messages, say
from studio.i18n import as_text, current_lang, duration, t
from studio.job_panel import is_running, job_panel, paused_for_me, submit
from studio.learner import network_address, owner
from studio.plots import ChartText
from studio.results import chart_text, table_html
from studio.server import class_room, class_timer_s, hold_class_jobs, job_queue, read_job
from studio.state import DEFAULTS, callback, job_id
from tlcore.core.messages import LearnerError
from tlcore.serve import classroom
from tlcore.serve.classroom import Assignment, Experiment, JoinRefused
from tlcore.train import presets
from tlcore.train.config import RunConfig

PULSE_S = (
    3.0  # a joined learner's page reads the class this often (the queue line's pace): a push lands within PULSE_S + a page run
)
FAST_PULSE_S = 1.0  # ... and this often while the class predicts (`pace`): nothing trains then, and a question lands within it
SLOT = "class"  # the queue tag and the session's job slot of one's cell
PAGES = Path(__file__).resolve().parent.parent / "pages"
_FOLLOWED, _PENDING, _BANNER, _PAUSED = "_class_followed", "_class_pending", "_class_banner", "_class_paused_seen"
_PART = "_class_part_seen"  # (experiment, cell) the page was last drawn with
_GREY_START = "_class_start_grey"  # the page drew one's part's Start grey (paused, or the class predicts first)


# --- joining ------------------------------------------------------------------------------
CURRENT_PAGE = "_current_page"  # the URL path of the page the last full run drew ("class", "finetune", ...)


def join_from_link() -> None:
    """The join link (`?join=CODE`, from the QR): one scan joins (with a given name), then the join
    box offers the learner their own nickname; the parameter leaves the address."""
    code = st.query_params.get("join")
    if not code:
        return
    del st.query_params["join"]
    if _join(str(code), ""):
        st.session_state[_FROM_LINK] = True


_FROM_LINK = "_class_from_link"
_JUST_JOINED = "_class_just_joined"


def _join(code: str, nickname: str) -> bool:
    room = class_room()
    try:
        member = room.join(code, owner(), nickname, network_address(), lang=current_lang())
    except JoinRefused as refused:
        say("error", t(f"class.join.{refused.reason}", wait=duration(max(1.0, refused.wait_s)), size=room.size))
        return False
    st.session_state[_FOLLOWED] = room.view().push.version  # what was pushed before one joined is not followed
    say("success", t("class.join.ok", name=as_text(member.nickname), number=member.number))
    return True


def join_box(where: str) -> None:
    """Code and nickname fields with Join, while a class is open and this learner is not in it."""
    room = class_room()
    if room.code is not None and st.session_state.get(_FROM_LINK) and room.is_member(owner()):
        replay_messages(f"join:{where}")
        name_offer(where)  # joined by the QR: a name of their own, here
        return
    if room.code is None or room.is_member(owner()):
        if st.session_state.pop(_JUST_JOINED, None) == where:  # where the keyboard's focus goes after Join
            with st.container(key=f"joined-{where}"):
                replay_messages(f"join:{where}")
                st.page_link(str(PAGES / "6_class.py"), label=t("class.join.go_class"), icon=":material/groups:")
            return
        replay_messages(f"join:{where}")
        return
    with st.container(border=True, key=f"join-box-{where}"):
        st.markdown(f"**{t('class.join.title')}**")
        # one form: Tab goes code -> nickname -> Join (no help icon between), Enter joins, focus stays here
        with st.form(f"join-form-{where}", border=False, enter_to_submit=True):
            code_col, name_col, go_col = st.columns([1, 1.2, 0.8], vertical_alignment="bottom")
            code_col.text_input(t("class.join.code"), key=f"join_code:{where}", max_chars=12, placeholder="ABC123")
            name_col.text_input(t("class.join.nick"), key=f"join_nick:{where}", max_chars=classroom.NICKNAME_MAX,
                                placeholder=t("class.join.nick_placeholder"))  # fmt: skip
            go_col.form_submit_button(t("class.join.button"), type="primary", on_click=_join_clicked, args=(where,),
                                      key=f"join:{where}")  # fmt: skip
        st.caption(t("class.join.nick_help"))
    replay_messages(f"join:{where}")


@callback
def _join_clicked(where: str) -> None:
    with held_messages(f"join:{where}"):
        if _join(st.session_state.get(f"join_code:{where}", ""), st.session_state.get(f"join_nick:{where}", "")):
            st.session_state[_JUST_JOINED] = where


def name_offer(where: str) -> None:
    """After joining by the QR (no nickname asked): "your name in class" with Save, once."""
    with st.form(f"name-offer-{where}", border=True, enter_to_submit=True):
        st.markdown(t("class.join.from_link"))
        col, go = st.columns([2, 1], vertical_alignment="bottom")
        col.text_input(t("class.join.nick"), key=f"offer_nick:{where}", max_chars=classroom.NICKNAME_MAX,
                       placeholder=t("class.join.nick_placeholder"))  # fmt: skip
        go.form_submit_button(t("class.rename_button"), on_click=_name_offered, args=(where,), key=f"offer:{where}")


@callback
def _name_offered(where: str) -> None:
    st.session_state.pop(_FROM_LINK, None)
    with held_messages(f"join:{where}"):
        name = class_room().rename(owner(), st.session_state.get(f"offer_nick:{where}", ""))
        if name:
            say("success", t("class.renamed", name=as_text(name)))


# --- following the teacher ----------------------------------------------------------------


def joined() -> bool:
    """Is this learner in the teacher's class (their sidebar then polls every PULSE_S, with `pulse`)?"""
    return class_room().is_member(owner())


def pace() -> float:
    """How often a joined learner's pulse runs: FAST_PULSE_S while the class predicts (a question
    open, or an experiment whose parts have not started: the teacher is about to ask), else PULSE_S;
    while the class trains (an experiment with parts to fill) beside programs that keep a core busy,
    slower (studio.server.class_timer_s). Before an experiment nothing is stretched: the class waits
    for the teacher, whose start or question lands within PULSE_S (a pulse stretched then let the
    question reach the students 8.5 s after it was asked, session 41).
    Read when the page is drawn (a fragment's timer is set then): a change of pace waits for the
    learner's next page run and never causes one (30 pages at once would be the very stall it saves)."""
    room = class_room()
    if room.predicting():
        return FAST_PULSE_S
    exp = room.latest()
    return class_timer_s(PULSE_S) if exp is not None and exp.running else PULSE_S


def pulse() -> None:
    """In the sidebar's timer fragment (studio.page_frame.class_status), for a learner in the class:
    the class line, the pause, one's part; a newer push reruns the app once to follow it. One
    fragment for the queue line and the class: a second timer per learner cost a 2-core server
    the CPU its runs needed (30 learners: 45 fragment runs a second)."""
    room, me = class_room(), owner()
    member = room.seen(me)
    if member is None:  # left the class (another tab, or the teacher's class was reset)
        st.rerun()
    view = room.view()
    st.markdown(t("class.side.member", code=view.code or "—", name=as_text(member.nickname)))
    paused = view.paused and not teacher.is_teacher()
    if paused:
        st.warning(t("class.side.paused"), icon=":material/pause_circle:")
    if st.session_state.get(_PAUSED, paused) != paused:  # Start buttons drawn before the change: redraw them
        st.session_state[_PAUSED] = paused
        st.rerun()
    st.session_state[_PAUSED] = paused
    mine = room.assignment(me) if view.experiment is not None and view.experiment.running else None
    if mine is not None:
        st.caption(t("class.side.cell", what=cell_words(mine)))
        if st.session_state.get(CURRENT_PAGE) != "class":  # (on the Class page the part is right there)
            st.page_link(str(PAGES / "6_class.py"), label=t("class.side.open"), icon=":material/science:")
        room.collect(read_job, only=me)
    # (experiment, cell, finished): the page redraws when an experiment starts or stops, one's part
    # moves, or one's run is in (its dot then shows); not for every classmate's run (the projector has those)
    part = ((mine.experiment, mine.cell, mine.result is not None) if mine is not None else None, room.tickets_for)
    # (the question needs no page run: the pulse draws it above the page, studio.page_frame.class_status)
    if st.session_state.get(_GREY_START) and part_blocked() is None:  # the answers closed: the grey Start opens
        st.session_state[_GREY_START] = False
        st.rerun()
    if st.session_state.get(_PART, part) != part:  # an experiment started or stopped, or one's part moved: redraw the page
        st.session_state[_PART] = part
        st.rerun()
    st.session_state[_PART] = part
    followed = st.session_state.get(_FOLLOWED)
    if followed is None:
        st.session_state[_FOLLOWED] = view.push.version
    elif view.push.version > followed and not teacher.is_teacher():
        st.session_state[_PENDING] = view.push.version
        st.rerun()  # the whole app, once: follow_teacher switches the page before it is drawn


def follow_teacher() -> None:
    """After a push: the teacher's settings applied (where valid), then their page. Runs in the
    frame before any page is drawn; a running job is not touched, the learner's runs are kept."""
    if st.session_state.pop(_PENDING, None) is None:
        return
    push = class_room().view().push
    st.session_state[_FOLLOWED] = push.version
    applied = teacher.apply_settings(push.settings.get("settings", ""))[0] if push.settings else []
    st.session_state[_BANNER] = (push.page, applied)
    target = PAGES / f"{push.page}.py"
    if push.page and target.exists():
        st.switch_page(str(target), query_params={"lang": st.session_state.get("lang", "en")})


def banner() -> None:
    """Once, on the page the teacher brought this learner to."""
    shown = st.session_state.pop(_BANNER, None)
    if shown is None:
        return
    page, applied = shown
    text = t("class.followed", page=page_title(page)) if page else t("class.followed_settings")
    if applied:
        text += " " + t("link.applied", names=teacher.link_names(applied))
    st.info(text, icon=":material/campaign:")


def page_title(stem: str) -> str:
    key = f"nav.{stem.split('_', 1)[-1]}" if stem[:1].isdigit() else f"nav.{stem}"
    title = t(key)
    return title if title != key else t(f"nav.{stem}")


def start_blocked() -> str | None:
    """Why this learner's Start is off now (the teacher paused the class), or None."""
    return t("class.paused_start") if paused_for_me() else None


def part_blocked() -> str | None:
    """Why this learner's part may not start now: paused, or the class predicts first."""
    if teacher.is_teacher():
        return None
    if class_room().predictions_block_start():
        return t("class.ask.wait_start")
    return start_blocked()


# --- one's cell -----------------------------------------------------------------------------


def cell_words(a: Assignment) -> str:
    return t(
        "class.exp.cell", factor=class_view.factor_label(a.factor), level=class_view.level_label(a.factor, a.level), seed=a.seed
    )


def learner_panel() -> None:
    """The Class page for a learner: join, or one's class, one's cell with its Start, the class's result."""
    room, me = class_room(), owner()
    if room.seen(me) is None:
        if room.code is None:
            st.info(t("class.join.no_class"))
        join_box("class")
        return
    member = room.member(me)
    st.markdown(t("class.you_are", name=as_text(member.nickname), number=member.number, code=room.code or "—"))
    exp = room.latest()
    if exp is None or not exp.running:
        st.info(t("class.exp.none_yet"))
    else:
        my_cell()  # the part first: its Start within a few Tabs of the page's top
    with st.expander(t("class.rename"), expanded=False):
        st.text_input(t("class.join.nick"), key="class_rename", max_chars=classroom.NICKNAME_MAX)
        st.button(t("class.rename_button"), key="class_rename_go", on_click=_rename)
        replay_messages("class:rename")
        st.button(t("class.leave_class"), key="class_leave", on_click=_leave)
    predictions.exit_ticket_box()
    if exp is not None:
        projected(mine=True)


@callback
def _rename() -> None:
    with held_messages("class:rename"):
        name = class_room().rename(owner(), st.session_state.get("class_rename", ""))
        if name:
            say("success", t("class.renamed", name=as_text(name)))
        else:
            say("warning", t("class.rename_refused", most=classroom.MAX_RENAMES))


@callback
def _leave() -> None:
    class_room().leave(owner())


def my_cell() -> None:
    room, me = class_room(), owner()
    a = room.assignment(me)
    if a is None:
        st.info(t("class.exp.no_cell"))
        return
    exp = room.latest()
    key = classroom.learner_key(me)
    done = [i for i, c in enumerate(exp.cells) if c.learner == key and c.done and i != a.cell] if exp else []
    if done and a.result is None:  # a part finished, and a next one (fewer learners than parts)
        text = t("class.exp.your_dot", acc=f"{100 * exp.cells[done[-1]].result.acc:.1f}")
        st.success(text + " " + t("class.exp.next_part"))
        announce(text.replace("**", ""), f"class-dot:{a.experiment}:{done[-1]}")
    st.markdown(t("class.exp.you_run", what=cell_words(a)))
    if exp is not None:
        st.markdown(t("class.exp.question_line", question=class_view.question(exp)))
    st.caption(t("class.exp.seed_is") + " " + t("class.exp.uses_assignment"))
    if a.result is not None:
        text = t("class.exp.your_dot", acc=f"{100 * a.result.acc:.1f}") + (" " + t("class.exp.reused") if a.result.reused else "")
        st.success(text)
        announce(text.replace("**", ""), f"class-dot:{a.experiment}:{a.cell}")  # the page may never show the run's end
    elif a.job is not None and (is_running(SLOT) or job_id(SLOT) == a.job):
        job_panel(SLOT)
    else:
        ended = exp.cells[a.cell].failed if exp is not None and exp.id == a.experiment else ""
        if ended:  # their run ended without a result: why, before Start
            st.warning(t(f"class.exp.ended.{ENDED.get(ended, 'failed')}"), icon=":material/restart_alt:")
        blocked = part_blocked()
        st.session_state[_GREY_START] = blocked is not None  # (the pulse opens it when that ends)
        if blocked:  # the reason where the grey Start is, before it
            st.warning(blocked, icon=":material/pause_circle:")
        st.button(t("class.exp.start"), key="class_start", type="primary", icon=":material/play_arrow:",
                  disabled=blocked is not None, on_click=_start_cell, help=blocked)  # fmt: skip
        replay_messages(f"start:{SLOT}")


# Why a part's run ended without a result (Cell.failed, from the queue's state) -> what the learner reads
ENDED = {"interrupted": "restart", "gone": "restart", "cancelled": "stopped", "failed": "failed"}


@callback
def _start_cell() -> None:
    with held_messages(f"start:{SLOT}"):
        room, me = class_room(), owner()
        a = room.assignment(me)
        if a is None:
            say("warning", t("class.exp.no_cell"))
            return
        blocked = part_blocked()
        if blocked:  # (a click that raced the teacher's question or pause)
            say("warning", blocked)
            return
        if room.reuse(me) is not None:  # the very same run finished already: its result, no training
            say("success", t("class.exp.reused"))
            return
        if submit(SLOT, [a.config], [class_view.level_label(a.factor, a.level)]) and not room.started(
            me, a.experiment, a.cell, job_id(SLOT)
        ):
            job_queue().cancel(job_id(SLOT), me)  # the cell went to someone else meanwhile
            say("warning", t("class.exp.moved"))


# --- the projected view -------------------------------------------------------------------


def projected(*, mine: bool = False) -> None:
    """The class's one result: on the teacher's page redrawn every VIEW_S while the experiment runs
    (and collecting every finished run); on a learner's page drawn with the page (their sidebar's
    pulse redraws it when their own run is in). Thirty learners' pages redrawing two charts every
    2 s kept a 2-core server too busy to train (measured: 1 of 30 cells filled in 190 s)."""
    exp = class_room().latest()
    live = exp is not None and exp.running and not mine

    @st.fragment(run_every=VIEW_S if live else None)
    def view() -> None:
        room = class_room()
        if not mine:
            room.collect(read_job)
        exp = room.latest()
        if exp is None:
            return
        if not mine and exp.running != live:
            st.rerun()  # once: start or stop redrawing
        if mine and exp.running:
            st.button(t("class.view.refresh"), key="class_view_refresh", icon=":material/refresh:")  # reruns this view only
        me = _my_cell_index(exp) if mine else None
        reference = teacher_reference(exp) if teacher.is_teacher() else None
        st.plotly_chart(class_view.result_chart(exp, mine=me, teacher_run=reference), key="class_result",
                        config={"displaylogo": False})  # fmt: skip
        st.markdown(class_view.summary(exp))
        st.caption(class_view.claim(exp))
        st.caption(t("class.view.same_examples" if exp.same_examples else "class.view.new_examples"))
        grads = class_view.grad_chart(exp)
        if grads is not None:
            st.plotly_chart(grads, key="class_grads", config={"displaylogo": False})
            chart_text(ChartText(class_view.grad_summary(exp), class_view.grad_columns(exp)))
        with st.expander(t("class.view.table"), expanded=False):
            st.html(table_html(class_view.table(exp, room.shown_name), t("class.view.table")))

    view()


def _my_cell_index(exp: Experiment) -> int | None:
    key = classroom.learner_key(owner())
    return next((i for i, c in enumerate(exp.cells) if c.learner == key and c.done), None)


def teacher_reference(exp: Experiment) -> tuple[int, float] | None:
    """(level, accuracy) of the teacher's own latest Fine-tune run when it is one of the levels with
    the experiment's other settings (seed aside)."""
    job = job_id("finetune")
    view = job_queue().get(job, owner(), heartbeat=False) if job else None
    if view is None or view.state != "done" or not view.runs or not view.runs[-1].evals:
        return None
    ran = view.configs[-1]
    base = RunConfig.from_dict(exp.base)
    for i, level in enumerate(exp.levels):
        want = classroom.cell_config(base, exp.factor, level, ran.seed)
        if classroom.same_run(ran, want):
            return i, float(view.runs[-1].evals[-1].val_acc)
    return None


# --- the teacher ----------------------------------------------------------------------------


def teacher_header() -> None:
    """The code and its QR, large, at the top of the teacher's page; who joined; the projector view."""
    room = class_room()
    code = room.open()
    if room.file_problem:  # the class file could not be read: moved aside, a fresh class (runs kept)
        st.warning(t("class.file_problem", problem=room.file_problem), icon=":material/report:")
    st.subheader(t("class.join.heading"))
    link, reachable = projector.join_link(code)
    st.html(projector.CODE_CSS)  # the code's and the QR's size (styles, not text: never inside markdown)
    left, right = st.columns([1.3, 1], gap="large")
    with left:
        st.html(projector.code_html(code))
        st.markdown(t("class.join.how", link=link))
        if not reachable:
            st.warning(t("class.join.loopback", link=link), icon=":material/wifi_off:")
        joined_count()
        st.link_button(t("class.projector.open_button"), projector.projector_link(room.projector_key),
                       icon=":material/tv:", type="primary")  # fmt: skip
        st.caption(t("class.projector.help"))
    with right:
        st.html(projector.qr_html(link))


def teacher_controls() -> None:
    """Seats, leading, the experiment and its result, under the teacher's unlock line."""
    room = class_room()
    with st.expander(t("class.seats.heading"), expanded=False):
        seat_controls()
    lead_controls()
    experiment_controls()
    predictions.teacher_panel()
    if room.latest() is not None:
        projected()
        export_buttons()


_PUSH_PAGE = "class_push_page"  # the page the teacher will bring everyone to: a setting (see _FACTOR below)
LEAD_PAGES = ("1_pretraining", "2_strategy", "3_finetune", "4_compare", "5_text", "6_class")


def lead_controls() -> None:
    room = class_room()
    st.subheader(t("class.lead.heading"))
    pages = [p for p in LEAD_PAGES if (PAGES / f"{p}.py").exists()]
    page_col, push_col = st.columns([2, 1.2], vertical_alignment="bottom")
    if st.session_state.get(_PUSH_PAGE) not in pages:
        st.session_state[_PUSH_PAGE] = pages[0]
    page_col.selectbox(t("class.lead.page"), pages, format_func=page_title, **bound(_PUSH_PAGE))
    push_col.button(t("class.lead.push"), key="class_push", on_click=_push, icon=":material/campaign:")
    replay_messages("class:push")
    if room.paused:
        st.warning(t("class.lead.paused_now"), icon=":material/pause_circle:")
        st.button(t("class.lead.resume"), key="class_resume", on_click=_pause, args=(False,), icon=":material/play_circle:")
    else:
        st.button(t("class.lead.pause"), key="class_pause", on_click=_pause, args=(True,), icon=":material/pause_circle:")


@callback
def _push() -> None:
    with held_messages("class:push"):
        page = st.session_state.get(_PUSH_PAGE) or "3_finetune"
        version = class_room().push(page, {"settings": teacher.current_settings()})
        joined, here = class_room().count()
        say("success", t("class.lead.pushed", page=page_title(page), here=here, version=version))


@callback
def _pause(paused: bool) -> None:
    room = class_room()
    room.set_paused(paused)
    hold_class_jobs(job_queue(), room)


def experiment_base() -> RunConfig:
    """The teacher's current image settings on offline data (a class runs samples every machine has)."""
    s = st.session_state
    preset = presets.image()
    values = {k: s.get(k, DEFAULTS[k]) for k in teacher.LINK_KEYS}
    if s.get("data_source", "offline") != "offline":
        values["dataset"] = preset.dataset
    return RunConfig(**values, val_per_class=presets.VAL_PER_CLASS)


def experiment_controls() -> None:
    room = class_room()
    st.subheader(t("class.exp.heading"))
    exp = room.latest()
    if exp is not None and exp.running:
        st.markdown(t("class.exp.running", factor=class_view.factor_label(exp.factor), levels=len(exp.levels),
                      seeds=len(exp.seeds), cells=len(exp.cells)))  # fmt: skip
        st.caption(t("class.exp.fixed_values", settings=class_view.fixed_text(exp)))
        stop_col, rerun_col = st.columns(2)
        stop_col.button(
            t("class.exp.stop"), key="class_exp_stop", on_click=callback(room.stop_experiment), icon=":material/stop_circle:"
        )
        rerun_col.button(t("class.exp.rerun", seeds=exp.seeds_per_round), key="class_exp_rerun", on_click=_rerun,
                         icon=":material/add_circle:", help=t("class.exp.rerun_help"))  # fmt: skip
        replay_messages("class:exp")
        return
    if exp is not None:  # stopped: more seeds for it, or (below) a new design
        st.button(t("class.exp.rerun", seeds=exp.seeds_per_round), key="class_exp_rerun", on_click=_rerun,
                  icon=":material/add_circle:", help=t("class.exp.rerun_help"))  # fmt: skip
        st.markdown(f"**{t('class.exp.new_heading')}**")
    try:
        base = experiment_base()
    except (ValueError, LearnerError) as error:
        st.warning(t("class.exp.bad_base", error=str(error)))
        return
    factor, levels_setting, options = design_settings(base)
    st.selectbox(t("class.exp.factor"), list(classroom.FACTORS), format_func=class_view.factor_label, **bound(_FACTOR))
    st.multiselect(t("class.exp.levels"), options, format_func=lambda lv: class_view.level_label(factor, lv),
                   **bound(levels_setting))  # fmt: skip
    st.number_input(t("class.exp.seeds"), min_value=1, max_value=classroom.MAX_SEEDS, step=1, help=t("class.exp.seeds_help"),
                    **bound(_SEEDS))  # fmt: skip
    st.checkbox(t("class.exp.same_examples"), help=t("class.exp.same_examples_help"), **bound(_SAME))
    fixed = class_view.fixed_of(base.to_dict(), factor, options[0] if options else None)
    st.caption(t("class.exp.fixed_values", settings=" · ".join(f"{label}: {value}" for _k, label, value in fixed)))
    st.button(
        t("class.exp.start_exp"), key="class_exp_start", type="primary", on_click=_start_experiment, icon=":material/science:"
    )
    replay_messages("class:exp")


# The experiment's design is the teacher's setting, its widgets a view (studio.bound_widgets): a
# widget's own value was dropped by a timer fragment's re-run or a page change, and Start then
# read no levels while the page still showed three ("could not start: choose at least one level").
_FACTOR, _SEEDS, _SAME = "class_factor", "class_seeds", "class_same_examples"


def _levels(factor: str) -> str:
    return f"class_levels:{factor}"


def design_settings(base: RunConfig) -> tuple[str, str, list]:
    """The factor, the key of its levels and the levels offered, each setting given its first value
    (levels: the factor's first ones; those no longer offered, as after a change of backbone, left out)."""
    s = st.session_state
    s.setdefault(_FACTOR, "strategy")
    s.setdefault(_SEEDS, 5)
    s.setdefault(_SAME, True)
    factor = s[_FACTOR] = s[_FACTOR] if s[_FACTOR] in classroom.FACTORS else "strategy"
    options = list(classroom.FACTORS[factor].options(base))
    s[_levels(factor)] = chosen_levels(factor, base, options)
    return factor, _levels(factor), options


def chosen_levels(factor: str, base: RunConfig, options: list | None = None) -> list:
    """The levels the teacher has for `factor`: those set, else the factor's first ones; only those
    still offered. Start reads them here, not from what the page's last run left: a teacher
    who picks a factor and presses Start before the page has redrawn (seconds on a busy server) got
    "could not start: choose at least one level" (seen in Chromium, session 28)."""
    spec = classroom.FACTORS[factor]
    options = list(spec.options(base)) if options is None else options  # (the backbones': a look at the disk each)
    return [lv for lv in st.session_state.get(_levels(factor), spec.first(base)) if lv in options]


@callback
def _start_experiment() -> None:
    with held_messages("class:exp"):
        s = st.session_state
        factor = s.get(_FACTOR, "strategy")
        try:
            base = experiment_base()
            exp = class_room().start_experiment(
                factor,
                chosen_levels(factor, base) if factor in classroom.FACTORS else [],
                int(s.get(_SEEDS, 5)),
                base,
                same_examples=bool(s.get(_SAME, True)),
            )
        except (ValueError, LearnerError) as error:
            say("error", t("class.exp.refused", error=str(error)))
            return
        logging.getLogger(__name__).info("class experiment %s started at %s", exp.id, time.strftime("%H:%M:%S"))
        say("success", t("class.exp.started", cells=len(exp.cells), here=class_room().count()[1]))


@callback
def _rerun() -> None:
    with held_messages("class:exp"):
        exp = class_room().add_round()
        if exp is None:
            say("warning", t("class.exp.no_more_rounds", most=classroom.MAX_ROUNDS))
            return
        say("success", t("class.exp.round_added", round=exp.round, seeds=exp.seeds_per_round,
                         cells=sum(1 for c in exp.cells if c.round == exp.round)))  # fmt: skip


def export_buttons() -> None:
    room = class_room()
    exp = room.latest()
    if exp is None:
        return
    # The two CSVs are made with the page (milliseconds; the same text keeps the same file id): a deferred
    # file's id changes with every page run, and a click landing while the page redraws (a class's
    # teacher page redraws often) found the old id gone, "Failed to generate file for download" (CI,
    # session 40). The HTML holds plotly's script (megabytes) and stays made on the click.
    csv_col, html_col = st.columns(2)
    csv_col.download_button(
        t("class.export.csv"),
        data=class_view.to_csv(class_view.rows(exp, room.shown_name)),
        file_name=f"class-{exp.id}.csv",
        mime="text/csv",
        key="class_csv",
        icon=":material/table:",
        on_click="ignore",
    )
    st.download_button(
        t("class.export.answers"),
        data=predictions.answers_csv(room),
        file_name=f"class-{exp.id}-answers.csv",
        mime="text/csv",
        key="class_answers_csv",
        icon=":material/how_to_vote:",
        on_click="ignore",
    )
    html_col.download_button(
        t("class.export.html"),
        data=lambda: class_view.to_html(
            class_room().latest() or exp, teacher_reference(exp), class_room().shown_name, predictions.html_summary()
        ),
        file_name=f"class-{exp.id}.html",
        mime="text/html",
        key="class_html",
        icon=":material/bar_chart:",
        on_click="ignore",
    )
