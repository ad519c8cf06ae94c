"""The teacher's seats in the Class page: the joined count, the roster (who joined, here now or not,
their part and their run's state), remove, give a part to someone, admit a late student to a locked
class; a new code, hidden names, the lock.

Not for: the class's state (tlcore.serve.classroom), the other teacher controls (studio.class_panels).
"""

from __future__ import annotations

import time

import streamlit as st

from studio import class_view
from studio.feedback import held_messages, replay_messages, say
from studio.i18n import as_text, relabelled, t
from studio.results import table_html
from studio.server import class_room, class_timer_s
from studio.state import callback
from tlcore.serve.classroom import Experiment, RosterRow

VIEW_S = 2.0  # the count and the roster redraw this often, and so does the projected view (studio.class_panels)


def seat_controls() -> None:
    """New code, hide names, lock the class; who waits at a locked class."""
    room = class_room()
    st.button(t("class.join.rotate"), key="class_rotate", on_click=callback(room.rotate), icon=":material/autorenew:")
    st.toggle(t("class.hide_names"), value=room.hide_names, key="class_hide", on_change=_hide_changed,
              help=t("class.hide_names_help"))  # fmt: skip
    st.toggle(t("class.lock"), value=room.locked, key="class_lock", on_change=_lock_changed, help=t("class.lock_help"))


@callback
def _lock_changed() -> None:
    class_room().set_locked(bool(st.session_state.get("class_lock")))


def joined_count() -> None:
    """The count and the roster, redrawn every VIEW_S (class_timer_s)."""
    st.fragment(_count_and_roster, run_every=class_timer_s(VIEW_S))()


def _count_and_roster() -> None:
    """The count, and the roster: who joined, here now or not, their part and their run's state."""
    room = class_room()
    joined, here = room.count()
    if (st.session_state.get("_class_had_members", joined > 0)) != (joined > 0):  # the first joined: the runs list starts polling
        st.session_state["_class_had_members"] = joined > 0
        st.rerun()
    st.session_state["_class_had_members"] = joined > 0
    st.markdown(t("class.joined", joined=joined, here=here, size=room.size))
    rows = room.roster()
    if not rows:
        return
    with st.expander(t("class.roster.heading", n=joined), expanded=False):
        st.html(table_html(roster_table(rows, room.hide_names), t("class.roster.heading", n=joined)))
        waiting = [r for r in rows if r.state == "waiting"]
        for r in waiting:
            st.button(t("class.roster.admit", name=as_text(r.nickname)), key=f"admit:{r.key}", on_click=callback(room.admit),
                      args=(r.key,), icon=":material/how_to_reg:")  # fmt: skip
        members = {r.key: r for r in rows if r.state != "waiting"}
        if members:
            pick, go = st.columns([2, 1], vertical_alignment="bottom")
            chosen = pick.selectbox(t("class.roster.remove_who"), list(members), key="class_remove_who",
                                    format_func=lambda k: f"#{members[k].number} {members[k].nickname}")  # fmt: skip
            go.button(t("class.roster.remove"), key="class_remove", on_click=_remove, args=(chosen,),
                      icon=":material/person_remove:")  # fmt: skip
            exp = room.latest()
            open_parts = [i for i, c in enumerate(exp.cells) if not c.done] if exp is not None and exp.running else []
            if open_parts:
                part, give = st.columns([2, 1], vertical_alignment="bottom")
                index = part.selectbox(t("class.roster.give_which"), open_parts, key=relabelled("class_give_part", open_parts),
                                       format_func=lambda i: _part_words(exp, i))  # fmt: skip
                give.button(t("class.roster.give", name=as_text(members[chosen].nickname)), key="class_give", on_click=_give,
                            args=(index, chosen), icon=":material/swap_horiz:")  # fmt: skip
            replay_messages("class:roster")


def roster_table(rows: list[RosterRow], hide: bool) -> dict[str, list]:
    """The roster as table columns (a screen reader reads it cell by cell)."""
    out: dict[str, list] = {}
    exp = class_room().latest()
    for r in rows:
        part = ""
        if r.part is not None and exp is not None:
            level, seed, rnd = r.part
            part = t("class.roster.part", level=class_view.level_label(exp.factor, level), seed=seed, round=rnd)
        values = {
            "who": f"#{r.number}" if hide or r.state == "waiting" and not r.number else f"#{r.number} {r.nickname}",
            "joined": time.strftime("%H:%M", time.localtime(r.joined)) if r.joined else "–",
            "here": t("class.roster.yes") if r.here else t("class.roster.no"),
            "part_col": part or "–",
            "state": t(f"class.cellstate.{r.state}"),
        }
        if r.state == "waiting":
            values["who"] = r.nickname
        for key, value in values.items():
            out.setdefault(t(f"class.roster.{key}"), []).append(value)
    return out


def _part_words(exp: Experiment, i: int) -> str:
    """A part as the teacher picks it (stable across the roster's redraws: who holds it is in the table)."""
    cell = exp.cells[i]
    level = class_view.level_label(exp.factor, exp.levels[cell.level])
    return t("class.roster.part", level=level, seed=cell.seed, round=cell.round)


@callback
def _give(index: int, key: str) -> None:
    with held_messages("class:roster"):
        room = class_room()
        if room.reassign(index, key):
            say("success", t("class.roster.given", name=as_text(room.shown_name(key, hide=False))))


@callback
def _remove(key: str) -> None:
    with held_messages("class:roster"):
        room = class_room()
        name = room.shown_name(key, hide=False)
        if room.remove(key):
            say("success", t("class.roster.removed", name=as_text(name)))


@callback
def _hide_changed() -> None:
    class_room().set_hide_names(bool(st.session_state.get("class_hide")))
