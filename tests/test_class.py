"""The teacher's side of a class, through the app (AppTest): the class file's limits on the
pages, teacher mode, the teacher first in the queue, the admin view, settings links."""

from __future__ import annotations

import re
import threading
import time

import pytest

from studio import teacher
from studio.teacher import nickname
from tests.helpers.apptest import SECRET, app, ok, page, strings, unlock
from tests.helpers.fakes import fake_run, wait_for
from tlcore.core.events import Cancelled, Done
from tlcore.serve import class_limits
from tlcore.serve.guess_limiter import GuessLimiter
from tlcore.serve.jobs import JobQueue


@pytest.fixture
def class_file(tmp_path, monkeypatch):
    """Write a class.toml and make the server read it (class_limits.load is cached per process)."""

    def write(text: str):
        path = tmp_path / "class.toml"
        path.write_text(text, encoding="utf-8")
        monkeypatch.setenv("TLS_CLASS_CONFIG", str(path))
        return path

    monkeypatch.delenv("TLS_TEACHER_SECRET", raising=False)
    monkeypatch.setattr(teacher, "guard", GuessLimiter(free=teacher.TRIES, per_minute=teacher.SERVER_TRIES))
    yield write


def stoppable(gate: threading.Event):
    """A run that trains until `gate` opens or it is told to stop."""

    def run(config, emit, should_stop):
        while not gate.is_set():
            if should_stop():
                emit(Cancelled(0))
                return None
            time.sleep(0.01)
        emit(Done({}))
        return {}

    return run


def test_the_class_files_limits_shape_the_widgets_and_are_said(class_file):
    class_file("[limits]\nmax_seconds = 30\nmax_epochs = 4\nmax_image_size = 64\nmax_per_class = 15\n")
    at = page("pages/3_finetune.py", queue=JobQueue.started(fake_run), owner="student")
    ok(at)
    assert at.slider(key="w:epochs").max == 4 and at.slider(key="w:epochs").value <= 4
    assert max(at.select_slider(key="w:image_size").options, key=int) == "64"
    assert at.slider(key="w:per_class").max == 15
    said = " ".join(c.value for c in at.caption) + " ".join(w.value for w in at.warning)
    assert "This class stops runs after 30 s." in said
    at.switch_page("pages/6_class.py").run()
    ok(at)
    assert any("up to **30 s**" in m.value and "**4** epochs" in m.value for m in at.markdown)


@pytest.mark.fast
def test_a_broken_class_file_is_an_error_the_teacher_sees_at_start(class_file):
    class_file("[limits]\nmax_epocs = 4\n")
    with pytest.raises(ValueError, match="unknown limits max_epocs"):
        class_limits.load()


@pytest.mark.fast
def test_a_nickname_is_the_same_for_one_learner_different_between_learners_and_hides_the_id():
    assert nickname("secret-owner-a") != nickname("secret-owner-b")
    assert "secret" not in nickname("secret-owner-a") and nickname("x") == nickname("x")


def test_teacher_mode_unlocks_with_the_secret_only_and_shows_every_run_by_nickname(class_file):
    class_file(f'[teacher]\nsecret = "{SECRET}"\n')
    gate = threading.Event()
    queue = JobQueue.started(stoppable(gate))
    student = page("pages/3_finetune.py", queue=queue, owner="student-secret-id-1")
    student.button(key="start").click().run()
    ok(student)
    at = page("pages/6_class.py", queue=queue, owner="teacher-id")
    ok(at)
    unlock(at, "wrong")
    assert any("not the secret" in e.value for e in at.error)
    assert not any(b.key and b.key.startswith("cancel:") for b in at.button)  # nothing shown yet
    unlock(at, SECRET)
    ok(at)
    text = " ".join(m.value for m in at.markdown)
    assert nickname("student-secret-id-1") in text and "student-secret-id-1" not in text
    job = student.session_state["job:finetune"]
    at.button(key=f"cancel:{job}").click().run()
    queue.wait_until_ended(job, "student-secret-id-1", 10)
    assert queue.get(job, "student-secret-id-1").state == "cancelled"
    assert queue.get(job, "student-secret-id-1").note == "teacher"
    gate.set()


def test_the_teachers_list_has_cancel_for_the_runs_going_and_the_next_in_line_and_tables_the_rest(class_file):
    """A class of 30 waiting drew 30 rows of columns every 3 s (22% of the server's page time in a
    class experiment): the runs further back and the ended ones are one table each."""
    class_file(f'[teacher]\nsecret = "{SECRET}"\n')
    gate = threading.Event()
    queue = JobQueue.started(stoppable(gate))
    from tlcore.train.config import RunConfig

    jobs = [queue.submit(RunConfig(), f"learner-{i}") for i in range(10)]
    assert wait_for(lambda: queue.get(jobs[0], "learner-0").state == "running", timeout=10)
    assert queue.cancel_any(jobs[9]) and queue.cancel_any(jobs[8])  # two ended runs
    at = page("pages/6_class.py", queue=queue, owner="teacher-id")
    unlock(at, SECRET)
    ok(at)
    with_cancel = [b.key.split(":", 1)[1] for b in at.button if b.key and b.key.startswith("cancel:")]
    assert with_cancel == jobs[: 1 + teacher.NEXT_WITH_CANCEL]  # the run going and the next 5 in line
    tables = [m.value for m in at.markdown if m.value.startswith("| Who | State | Run | Time |")]
    further, ended = tables
    assert [nickname(f"learner-{i}") in further for i in range(10)] == [False] * 6 + [True] * 2 + [False] * 2
    assert "waiting (6)" in further and "waiting (7)" in further
    assert all(nickname(f"learner-{i}") in ended for i in (8, 9)) and ended.count("stopped · by the teacher") == 2
    assert any("2 more waiting further back" in c.value for c in at.caption)
    gate.set()


def test_wrong_secrets_are_rate_limited_whatever_cookie_they_come_with(class_file):
    """A script makes a new cookie (learner id) for every guess: the count is per address and
    per server, so the new cookies wait as the old one does."""
    class_file(f'[teacher]\nsecret = "{SECRET}"\n')
    queue = JobQueue.started(fake_run)
    for i in range(teacher.TRIES):
        at = page("pages/6_class.py", queue=queue, owner=f"guesser-cookie-{i}")
        unlock(at, f"nope-{i}")
        assert any("not the secret" in e.value for e in at.error)
    fresh = page("pages/6_class.py", queue=queue, owner="guesser-cookie-new")
    unlock(fresh, SECRET)  # even the right one waits now, from any cookie: it is not even compared
    waits = [int(m[1]) for e in fresh.error if (m := re.search(r"Too many wrong tries: wait (\d+) s", e.value))]
    assert waits and 45 <= waits[0] <= 60, [e.value for e in fresh.error]  # the minute since the first wrong try
    assert not any("Teacher mode:" in s.value for s in fresh.success)


def test_the_teacher_unlocks_with_the_logs_one_time_code_while_forged_addresses_guess(class_file, caplog, monkeypatch):
    """Scripts from ever new (forged) addresses spend the server's budget, so new addresses wait
    too; the one-time code in the server's log still unlocks, once, and a new one is logged."""
    import logging

    class_file(f'[teacher]\nsecret = "{SECRET}"\n')
    monkeypatch.setattr(teacher, "_one_time", {"code": ""})
    queue = JobQueue.started(fake_run)
    with caplog.at_level(logging.WARNING, logger="tlstudio.teacher"):
        for i in range(teacher.SERVER_TRIES + 5):  # one wrong guess from each of many addresses
            monkeypatch.setattr(teacher, "network_address", lambda i=i: f"203.0.113.{i}")
            at = page("pages/6_class.py", queue=queue, owner=f"script-{i}")
            unlock(at, f"guess-{i}")
        monkeypatch.setattr(teacher, "network_address", lambda: "198.51.100.7")  # the teacher's laptop
        at = page("pages/6_class.py", queue=queue, owner="the-teacher")
        unlock(at, SECRET)
        assert any("Too many wrong tries" in e.value and "one-time code" in e.value for e in at.error)
        logged = re.findall(r"one-time code ([A-Z0-9]{12})", caplog.text)
        assert logged, caplog.text
        unlock(at, logged[-1].lower())  # typed as it reads, in any case
        assert any("Teacher mode:" in s.value for s in at.success), [e.value for e in at.error]
        again = page("pages/6_class.py", queue=queue, owner="someone-else")
        unlock(again, logged[-1])  # used up
        assert not any("Teacher mode:" in s.value for s in again.success)
        assert len(set(re.findall(r"one-time code ([A-Z0-9]{12})", caplog.text))) == 2  # a new one logged after use


def test_teacher_mode_belongs_to_the_tab_that_unlocked_not_to_its_cookie(class_file, monkeypatch):
    """A copied cookie (the same learner id in another browser) gets no teacher mode; the tab
    leaves it with a button, and after grant_s() it is asked for the secret again."""
    class_file(f'[teacher]\nsecret = "{SECRET}"\n')
    queue = JobQueue.started(fake_run)
    at = page("pages/6_class.py", queue=queue, owner="teachers-cookie")
    unlock(at, SECRET)
    assert any("Teacher mode:" in s.value for s in at.success)
    assert teacher.is_teacher_id("teachers-cookie")
    copied = page("pages/6_class.py", queue=queue, owner="teachers-cookie")
    ok(copied)
    assert not any("Teacher mode:" in s.value for s in copied.success) and copied.text_input(key="teacher_secret")
    at.button(key="leave_teacher").click().run()
    ok(at)
    assert at.text_input(key="teacher_secret") and not teacher.is_teacher_id("teachers-cookie")
    now = [1000.0]
    monkeypatch.setattr(teacher, "clock", lambda: now[0])
    unlock(at, SECRET)
    assert any("Teacher mode:" in s.value for s in at.success)
    now[0] += teacher.grant_s() - 1
    at.run()
    assert any("Teacher mode:" in s.value for s in at.success)  # a second before grant_s(): still the teacher
    now[0] += 1
    at.run()
    assert at.text_input(key="teacher_secret") and not any("Teacher mode:" in s.value for s in at.success)


def test_a_teachers_edit_to_the_class_file_holds_from_the_next_read_without_a_restart(class_file):
    class_file("[limits]\nmax_epochs = 5\n")
    first = class_limits.load()
    assert first.max_epochs == 5 and class_limits.load() is first  # parsed once while the file stays as it is
    class_file("[limits]\nmax_epochs = 12\nmax_per_class = 40\n")  # the same file, edited
    assert (class_limits.load().max_epochs, class_limits.load().max_per_class) == (12, 40)


def test_a_weak_or_misplaced_secret_is_said_and_never_shown(class_file):
    class_file('[teacher]\nsecret = "short"\n')
    limits = class_limits.load()
    assert not limits.teacher_mode and limits.problems == ("secret_short",)
    at = page("pages/6_class.py", queue=JobQueue.started(fake_run), owner="anyone")
    ok(at)
    assert any("too short" in w.value and str(class_limits.MIN_SECRET_CHARS) in w.value for w in at.warning)
    assert not at.text_input  # no form to guess at
    class_file(f'[limits]\nmax_epochs = 5\nteacher_secret = "{SECRET}"\n')
    limits = class_limits.load()
    assert limits.teacher_mode and limits.problems == ("secret_misplaced",) and limits.max_epochs == 5
    assert SECRET not in repr(limits) and SECRET not in str(limits)
    at = page("pages/6_class.py", queue=JobQueue.started(fake_run), owner="anyone")
    assert any("belongs under `[teacher]`" in w.value for w in at.warning)


def test_a_cluster_that_cannot_be_used_is_said_to_the_teacher_and_to_a_learner_whose_run_trained_here(class_file):
    """A Ray queue (tlcore.serve.ray_jobs) whose cluster refused the server's token: the Class page
    says so and what to set; the learner's run, trained on the server instead, says it in a line."""
    from types import SimpleNamespace

    class NoCluster(JobQueue):  # what RayJobQueue does without a cluster, without Ray
        def cluster_status(self):
            return SimpleNamespace(state="unreachable", reason="auth", gpus=0, cpus=0)

        def _run_one(self, job, config, history):
            job.where = "local"
            super()._run_one(job, config, history)

    class_file(f'[teacher]\nsecret = "{SECRET}"\n')
    queue = NoCluster.started(fake_run)
    learner = page("pages/3_finetune.py", queue=queue, owner="learner-1")
    learner.button(key="start").click().run()
    job = learner.session_state["job:finetune"]
    assert wait_for(lambda: queue.get(job, "learner-1").state == "done")
    learner.run()
    ok(learner)
    assert any("trained on the class server itself" in c.value for c in learner.caption), [c.value for c in learner.caption]
    at = page("pages/6_class.py", queue=queue, owner="the-teacher")
    assert not any("Training cluster" in w.value for w in at.warning)  # for the teacher only
    unlock(at, SECRET)
    ok(at)
    said = [w.value for w in at.warning if "Training cluster (Ray)" in w.value]
    assert len(said) == 1 and "not reached" in said[0] and "RAY_AUTH_MODE=token" in said[0], said
    plain = page("pages/6_class.py", queue=JobQueue.started(fake_run), owner="the-teacher")
    unlock(plain, SECRET)
    assert not any("Training cluster" in x.value for x in [*plain.warning, *plain.success, *plain.info])


def test_without_a_secret_there_is_no_teacher_mode(class_file):
    class_file("[limits]\nmax_epochs = 10\n")
    at = page("pages/6_class.py", queue=JobQueue.started(fake_run), owner="anyone")
    ok(at)
    assert any("Teacher mode is off" in i.value for i in at.info)
    assert not at.text_input


def test_the_teachers_run_goes_first_in_the_line(class_file):
    class_file(f'[teacher]\nsecret = "{SECRET}"\n')
    gate = threading.Event()

    def gated(config, emit, should_stop):
        gate.wait(20)
        emit(Done({}))
        return {}

    queue = JobQueue.started(gated)
    for who in ("s1", "s2"):
        at = page("pages/3_finetune.py", queue=queue, owner=who)
        at.button(key="start").click().run()
    teacher = page("pages/6_class.py", queue=queue, owner="teacher")
    unlock(teacher, SECRET)
    teacher.switch_page("pages/3_finetune.py").run()
    teacher.button(key="start").click().run()
    ok(teacher)
    mine = teacher.session_state["job:finetune"]
    assert queue.get(mine, "teacher").position == 1  # ahead of s2, who waited first
    gate.set()


def test_a_teacher_who_started_before_unlocking_goes_first_and_is_listed_as_the_teacher(class_file):
    class_file(f'[teacher]\nsecret = "{SECRET}"\n')
    gate = threading.Event()
    queue = JobQueue.started(stoppable(gate))
    for who in ("s1", "s2"):
        page("pages/3_finetune.py", queue=queue, owner=who).button(key="start").click().run()
    teacher = page("pages/3_finetune.py", queue=queue, owner="late-teacher")
    teacher.button(key="start").click().run()  # Start first, unlock after
    mine = teacher.session_state["job:finetune"]
    assert queue.get(mine, "late-teacher").position == 2
    teacher.switch_page("pages/6_class.py").run()
    unlock(teacher, SECRET)
    ok(teacher)
    assert queue.get(mine, "late-teacher").position == 1  # ahead of s2 now
    names = [m.value for m in teacher.markdown if m.value.startswith("**")]
    assert names[:3] == [f"**{nickname('s1')}**", "**Teacher (you)**", f"**{nickname('s2')}**"]  # running, then the line
    assert not any("student-" in n and "teacher" in n for n in names)
    gate.set()


def test_a_settings_link_applies_the_valid_settings_and_names_the_rest(class_file):
    class_file("[limits]\nmax_epochs = 8\n")
    link = "strategy:full_llrd,epochs:7,lr:0.0003,layer_decay:0.5,image_size:999,dataset:folder,bogus:1,per_class:x"
    at = page("pages/3_finetune.py", queue=JobQueue.started(fake_run), owner="new-student", query={"settings": link})
    ok(at)
    s = at.session_state
    assert (s["strategy"], s["epochs"], s["lr"], s["layer_decay"]) == ("full_llrd", 7, 3e-4, 0.5)
    assert s["image_size"] != 999 and s["dataset"] != "folder"
    over = page("pages/3_finetune.py", queue=JobQueue.started(fake_run), owner="other", query={"settings": "epochs:9"})
    assert over.session_state["epochs"] != 9  # over the class's limit: left out


@pytest.mark.parametrize(
    "link, key",
    [
        ("epochs:inf", "epochs"),
        ("per_class:1e999", "per_class"),
        ("epochs:nan", "epochs"),
        ("epochs:2.5", "epochs"),
        ("layer_decay:0.01", "layer_decay"),
        ("layer_decay:0.33", "layer_decay"),
        ("lr:0.0002", "lr"),
        ("head_lr_mult:7", "head_lr_mult"),
        ("image_size:100", "image_size"),
        ("freeze_depth:40", "freeze_depth"),
        ("epochs:21", "epochs"),
        ("per_class:501", "per_class"),
        ("dataset:digits,per_class:141", "per_class"),  # digits has 140 a class: the link's own dataset decides
    ],
)
def test_a_link_value_no_widget_can_hold_is_named_and_left_out_and_every_page_still_works(class_file, link, key):
    class_file("")
    at = page("pages/3_finetune.py", queue=JobQueue.started(fake_run), owner=f"student-{key}", query={"settings": link})
    before = page("pages/3_finetune.py", queue=JobQueue.started(fake_run), owner="untouched").session_state[key]
    ok(at)
    assert at.session_state[key] == before  # the learner's own value stays
    label, value = strings("en")[teacher.LABELS[key]], link.rsplit(":", 1)[1]
    warning = frame_warning(link)
    assert f"{label} = {value}".replace(".", "\u200b\\.") in warning, warning
    for other in ("pages/2_strategy.py", "pages/3_finetune.py", "pages/4_compare.py"):
        at.switch_page(other).run()
        ok(at)


def test_a_link_value_a_widget_can_hold_is_applied(class_file):
    class_file("")
    at = page(
        "pages/2_strategy.py",
        queue=JobQueue.started(fake_run),
        owner="applied",
        query={"settings": "layer_decay:0.45,lr:1e-4,dataset:digits,per_class:140,freeze_depth:1,epochs:20"},
    )
    ok(at)
    s = at.session_state
    assert (s["layer_decay"], s["lr"], s["dataset"], s["per_class"], s["epochs"]) == (0.45, 1e-4, "digits", 140, 20)


@pytest.mark.parametrize(
    "evil",
    [
        "[click me](https://evil.example)",
        "https://evil.example",
        "WWW.evil.example",
        "a@evil.example",
        "`x`[y](http://e.x)",
        "**bold**_x_",
        "<a href=x>y</a>",
    ],
)
def test_an_unknown_key_in_a_link_is_named_as_plain_text_never_a_link(class_file, evil):
    class_file("")
    warning = frame_warning(f"{evil}:1,epochs:3")
    named = warning.split(": ", 1)[1]
    assert not re.search(r"\]\(|https?:|[<>@`*\[\]]", named), warning  # no markup
    # GFM finds "www." links in the text after escapes are undone (seen in Chromium: a zero-width
    # space after the dot still made a link): "www" must not touch its dot.
    assert not re.search(r"www\.", named.replace("\\", ""), re.IGNORECASE), warning
    key = evil.split(":")[0]  # (a link's pair is key:value, so the key ends at the first colon)
    assert max(re.findall(r"[a-z]+", key), key=len) in named  # still named, as text


def test_a_setting_a_slider_cannot_hold_is_moved_into_its_range_on_the_next_run(class_file):
    class_file("")
    """A value kept from before links were checked (layer_decay 0.01) broke page 2 on every reload."""
    at = app("pages/2_strategy.py", state={"layer_decay": 0.01, "epochs": 10**9})
    ok(at)
    assert (at.session_state["layer_decay"], at.session_state["epochs"]) == (0.3, 20)


def frame_warning(link: str) -> str:
    """The frame's 'left out from the link' line (drawn on the first run only, see test_app.app)."""
    at = app(query={"settings": link})
    ok(at)
    warnings = [w.value for w in at.warning if w.value.startswith("Left out from the link")]
    assert len(warnings) == 1, [w.value for w in at.warning]
    return warnings[0]


def test_the_teachers_link_is_built_from_the_teachers_settings(class_file):
    class_file(f'[teacher]\nsecret = "{SECRET}"\n')
    at = page("pages/2_strategy.py", queue=JobQueue.started(fake_run), owner="teacher2")
    at.button(key="cell:large:different").click().run()
    at.switch_page("pages/6_class.py").run()
    unlock(at, SECRET)
    ok(at)
    link = next(m.value for m in at.markdown if "settings=" in m.value).strip("`")
    assert "settings=" in link and "strategy%3Afull" in link and link.split("?")[0].endswith("/finetune")


def test_the_link_message_names_settings_as_their_widgets_do(class_file):
    class_file("")
    at = app(query={"settings": "epochs:5,image_size:999"})  # the frame draws its messages on the first run
    ok(at)
    assert any(s.value == "Settings from your teacher's link: Epochs." for s in at.success), [s.value for s in at.success]
    assert any("Image size (pixels)" in w.value for w in at.warning)


# --- one queue place per person (issue 22, item 4) ------------------------------------------


@pytest.fixture
def addresses(monkeypatch):
    """Each learner's client address, as `st.context.ip_address` would give it on a class server."""
    from studio.learner import owner

    where: dict[str, str | None] = {}
    monkeypatch.setattr(teacher, "network_address", lambda: where.get(owner()))
    return where


def test_the_teacher_sees_how_many_learners_hold_a_place_from_each_address(class_file, addresses):
    class_file(f'[teacher]\nsecret = "{SECRET}"\n')
    addresses.update({"cookie-1": "10.0.0.5", "cookie-2": "10.0.0.5", "cookie-3": "10.0.0.9"})
    gate = threading.Event()
    queue = JobQueue.started(stoppable(gate))
    for who in ("cookie-1", "cookie-2", "cookie-3", "cookie-4"):  # one person, two browsers; cookie-4: unknown
        student = page("pages/3_finetune.py", queue=queue, owner=who)
        student.button(key="start").click().run()
        ok(student)
    at = page("pages/6_class.py", queue=queue, owner="teacher-id")
    unlock(at, SECRET)
    ok(at)
    said = [c.value for c in at.caption]
    assert strings("en")["class.addresses"].format(places="`10.0.0.5`: 2 · `10.0.0.9`: 1 · this machine or unknown: 1") in said, (
        said
    )
    crowded = [w.value for w in at.warning]
    assert any(
        w.startswith("2 learners (browser cookies) at `10.0.0.5` each hold a place") and "one_run_per_address = true" in w
        for w in crowded
    ), crowded
    student = page("pages/6_class.py", queue=queue, owner="cookie-1")  # a learner sees no one's address
    assert not any("10.0.0" in c.value for c in [*student.caption, *student.warning, *student.markdown])
    gate.set()


def test_with_one_run_per_address_a_second_cookie_from_one_address_is_refused_in_words(class_file, addresses):
    class_file("[limits]\none_run_per_address = true\n")
    addresses.update({"cookie-1": "10.0.0.5", "cookie-2": "10.0.0.5", "cookie-3": "10.0.0.9"})
    gate = threading.Event()
    queue = JobQueue.started(stoppable(gate), limits=class_limits.load())  # as the server makes it (studio.state)
    first = page("pages/3_finetune.py", queue=queue, owner="cookie-1")
    first.button(key="start").click().run()
    second = page("pages/3_finetune.py", queue=queue, owner="cookie-2")
    second.button(key="start").click().run()
    ok(second)
    assert strings("en")["job.one_per_address"] in [w.value for w in second.warning]
    assert strings("ko")["job.one_per_address"] != strings("en")["job.one_per_address"]  # said in Korean too
    assert queue.active_for("cookie-2") is None and queue.active_for("cookie-1") is not None
    other = page("pages/3_finetune.py", queue=queue, owner="cookie-3")  # another address: its own place
    other.button(key="start").click().run()
    assert queue.active_for("cookie-3") is not None
    gate.set()


def test_the_shipped_class_example_loads_and_gives_each_address_one_place(class_file, monkeypatch):
    from pathlib import Path

    example = Path(__file__).resolve().parent.parent / "class.example.toml"
    class_file(example.read_text(encoding="utf-8"))
    limits = class_limits.load()
    assert limits.one_run_per_address and not limits.teacher_mode  # (its secret is left for the teacher to set)
