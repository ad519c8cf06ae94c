"""The class: join by code and run one's cell of the class experiment; for the teacher, the code and
its QR, who joined, push and pause, the experiment and its projected result, every run with Cancel."""

from __future__ import annotations

import streamlit as st

from studio import class_panels, projector, teacher
from studio.feedback import replay_messages
from studio.i18n import duration, t
from studio.page_frame import ensure_frame
from studio.teacher import class_runs
from tlcore.serve import class_limits

ensure_frame()
if projector.requested():  # the room's window: only the class's shared state, no controls
    projector.page()
    st.stop()
st.title(t("class.title"), anchor=False)  # no link icon: one Tab stop less before a learner's Start
limits = teacher.limits()
if limits.teacher_mode and teacher.is_teacher():  # the code and its QR first: the projector's first screen
    class_panels.teacher_header()
st.markdown(
    t(
        "class.limits",
        seconds=duration(limits.max_seconds),
        epochs=limits.max_epochs,
        per_class=limits.max_per_class,
        size=limits.max_image_size,
        length=limits.max_text_length,
    )
)

for problem in limits.problems:  # a secret too short (teacher mode off) or in the wrong table
    st.warning(t(f"class.secret.{problem}", chars=class_limits.MIN_SECRET_CHARS))
if not limits.teacher_mode:
    teacher.store_notice()  # finished runs not being saved: what happened and what to do
    st.info(t("class.no_teacher_mode"))
elif not teacher.is_teacher():
    class_panels.learner_panel()
    # a student has no use for the secret: it waits behind a "Teacher" fold (open at once where no class is open)
    with st.expander(t("class.teacher_fold"), expanded=class_panels.class_room().code is None), st.form("unlock"):
        st.text_input(t("class.secret"), type="password", key="teacher_secret")
        # acted on in its callback: a plain `if st.form_submit_button(...)` lost clicks in Chromium here
        st.form_submit_button(t("class.unlock"), on_click=teacher.unlock_clicked)
    replay_messages("unlock")
if limits.teacher_mode and teacher.is_teacher():
    st.success(t("class.unlocked", hours=f"{teacher.grant_s() / 3600:g}"))
    st.button(t("class.leave"), key="leave_teacher", on_click=teacher.leave)
    teacher.store_notice()
    teacher.cluster_line()
    class_panels.teacher_controls()
    st.subheader(t("class.jobs"))
    class_runs()
    st.subheader(t("class.share"))
    st.caption(t("class.share_help"))
    here = (getattr(st.context, "url", None) or "").split("?")[0]
    link = teacher.settings_link((here.rsplit("/", 1)[0] if here else "") + "/finetune")
    st.markdown(f"`{link}`")  # wraps in the column (a code block's scrolling box took no keyboard focus: WCAG 2.1.1)
