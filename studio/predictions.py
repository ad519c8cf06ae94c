"""Predict, run, reveal in the pages: the teacher asks in one click, every joined learner answers on
whatever page they are on, the projector counts and then reveals, the teacher opens a second vote,
and each learner gets an exit ticket from their own run.

The learner's box (`question_box`) is drawn above every page by the learner's own pulse, the one
timer fragment every joined learner runs (studio.page_frame.class_status), into a container the
frame made above the page: a question reaches a student at their next pulse with no page run, and
an answer's press reruns that fragment only (30 students answering at once were 30 page runs on
the training's cores). The pulse is quicker while the class predicts (studio.class_panels.pace).
Answers are buttons (one tap on a phone, Tab and Enter on a keyboard, a named button for a screen
reader): a button has no value that a timer's rerun could drop (streamlit#10805). The numbers and the rules
are the engine's (tlcore.serve.classroom.questions); this module words and draws them.
Not for: the experiment's own chart (studio.class_view), the projector's frame (studio.projector).
"""

from __future__ import annotations

import html

import plotly.graph_objects as go
import streamlit as st

from studio import class_view
from studio.feedback import announce, held_messages, replay_messages, say
from studio.i18n import as_text, relabelled, t, translated
from studio.learner import owner
from studio.plots import _layout, group_label
from studio.server import class_room, job_queue
from studio.state import DEFAULTS, callback, job_id
from tlcore.core import spreadsheet
from tlcore.serve import classroom
from tlcore.serve.classroom import Experiment, Personal, Question, QuestionRefused, Reveal

CONFIDENCE_KEYS = ("guess", "fair", "sure")  # confidence 1, 2, 3 (0: not said)
VOTE_COLORS = ("#2563eb", "#ea580c", "#7c3aed")


# ----------------------------------------------------------------------------- words


def question_text(q: Question, exp: Experiment | None) -> str:
    """The question in the page's language (the teacher's own text as they wrote it)."""
    if q.kind == "own":
        return q.text
    if q.kind == "claim":
        return t(f"class.bank.{q.text}.q")
    if q.kind in classroom.questions.DEMO_KINDS:
        return t(f"class.ask.{q.kind}.q")
    factor = class_view.factor_label(exp.factor).lower() if exp is not None else ""
    if q.kind == "accuracy" and exp is not None and q.level is not None:
        return t("class.ask.accuracy.q", level=class_view.level_label(exp.factor, exp.levels[q.level]))
    return t(f"class.ask.{q.kind}.q", factor=factor)


def choice_label(q: Question, choice: str, exp: Experiment | None) -> str:
    if q.kind == "own":
        return q.labels[int(choice)] if choice.isdigit() and int(choice) < len(q.labels) else choice
    if q.kind == "claim":
        return t(f"class.bank.{q.text}.{choice}")
    if q.kind == "winner" and exp is not None and choice.isdigit() and int(choice) < len(exp.levels):
        return class_view.level_label(exp.factor, exp.levels[int(choice)])
    if q.kind == "beyond_noise":
        return t(f"class.ask.{choice}")
    if q.kind == "race":
        return translated(f"strategy.{choice}", choice)
    return group_label(choice, t)  # a layer group's name


def shown(q: Question, text: str) -> str:
    """Text for markdown: the teacher's own question and choices as typed (studio.i18n.as_text),
    the app's own words (levels, strategies, sentences) as they are."""
    return as_text(text) if q.kind == "own" else text


def _experiment_of(q: Question, room: classroom.Classroom | None = None) -> Experiment | None:
    exp = (room or class_room()).latest()
    return exp if exp is not None and exp.id == q.experiment else exp if not q.experiment else None


def class_sentence(q: Question, out: Reveal, exp: Experiment | None) -> str:
    """What the class expected, what happened, and whether the difference is beyond the seed noise."""
    expected = choice_label(q, out.expected, exp) if out.expected is not None else t("class.reveal.nobody")
    last = out.counts[-1] if out.counts else {}
    share = round(100 * last.get(out.expected, 0) / max(1, sum(last.values()))) if out.expected else 0
    top = out.top
    if q.kind in ("winner", "beyond_noise") and top is not None and top.best is not None and exp is not None:
        best = class_view.level_label(exp.factor, exp.levels[top.best])
        if top.second is None:
            return t("class.reveal.one_level", expected=expected, share=share, best=best)
        second = class_view.level_label(exp.factor, exp.levels[top.second])
        noise = t(f"class.reveal.noise.{'unknown' if top.beyond is None else 'beyond' if top.beyond else 'within'}",
                  sd=f"{100 * top.noise:.1f}" if top.noise is not None else "?")  # fmt: skip
        return t("class.reveal.winner", expected=expected, share=share, best=best, gap=f"{100 * top.gap:.1f}",
                 second=second, noise=noise)  # fmt: skip
    if q.kind in classroom.questions.NUMBER_KINDS:
        if out.measured is None:
            return t("class.reveal.no_runs" if q.kind == "accuracy" else "class.reveal.no_demo")
        numbers = out.numbers[-1] if out.numbers else []
        mean = sum(numbers) / len(numbers) if numbers else None
        return t("class.reveal.accuracy" if q.kind == "accuracy" else "class.reveal.demo",
                 predicted=f"{mean:.0f}" if mean is not None else "–", measured=f"{out.measured:.1f}",
                 sd=f"{out.spread:.1f}" if out.spread is not None else "?")  # fmt: skip
    if out.right is None:
        return t("class.reveal.undecided", expected=expected, share=share)
    return t("class.reveal.answer", expected=expected, share=share, right=choice_label(q, out.right, exp))


def own_sentence(q: Question, out: Reveal, mine: Personal, exp: Experiment | None) -> str:
    """This learner's prediction against the result, in words."""
    if not mine.answered:
        return t("class.reveal.you_none")
    if q.kind in classroom.questions.NUMBER_KINDS:
        if mine.off_by is None:
            return t("class.reveal.you_number", number=f"{mine.number:.0f}")
        if q.kind == "demo":  # one run: no seed noise to compare with
            return t("class.reveal.you_demo", number=f"{mine.number:.0f}", measured=f"{out.measured:.1f}",
                     off=f"{abs(mine.off_by):.1f}")  # fmt: skip
        where = "within" if mine.within_noise else "outside"
        return t(f"class.reveal.you_accuracy.{where}", number=f"{mine.number:.0f}", measured=f"{out.measured:.1f}",
                 off=f"{abs(mine.off_by):.1f}", sd=f"{out.spread:.1f}" if out.spread is not None else "?")  # fmt: skip
    chosen = choice_label(q, mine.choice, exp)
    if q.kind == "winner" and mine.rank is not None and out.top is not None and exp is not None:
        best = class_view.level_label(exp.factor, exp.levels[out.top.best])
        if mine.rank == 1:
            return t("class.reveal.you_won", choice=chosen)
        noise = out.top.noise
        far = "far" if noise is not None and mine.behind > 2 * 100 * noise else "near" if noise is not None else "unknown"
        return t(f"class.reveal.you_lost.{far}", choice=chosen, rank=mine.rank, levels=len(out.top.order),
                 behind=f"{mine.behind:.1f}", best=best, sd=f"{100 * noise:.1f}" if noise is not None else "?")  # fmt: skip
    if mine.right is None:
        return t("class.reveal.you_said", choice=chosen)
    right = choice_label(q, out.right, exp)
    return t("class.reveal.you_right" if mine.right else "class.reveal.you_wrong", choice=chosen, right=right)


# ----------------------------------------------------------------------------- the learner


def question_box() -> None:
    """Above every page, for a joined learner (drawn by their pulse): the open question with its
    answers, the closed one with theirs, or the reveal; nothing while there is no question."""
    room, me = class_room(), owner()
    q = room.current_question()
    if q is None:  # (a learner who left never gets here: the pulse reruns the app first)
        st.empty()  # (the pulse writes here on every run: the place stays its own)
        return
    exp = _experiment_of(q)
    key = classroom.learner_key(me)
    with st.container(border=True, key="class-question"):
        st.markdown(f"**{t('class.ask.heading')}** {shown(q, question_text(q, exp))}")
        if q.revealed:
            out = classroom.reveal(q, exp)
            text = own_sentence(q, out, classroom.personal(q, out, key), exp)
            st.info(text, icon=":material/lightbulb:")
            announce(text, f"reveal:{q.id}:{q.vote}")
            return
        mine = q.current().get(key)
        if not q.open:
            st.caption(t("class.ask.closed") + (" " + t("class.ask.yours", answer=_answer_text(q, mine, exp)) if mine else ""))
            return
        if q.vote > 1:
            st.caption(t("class.ask.vote_again", vote=q.vote))
        announce(f"{t('class.ask.heading')} {question_text(q, exp)}", f"ask:{q.id}:{q.vote}")  # a screen reader hears it
        answer_buttons(q, exp, mine)
        replay_messages("class:answer")


def _answer_text(q: Question, mine, exp) -> str:
    return f"{mine.number:.0f}%" if mine.number is not None else choice_label(q, mine.choice, exp)


def answer_buttons(q: Question, exp: Experiment | None, mine) -> None:
    if q.kind in classroom.questions.NUMBER_KINDS:
        st.slider(t("class.ask.accuracy.slider"), 0, 100, key=f"ask_number:{q.id}",
                  value=int(mine.number) if mine and mine.number is not None else 50, format="%d%%")  # fmt: skip
        st.button(t("class.ask.send"), key=f"ask_send:{q.id}", type="primary", on_click=_answered, args=(q.id, None))
    else:
        columns = st.columns(min(len(q.choices), 4))
        for i, choice in enumerate(q.choices):
            chosen = mine is not None and mine.choice == choice
            columns[i % len(columns)].button(
                ("✓ " if chosen else "") + shown(q, choice_label(q, choice, exp)),
                key=f"ask:{q.id}:{choice}",
                type="primary" if chosen else "secondary",
                on_click=_answered,
                args=(q.id, choice),
                use_container_width=True,
            )
    if mine is not None:
        sure = st.columns(len(CONFIDENCE_KEYS) + 1)
        sure[0].caption(t("class.ask.how_sure"))
        for i, name in enumerate(CONFIDENCE_KEYS, start=1):
            sure[i].button(("✓ " if mine.confidence == i else "") + t(f"class.ask.sure.{name}"), key=f"sure:{q.id}:{i}",
                           on_click=_answered, args=(q.id, mine.choice or None, i))  # fmt: skip
        # kept in view while the answer stands (the pulse redraws the box every second or three: a
        # message said once would be gone before a student had read it); heard once per answer
        st.success(t("class.ask.counted"), icon=":material/check_circle:")
        st.caption(t("class.ask.yours", answer=_answer_text(q, mine, exp)))
        announce(t("class.ask.counted"), f"counted:{q.id}:{q.vote}:{mine.choice}:{mine.number}:{mine.confidence}")


@callback
def _answered(qid: str, choice: str | None, confidence: int | None = None) -> None:
    with held_messages("class:answer"):
        room, me = class_room(), owner()
        q = room.current_question()
        mine = q.current().get(classroom.learner_key(me)) if q is not None else None
        number = (
            st.session_state.get(f"ask_number:{qid}") if q is not None and q.kind in classroom.questions.NUMBER_KINDS else None
        )
        if number is None and mine is not None:
            number = mine.number
        conf = confidence if confidence is not None else (mine.confidence if mine is not None else 0)
        try:
            room.answer(me, qid, choice, number, conf)
        except QuestionRefused as refused:
            say("warning", t(f"class.ask.refused.{refused.reason}"))


def exit_ticket_box() -> None:
    """On the learner's Class page: their exit ticket, each answer checked at once with why."""
    room, me = class_room(), owner()
    ticket, answers = room.ticket(me)
    if not ticket:
        return
    st.subheader(t("class.ticket.heading"))
    for tq in ticket:
        params = {
            k: (f"{v:.1f}" if isinstance(v, float) else ", ".join(group_label(g, t) for g in v) if isinstance(v, list) else v)
            for k, v in tq.params.items()
        }
        st.markdown(t(f"class.ticket.{tq.id}.q", **params))
        given = answers.get(tq.id)
        if given is None:
            cols = st.columns(min(len(tq.choices), 4))
            for i, choice in enumerate(tq.choices):
                cols[i % len(cols)].button(_ticket_choice(tq.id, choice), key=f"ticket:{tq.id}:{choice}",
                                           on_click=_ticket_answered, args=(tq.id, choice))  # fmt: skip
        else:
            right = given == tq.right
            (st.success if right else st.warning)(
                t("class.ticket.right" if right else "class.ticket.wrong", answer=_ticket_choice(tq.id, tq.right))
                + " " + t(f"class.ticket.{tq.id}.why", **params)
            )  # fmt: skip
    replay_messages("class:ticket")


def _ticket_choice(qid: str, choice: str) -> str:
    return group_label(choice, t) if qid == "moved" else t(f"class.ticket.{qid}.{choice}")


@callback
def _ticket_answered(qid: str, choice: str) -> None:
    with held_messages("class:ticket"):
        try:
            class_room().answer_ticket(owner(), qid, choice)
        except QuestionRefused as refused:
            say("warning", t(f"class.ask.refused.{refused.reason}"))


# ----------------------------------------------------------------------------- the teacher


def teacher_panel() -> None:
    """Ask in one click (questions from the setup, the seeds' claims, your own), then close, reveal,
    vote again; exit tickets and their results."""
    room = class_room()
    st.subheader(t("class.ask.teacher_heading"))
    st.caption(t("class.ask.teacher_help"))
    exp = room.latest()
    cols = st.columns(4)
    for i, kind in enumerate(("winner", "accuracy", "beyond_noise", "groups")):
        cols[i].button(t(f"class.ask.{kind}.button"), key=f"ask_{kind}", on_click=_ask, args=(kind,),
                       disabled=exp is None, use_container_width=True)  # fmt: skip
    if exp is not None:
        levels = list(range(len(exp.levels)))
        st.selectbox(t("class.ask.accuracy.which"), levels, key=relabelled("ask_level", levels),
                     format_func=lambda i: class_view.level_label(exp.factor, exp.levels[i]))  # fmt: skip
    st.caption(t("class.ask.demo_help"))
    demo = st.columns(2)
    for i, kind in enumerate(classroom.questions.DEMO_KINDS):
        demo[i].button(t(f"class.ask.{kind}.button"), key=f"ask_{kind}", on_click=_ask, args=(kind,), use_container_width=True)
    claims = [c for c, spec in classroom.questions.BANK.items() if exp is None or exp.factor in spec["factors"]]
    if claims:
        bank, go_ = st.columns([3, 1], vertical_alignment="bottom")
        bank.selectbox(
            t("class.ask.bank"), claims, key=relabelled("ask_claim", claims), format_func=lambda c: t(f"class.bank.{c}.q")
        )
        go_.button(t("class.ask.ask"), key="ask_claim_go", on_click=_ask, args=("claim",))
    with st.expander(t("class.ask.own_heading")), st.form("ask_own", border=False):
        st.text_input(t("class.ask.own_text"), key="ask_own_text", max_chars=classroom.questions.MAX_TEXT)
        st.text_area(t("class.ask.own_choices"), key="ask_own_choices", help=t("class.ask.own_choices_help"))
        st.form_submit_button(t("class.ask.ask"), on_click=_ask, args=("own",))
    st.toggle(t("class.ask.wait"), value=room.wait_for_predictions, key="ask_wait", on_change=_wait_changed,
              help=t("class.ask.wait_help"))  # fmt: skip
    replay_messages("class:ask")
    if room.current_question() is not None:  # (asking reruns the page: the status then starts its timer)
        question_status()
    tickets_panel()


@callback
def _ask(kind: str) -> None:
    with held_messages("class:ask"):
        s = st.session_state
        what: dict = {}
        if kind == "accuracy":
            what["level"] = int(s.get("ask_level", 0) or 0)
        elif kind == "claim":
            what["text"] = s.get("ask_claim", "")
        elif kind in DEMO_SLOTS:  # the teacher's demo: the job in its slot now is not the one asked about
            what["text"] = job_id(DEMO_SLOTS[kind]) or ""
            if kind == "race":
                what["choices"] = list(s.get("race_strategies") or DEFAULTS["race_strategies"])
        elif kind == "own":
            what["text"] = s.get("ask_own_text", "")
            what["choices"] = [line for line in str(s.get("ask_own_choices", "")).splitlines() if line.strip()]
        try:
            q = class_room().ask(kind, **what)
        except QuestionRefused as refused:
            say("error", t(f"class.ask.refused.{refused.reason}", most=classroom.questions.MAX_CHOICES))
            return
        say("success", t("class.ask.asked", question=question_text(q, class_room().latest())))


@callback
def _wait_changed() -> None:
    class_room().set_wait_for_predictions(bool(st.session_state.get("ask_wait")))


@st.fragment(run_every=2.0)
def question_status() -> None:
    """The open question's count (nothing of the answers until the reveal) and its controls."""
    room = class_room()
    q = room.current_question()
    if q is None:
        return
    exp = _experiment_of(q)
    answered, joined = room.answered()
    state = "open" if q.open else "revealed" if q.revealed else "closed"
    st.markdown(t(f"class.ask.status.{state}", question=shown(q, question_text(q, exp)), answered=answered, joined=joined,
                  vote=q.vote))  # fmt: skip
    cols = st.columns(3)
    cols[0].button(t("class.ask.close"), key="ask_close", on_click=callback(room.close_question), args=(q.id,),
                   disabled=not q.open, icon=":material/lock:")  # fmt: skip
    cols[1].button(t("class.ask.reveal"), key="ask_reveal", on_click=_reveal, args=(q.id,),
                   disabled=q.revealed, icon=":material/visibility:", type="primary")  # fmt: skip
    cols[2].button(t("class.ask.again"), key="ask_again", on_click=_vote_again, args=(q.id,),
                   disabled=q.open or q.vote >= classroom.questions.MAX_VOTES, icon=":material/how_to_vote:")  # fmt: skip
    if q.revealed:
        revealed(q, exp, key="teacher")


DEMO_SLOTS = {"race": "race", "demo": "finetune"}  # where the teacher's demo runs (pages 4 and 3)


@callback
def _reveal(qid: str) -> None:
    room = class_room()
    q = room.current_question()
    if q is not None and q.id == qid and q.kind in DEMO_SLOTS:
        room.set_outcome(qid, demo_outcome(q))
    room.reveal_question(qid)


def demo_outcome(q: Question) -> dict[str, float]:
    """What the teacher's demo measured, from this tab's run that finished after the question was
    asked: each strategy's validation accuracy (a race), or the run's (a fine-tune). Empty: none yet."""
    job = job_id(DEMO_SLOTS[q.kind])
    if not job or job == q.text:
        return {}
    view = job_queue().get(job, owner(), heartbeat=False)
    if view is None or view.active:
        return {}
    done = [(config.strategy, snap.result.val_acc) for config, snap in zip(view.configs, view.runs, strict=False)
            if snap.result is not None]  # fmt: skip
    if q.kind == "race":
        return dict(done)
    return {"acc": done[-1][1]} if done else {}


@callback
def _vote_again(qid: str) -> None:
    with held_messages("class:ask"):
        try:
            class_room().vote_again(qid)
        except QuestionRefused as refused:
            say("warning", t(f"class.ask.refused.{refused.reason}"))


def revealed(q: Question, exp: Experiment | None, *, key: str, height: int = 380, big: bool = False) -> None:
    """The class's predictions beside the measured outcome, and the sentence saying what happened
    (big: the projector's type)."""
    out = classroom.reveal(q, exp)
    st.plotly_chart(reveal_figure(q, out, exp, height=height), key=f"reveal:{key}", config={"displayModeBar": False})
    sentence = class_sentence(q, out, exp)
    if big:
        st.html(f'<p class="projector-line">{html.escape(sentence)}</p>')
    else:
        st.markdown(shown(q, sentence))


def reveal_figure(q: Question, out: Reveal, exp: Experiment | None, *, height: int = 380) -> go.Figure:
    """Predicted choices as bars per vote (share of answers) beside the measured levels' mean ± SD
    (a second axis), or the predicted accuracies as a strip beside the level's measured seeds."""
    fig = go.Figure()
    if q.kind in classroom.questions.NUMBER_KINDS:
        for v, numbers in enumerate(out.numbers):
            fig.add_trace(go.Box(y=numbers, name=t("class.reveal.vote", vote=v + 1), boxpoints="all", jitter=0.4,
                                 marker_color=VOTE_COLORS[v % 3], line_color=VOTE_COLORS[v % 3]))  # fmt: skip
        seeds = [out.measured] if q.kind == "demo" and out.measured is not None else []
        if q.kind == "accuracy" and exp is not None and q.level is not None:
            seeds = [100 * c.result.acc for c in exp.cells if c.level == q.level and c.result is not None]
        if seeds:
            fig.add_trace(go.Box(y=seeds, name=t("class.reveal.measured"), boxpoints="all", jitter=0.4,
                                 marker_color="#0f172a", line_color="#0f172a"))  # fmt: skip
        fig.update_yaxes(range=[0, 100], ticksuffix="%")
        return _layout(fig, t("class.reveal.title"), "", t("class.view.acc"), height=height)
    labels = [choice_label(q, c, exp) + (" ✓" if c == out.right else "") for c in q.choices]
    for v, counts in enumerate(out.counts):
        total = max(1, sum(counts.values()))
        fig.add_trace(go.Bar(x=labels, y=[100 * counts.get(c, 0) / total for c in q.choices],
                             name=t("class.reveal.vote", vote=v + 1), marker_color=VOTE_COLORS[v % 3],
                             text=[counts.get(c, 0) for c in q.choices], textposition="outside"))  # fmt: skip
    measured = []  # (label, mean %, SD %): beside each choice, what the runs measured
    if q.kind == "winner" and exp is not None:
        stats = classroom.level_stats(exp)
        measured = [(labels[i], 100 * s.mean, 100 * (s.sd or 0)) for i, s in enumerate(stats) if s.mean is not None]
    elif q.kind == "race":
        measured = [(labels[i], 100 * q.outcome[c], 0.0) for i, c in enumerate(q.choices) if c in q.outcome]
    if measured:
        fig.add_trace(go.Scatter(x=[m[0] for m in measured], y=[m[1] for m in measured], yaxis="y2", mode="markers",
                                 name=t("class.reveal.measured"), marker=dict(symbol="line-ew", size=36, line=dict(width=4, color="#0f172a")),
                                 error_y=dict(type="data", array=[m[2] for m in measured], color="#0f172a")))  # fmt: skip
        fig.update_layout(yaxis2=dict(overlaying="y", side="right", range=[0, 110], dtick=20, ticksuffix="%",
                                      title=t("class.view.acc"), showgrid=False))  # fmt: skip
    fig.update_layout(barmode="group", yaxis=dict(range=[0, 110], dtick=20, ticksuffix="%"))
    return _layout(fig, t("class.reveal.title"), "", t("class.reveal.share"), height=height)


def tickets_panel() -> None:
    room = class_room()
    on = bool(room.tickets_for)
    st.button(t("class.ticket.close" if on else "class.ticket.open"), key="ticket_toggle",
              on_click=callback(room.open_tickets), args=(not on,), icon=":material/assignment:")  # fmt: skip
    if on:
        ticket_report()


@st.fragment(run_every=3.0)
def ticket_report() -> None:
    """The exit tickets' results, live while students answer: share right, the most common wrong answer."""
    report = class_room().ticket_report()
    if report:
        lines = []
        for qid, (answered, right, wrong) in report.items():
            common = _ticket_choice(qid, wrong) if wrong else "–"
            lines.append(t("class.ticket.report", question=t(f"class.ticket.{qid}.name"), right=right, answered=answered,
                           share=round(100 * right / max(1, answered)), wrong=common))  # fmt: skip
        st.markdown("\n".join(f"- {line}" for line in lines))


def answers_csv(room: classroom.Classroom | None = None) -> str:
    """Every answer of every vote by nickname (#n when names are hidden), formulas escaped."""
    room = room or class_room()
    rows = []
    for q in room.all_questions():
        exp = _experiment_of(q, room)
        for v, vote in enumerate(q.votes, start=1):
            for key, a in vote.items():
                rows.append({"question": question_text(q, exp), "kind": q.kind, "vote": v, "learner": room.shown_name(key),
                             "answer": _answer_text(q, a, exp), "confidence": a.confidence})  # fmt: skip
    return spreadsheet.to_csv(rows, ["question", "kind", "vote", "learner", "answer", "confidence"])


def html_summary() -> str:
    """The questions for the experiment's HTML export: each one, its votes' counts and the sentence."""
    room = class_room()
    parts = []
    for q in room.all_questions():
        exp = _experiment_of(q)
        out = classroom.reveal(q, exp)
        counts = "; ".join(
            f"{t('class.reveal.vote', vote=v + 1)}: " + ", ".join(f"{choice_label(q, c, exp)} {n}" for c, n in votes.items())
            for v, votes in enumerate(out.counts)
        )
        parts.append(f"<li><b>{html.escape(question_text(q, exp))}</b> {html.escape(counts)}"
                     f"<br>{html.escape(class_sentence(q, out, exp))}</li>")  # fmt: skip
    return f"<h2>{html.escape(t('class.ask.teacher_heading'))}</h2><ul>{''.join(parts)}</ul>" if parts else ""
