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
from studio.learner import network_address, owner, session_id
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
