"""A session's uploads on the server: one private folder per browser session, one slot per kind
of upload ("images", "text", "camera"), bounded in bytes.

The folders themselves and their clean-up belong to the server (`studio.server.upload_folders`,
tlcore.serve.upload_folders); this module is what a page asks of them for its session. Not for:
reading an upload's content (tlcore.data.images, tlcore.data.image_zip).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import streamlit as st

from studio import server
from studio.i18n import t
from studio.learner import network_address, owner, session_id
from studio.state import callback
from tlcore.serve import class_limits
from tlcore.serve.upload_folders import UploadFolder


def upload_folder() -> UploadFolder:
    """This session's private folder for uploads (0700, random name): replaced uploads are
    deleted at once, the folder itself once the session has ended (see UploadFolders)."""
    server.server_started()
    folder = server.upload_folders.get(session_id() or owner(), owner(), network_address() or "")
    st.session_state["_uploads"] = folder  # for a look from tests; the process-level registry owns it
    return folder


def new_upload_slot(kind: str, digest: str, reuse: Callable[[Path, Path], None] | None = None) -> Path:
    """An empty folder for a new upload of `kind` ("images", "text", "camera") in the session's
    private folder, named by the upload's content. The previous upload of that kind is deleted
    (it was replaced), unless this learner's waiting or running run reads it: a queued run must
    train on the data it was started with. Then it goes when the session ends.

    reuse(new, previous): fills the new folder from the previous one before that is deleted
    (camera shots hard-link the pictures already written: a new shot writes one file)."""
    name = f"{kind}-{digest[:16]}"
    previous = st.session_state.get(f"_upload_slot:{kind}")
    if previous and previous != name and reuse is None:
        drop_upload_slot(kind)
    st.session_state[f"_upload_slot:{kind}"] = name
    folder = upload_folder().slot(name)
    if reuse is not None and previous and previous != name:
        try:
            reuse(folder, upload_folder().path / previous)
        finally:
            if not _read_by_a_run(upload_folder().path / previous):
                upload_folder().drop(previous)
    return folder


def check_upload_room(incoming: int) -> None:
    """Raise tlcore.data.image_zip.UploadError (saying what to do) when `incoming` more bytes would pass
    what this session's, this learner's, this address's or everyone's uploads may keep
    (tlcore.serve.class_limits: upload_mb_per_session, address_upload_mb, upload_mb_total); 0: is what
    the session holds now over it (a zip may understate its size)."""
    limits = class_limits.load()
    upload_folder()  # this session's folder, known to the registry
    server.upload_folders.check_room(
        session_id() or owner(),
        incoming,
        session_mb=limits.upload_mb_per_session,
        total_mb=limits.upload_mb_total,
        address_mb=limits.address_upload_mb,
    )


def drop_upload_slot(kind: str) -> None:
    """Delete the last upload of `kind` (refused, or replaced), unless a run of this learner's reads it."""
    name = st.session_state.pop(f"_upload_slot:{kind}", None)
    if name and not _read_by_a_run(upload_folder().path / name):
        upload_folder().drop(name)


def _read_by_a_run(folder: Path) -> bool:
    q = server.job_queue()
    job = q.active_for(owner())
    view = q.get(job, owner(), heartbeat=False) if job else None
    return view is not None and any(c.data_root and Path(c.data_root).is_relative_to(folder) for c in view.configs)


# An upload outlives the runs that do not draw its uploader. Streamlit forgets a file uploader's
# file whenever a run does not draw it (another page, a tab or fold not drawn while a run trains),
# and the browser shows it empty again; the learner's data, already checked and kept in its slot,
# stays theirs until they replace it, remove it, or the session ends.


def kept_uploader(widget: str, kind: str, *state: str) -> dict:
    """Keyword arguments for the file uploader `widget` of upload `kind`, whose checked upload the
    page keeps in the session values `state`: taking the file out (its x) forgets the upload."""
    return {"key": widget, "on_change": _uploader_changed, "args": (widget, kind, state)}


def kept_note(kind: str, name: str, *state: str) -> None:
    """Said under an empty uploader while the page goes on with the learner's last upload `name`,
    with a button that removes it."""
    st.caption(t("upload.kept", name=name))
    st.button(
        t("upload.forget"),
        key=f"upload_forget:{kind}",
        type="tertiary",
        icon=":material/delete:",
        on_click=forget_upload,
        args=(kind, state),
    )


@callback
def _uploader_changed(widget: str, kind: str, state: tuple[str, ...]) -> None:
    if st.session_state.get(widget) is None:  # the learner took the file out
        forget_upload(kind, state)


def forget_upload(kind: str, state: tuple[str, ...]) -> None:
    """The learner's upload of `kind` is gone: its session values and its files (unless a run reads them)."""
    for key in state:
        st.session_state.pop(key, None)
    drop_upload_slot(kind)
