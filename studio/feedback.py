"""What a page says in words: st.error / warning / info, or held by a callback and said in place.

A callback's own elements land at the top of the page, far from the button clicked: inside
`held_messages(where)` what `say` is asked to say is kept, and `replay_messages(where)` draws
it where the page wants it. Not for: a callback's failure (studio.state.callback says it).
"""

from __future__ import annotations

import contextlib

import streamlit as st

_HELD = "_held_messages"


def say(kind: str, text: str) -> None:
    """st.error / st.warning / st.info, or, inside `held_messages`, kept to be said later
    (a callback's own elements land at the top of the page, far from the button clicked)."""
    held = st.session_state.get(_HELD)
    if held is not None:
        held.append((kind, text))
    else:
        getattr(st, kind)(text)


@contextlib.contextmanager
def held_messages(where: str):
    """Keep what `say` is asked to say until `replay_messages(where)` draws it in place."""
    st.session_state[_HELD] = []
    try:
        yield
    finally:
        st.session_state[f"_said:{where}"] = st.session_state.pop(_HELD, [])


def replay_messages(where: str) -> None:
    for kind, text in st.session_state.pop(f"_said:{where}", []):
        getattr(st, kind)(text)
