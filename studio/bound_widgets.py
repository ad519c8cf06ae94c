"""A learner's settings and the widgets that show them: the setting is the truth, the widget a view.

Every setting (`epochs`, `strategy`, `text_lr`, ...) is an ordinary session value under its own
key, given its first value and saved for the learner by `studio.state.keep_settings`. Its widget
has a key of its own (`w:epochs`): `bound("epochs")` fills the widget from the setting before it
is drawn, on every run, and the widget's on_change copies a learner's edit back.

Why not let the widget own the key (Streamlit's usual way)? Streamlit deletes a widget's value
whenever a run does not draw it: another page, and also a fragment's timer re-run (the sidebar's
queue counter, the live panel's poll), after which the next page change brought the default back
(streamlit/streamlit#10805; seen in Chromium: Epochs 3 -> 9, a 4 s pause, page 2 and back: 3).
A widget value may be dropped now; the setting it shows is not, so a widget is always drawn
from what the learner, a matrix cell or a teacher's link last set.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from studio.choices import CHOICES, _valid
from studio.state import callback

PREFIX = "w:"


def widget_key(setting: str) -> str:
    """The key of the widget that shows `setting` (tests find widgets by it)."""
    return PREFIX + setting


def bound(setting: str, on_change: Callable[..., None] | None = None, args: tuple = ()) -> dict:
    """Keyword arguments for the widget that shows and edits `setting`; `on_change(*args)`
    runs after a learner's edit has been copied into the setting."""
    st.session_state[widget_key(setting)] = st.session_state[setting]
    return {"key": widget_key(setting), "on_change": _edited, "args": (setting, on_change, tuple(args))}


@callback
def _edited(setting: str, then: Callable[..., None] | None, args: tuple) -> None:
    value = st.session_state.get(widget_key(setting))
    options = CHOICES.get(setting)
    # A select widget can send a label of the language just left (it matches no option): the
    # setting keeps its value then (see studio.state.settle).
    if value is None or (options is not None and not _valid(value, list(options()))):
        return
    st.session_state[setting] = value
    if then is not None:
        then(*args)


def current(setting: str):
    """The setting as its widget shows it now. In a button's callback, an edit sent with the same
    click may not have been copied into the setting yet (callbacks run in no promised order)."""
    return st.session_state.get(widget_key(setting), st.session_state.get(setting))
