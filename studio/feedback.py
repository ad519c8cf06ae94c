"""What a page says in words: st.error / warning / info, or held by a callback and said in place;
and what a screen reader is told (the frame's two live regions, studio.page_frame.PAGE_JS).

A callback's own elements land at the top of the page, far from the button clicked: inside
`held_messages(where)` what `say` is asked to say is kept, and `replay_messages(where)` draws
it where the page wants it. Not for: a callback's failure (studio.state.callback says it).
"""

from __future__ import annotations

import contextlib
import json

import streamlit as st

_HELD = "_held_messages"

# The page's live regions are the frame's (studio.page_frame.PAGE_JS): made once, outside Streamlit's
# redraws, so a screen reader hears each new sentence. Each sentence is said once (its key: the
# job and what happened), however often the script draws it again.
ANNOUNCE = """<script>
(() => {
  const said = window.__tlsSaid || (window.__tlsSaid = new Set());
  if (said.has(KEY)) return;
  said.add(KEY);
  const region = document.getElementById(REGION);
  if (!region) return;
  region.textContent = '';
  setTimeout(() => { region.textContent = TEXT; }, 120);  // emptied first: the same words again are read again
})();
</script>"""


def announce(text: str, key: str, *, assertive: bool = False) -> None:
    """Say `text` once to a screen reader: politely (progress, the end of a run) or, for an
    error, at once (WCAG 4.1.3: status messages)."""
    script = ANNOUNCE.replace("KEY", json.dumps(key)).replace("TEXT", json.dumps(text))
    st.html(script.replace("REGION", json.dumps("tls-alert" if assertive else "tls-live")), unsafe_allow_javascript=True)


def error(text: str, key: str | None = None) -> None:
    """st.error, and the same words said at once to a screen reader (the assertive region):
    a refusal or a failure is heard, not only seen. `key`: say it once per key (default: once
    per text for as long as the page is open)."""
    st.error(text)
    announce(text, key or f"error:{text}", assertive=True)


def _draw(kind: str, text: str) -> None:
    if kind == "error":
        error(text)
    else:
        getattr(st, kind)(text)


def say(kind: str, text: str) -> None:
    """st.error / st.warning / st.info, or, inside `held_messages`, kept to be said later
    (a callback's own elements land at the top of the page, far from the button clicked)."""
    held = st.session_state.get(_HELD)
    if held is not None:
        held.append((kind, text))
    else:
        _draw(kind, text)


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
        _draw(kind, text)
