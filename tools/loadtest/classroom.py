"""One class, start to end: the server, the teacher's file, the students pressing Start, the
watch until every run ends, and the figures (report.Report)."""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tools.loadtest.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    STUDENT_IDLE,
    Visitor,
    at_normal_priority,
    idle_chromium,
    read_status,
    wait_interactive,
)
from tools.loadtest.report import Report
from tools.loadtest.sampler import Sampler, loadavg
from tools.loadtest.server import free_port, read_server_jobs, start_server, stop_server, wait_healthy
from tools.loadtest.students import Student, WsClass
from tools.pace import within

VIEWPORT = {"width": 1280, "height": 720}


def class_toml(folder: Path, *, max_seconds: float | None, workers: int, threads: int, secret: str) -> Path:
    """The teacher's file (TLS_CLASS_CONFIG): the job cap (if any), the server's plan, teacher mode."""
    toml = folder / "class.toml"
    toml.write_text(
        "[limits]\n"
        + (f"max_seconds = {max_seconds}\n" if max_seconds else "")
        + (f"cpu_workers = {workers}\n" if workers else "")
        + (f"threads_per_job = {threads}\n" if threads else "")
        + (f'[teacher]\nsecret = "{secret}"\n' if secret else "")
    )
    return toml


def cpu_plan(workers: int, threads: int) -> str:
    """What the server decides on this machine (tlcore.serve.cores), as one line of the report."""
    from tlcore.serve import cores

    plan = cores.plan(workers=workers, threads=threads)
    return (
        f"server: {plan.cores} cores, {plan.workers} runs at a time, {plan.threads} threads each when all "
        f"are busy, a lone run on {plan.threads_now(1)}"
    )


def open_page(browser, url: str, path: str):
    """A fresh context (its own cookie, its own Streamlit session) on one of the app's pages."""
    page = browser.new_context(viewport=VIEWPORT, locale="en-US").new_page()
    page.goto(f"{url}/{path}?lang=en", timeout=120_000)
    return page


def unlock_teacher(browser, url: str, teacher_id: str, secret: str):
    """The teacher unlocks teacher mode on the Class page, then goes to page 3: their page."""
    ctx = browser.new_context(viewport=VIEWPORT, locale="en-US")
    ctx.add_cookies([{"name": "tls_learner", "value": teacher_id, "url": url}])
    page = ctx.new_page()
    page.goto(f"{url}/class?lang=en", timeout=120_000)
    unlocked = page.get_by_text("Teacher mode: your runs go first")
    for _ in range(5):  # typing while the page's first runs redraw the form can be lost: retry
        page.get_by_label("Teacher's secret").fill(secret, timeout=120_000)
        page.get_by_role("button", name="Unlock teacher mode").click()
        try:
            unlocked.wait_for(timeout=15_000)
            break
        except Exception:  # noqa: BLE001 -- playwright's TimeoutError
            page.wait_for_timeout(1000)
    unlocked.wait_for(timeout=5_000)
    # Teacher mode belongs to this tab's session (studio.teacher): go by the page's own
    # navigation, as a teacher does; loading the address anew would start a new session.
    page.locator('[data-testid="stSidebarNavLink"][href$="/finetune"]').first.click(timeout=60_000)
    wait_interactive(page)
    return page


@dataclass
class Watch:
    """What the class's watch loop saw besides the students' own records."""

    start: float = 0.0  # monotonic: everyone pressed Start
    wall: float = 0.0  # Unix time of the same moment (the store's clock)
    end: float = 0.0
    full_until: float | None = None  # the first job ended: the queue was full until here
    teacher_delay: float | None = None  # the teacher's Start to their page showing the run
    press_spread: float = 0.0


def press_start(watch: Watch, pages, teacher_page, ws_class: WsClass, visitor: Visitor) -> float:
    """Everyone presses Start at once, the teacher last; a fresh visitor opens page 3 with them.
    Returns when the teacher pressed (monotonic).

    The browsers press at the normal CPU policy (`at_normal_priority`): in a class each runs on
    its student's own machine, and the server's load does not delay a click there."""
    watch.start, watch.wall = time.monotonic(), time.time()
    visitor.go.set()
    ws_class.release()
    with at_normal_priority():
        for s, pg in pages:
            s.pressed = time.monotonic()
            pg.get_by_role("button", name="Start").first.click(no_wait_after=True)
        t_pressed = time.monotonic()
        if teacher_page is not None:  # the teacher's demo, after the whole class pressed Start
            teacher_page.get_by_role("button", name="Start").first.click(no_wait_after=True)
    return t_pressed


def everyone_answered(roster: list[Student], visitor: Visitor, watch: Watch, teacher_page) -> bool:
    """--until ok: every student's page answered and a visitor was timed: the rest is the queue."""
    teacher_seen = teacher_page is None or watch.teacher_delay is not None
    return all(s.ok or s.error for s in roster) and bool(visitor.times) and teacher_seen


def watch_class(watch: Watch, roster, pages, teacher_page, t_pressed, visitor, *, deadline, until, say) -> None:
    """Read every browser student's page twice a second until every run ended (or `until`)."""
    last_say = time.monotonic()
    while time.monotonic() < deadline:
        now = time.monotonic()
        for s, pg in pages:
            if s.outcome is None:
                try:
                    s.seen(time.monotonic(), **read_status(pg))
                except Exception as exc:  # noqa: BLE001
                    s.error = f"{type(exc).__name__}: {exc}"[:200]
        if teacher_page is not None and watch.teacher_delay is None and read_status(teacher_page)["running"]:
            watch.teacher_delay = time.monotonic() - t_pressed
        if watch.full_until is None and any(s.outcome for s in roster):
            watch.full_until = now
        if all(s.outcome or s.error for s in roster):
            break
        if until == "ok" and everyone_answered(roster, visitor, watch, teacher_page):
            break
        if now - last_say > 15:
            last_say = now
            say(
                f"{now - watch.start:4.0f} s: {sum(s.t_position is not None for s in roster)} saw a queue "
                f"position, {sum(s.t_running is not None for s in roster)} running, "
                f"{sum(bool(s.outcome) for s in roster)} ended, {sum(bool(s.error) for s in roster)} broke"
            )
        time.sleep(max(0.0, 0.5 - (time.monotonic() - now)))
    watch.end = time.monotonic()
    press_times = [s.pressed for s in roster if s.pressed]
    watch.press_spread = max(press_times) - min(press_times) if press_times else 0.0


def teacher_note(teacher_page, watch: Watch) -> str:
    if teacher_page is None:
        return "teacher mode: not used"
    if watch.teacher_delay is None:
        return "teacher's run did not start during the class"
    return (
        f"teacher's page showed their run training {watch.teacher_delay:.1f} s after Start "
        "(the queue, the run's loading, the page's next poll)"
    )


@dataclass
class Setup:
    """A class's fixed facts: where it runs and who is in it."""

    url: str
    log_dir: Path
    roster: list[Student]
    browsers: int
    secret: str
    teacher_id: str
    probe_every: float
    timeout: float
    until: str
    students_idle: bool
    say: object


def hold_class(setup: Setup, sampler: Sampler, parts: dict) -> tuple[Watch, float, str]:
    """The class in Chromium and websockets: warm up, everyone on page 3, Start, watch, leave.
    `parts` receives the visitor and the websocket class so the caller can stop them on error.
    Returns (what was watched, the server's memory at rest before the class, the teacher's line)."""
    from playwright.sync_api import sync_playwright

    roster, browsers, say = setup.roster, setup.browsers, setup.say
    with sync_playwright() as p:
        exe = idle_chromium(setup.students_idle, setup.log_dir)
        browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        try:
            # Warm up once (imports, the model's first build) so the start figure is the server at rest.
            warm = open_page(browser, setup.url, "finetune")
            wait_interactive(warm)
            warm.context.close()
            # The server's own warm-up (tlcore.train.presets.warm_ups, about 13 s of work on 2
            # cores) done: a class meets a server at rest, and the students' idle-priority
            # browsers are not starved behind it.
            sampler.wait_idle(2, 90)
            rss_start = sampler.read()[1]
            say(
                f"server up, {rss_start:.0f} MB; opening {browsers} browser students and {len(roster) - browsers} websocket students"
            )
            pages = [(s, open_page(browser, setup.url, "finetune")) for s in roster[:browsers]]
            for _, pg in pages:
                wait_interactive(pg)
            # ... and past what a page loads after it is interactive (Plotly's code, 3 s on:
            # studio.page_frame.load_charts_early), or the idle-priority browsers press Start late.
            time.sleep(5)
            # The teacher: a browser of its own at the normal priority (in a class it runs on the teacher's machine)
            projector = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True) if setup.secret else None
            teacher_page = unlock_teacher(projector, setup.url, setup.teacher_id, setup.secret) if projector else None
            deadline = time.monotonic() + setup.timeout
            ws_class = parts["ws_class"] = WsClass(roster[browsers:], setup.url, deadline)
            ws_class.start()
            if not ws_class.all_ready.wait(180):
                raise RuntimeError("the websocket students did not load page 3 in 180 s")
            say("everyone on page 3: Start")
            visitor = parts["visitor"] = Visitor(setup.url, setup.probe_every)
            visitor.start()
            visitor.ready.wait(60)
            watch = Watch()
            t_pressed = press_start(watch, pages, teacher_page, ws_class, visitor)
            watch_class(watch, roster, pages, teacher_page, t_pressed, visitor, deadline=deadline, until=setup.until, say=say)
            ws_class.stop()
            visitor.stop_flag.set()
            visitor.join(90)
            ws_class.join(30)
            for _, pg in pages:
                pg.context.close()
            note = teacher_note(teacher_page, watch)
            if projector is not None:
                projector.close()
        finally:
            browser.close()
    return watch, rss_start, note


def run_class(
    students: int = 30,
    browsers: int = 6,
    max_seconds: float | None = None,
    timeout: float = 900.0,
    probe_every: float = 10.0,
    settle: float = 20.0,
    teacher: bool = True,
    until: str = "end",
    log_dir: Path | None = None,
    say=print,
    students_idle: bool = STUDENT_IDLE,
    workers: int = 0,
    threads: int = 0,
) -> Report:
    """Start a server, run the class, stop everything; return the figures."""
    browsers = min(browsers, students)
    log_dir = Path(log_dir or tempfile.mkdtemp(prefix="tls-loadtest-"))
    env = dict(os.environ)
    env.setdefault("TLS_STATE_DIR", tempfile.mkdtemp(prefix="tls-loadtest-state-"))
    secret = "loadtest-" + os.urandom(6).hex() if teacher else ""
    env["TLS_CLASS_CONFIG"] = str(class_toml(log_dir, max_seconds=max_seconds, workers=workers, threads=threads, secret=secret))
    env.pop("TLS_TEACHER_SECRET", None)
    port = free_port()
    setup = Setup(
        url=f"http://127.0.0.1:{port}",
        log_dir=log_dir,
        roster=roster_of(students, browsers),
        browsers=browsers,
        secret=secret,
        teacher_id=secrets.token_urlsafe(16),  # the teacher's learner cookie: finds their job in the store
        probe_every=probe_every,
        timeout=timeout,
        until=until,
        students_idle=students_idle,
        say=say,
    )
    load_before = loadavg()
    server = start_server(port, log_dir / "streamlit.log", env)
    sampler, parts = None, {}
    try:
        if not wait_healthy(setup.url):
            raise RuntimeError(f"streamlit did not start; see {log_dir / 'streamlit.log'}")
        sampler = Sampler(server.pid)
        sampler.start()
        watch, rss_start, note = hold_class(setup, sampler, parts)
        measured = after_class(setup, watch, sampler, settle=settle, state_dir=Path(env["TLS_STATE_DIR"]))
        return figures(
            setup,
            watch,
            sampler,
            parts,
            rss_start=rss_start,
            teacher=note,
            load_before=load_before,
            cpu_plan=cpu_plan(workers, threads),
            **measured,
        )
    finally:
        stop_everything(parts, sampler, server)


def roster_of(students: int, browsers: int) -> list[Student]:
    """The class: `browsers` Chromium students, the rest websocket students."""
    roster = [Student(f"browser-{i + 1}", "browser") for i in range(browsers)]
    return roster + [Student(f"ws-{i + 1}", "websocket") for i in range(students - browsers)]


def after_class(setup: Setup, watch: Watch, sampler: Sampler, *, settle: float, state_dir: Path) -> dict:
    """Everyone left: wait for the server to go idle, then read its memory and its store's record."""
    setup.say(f"class over after {watch.end - watch.start:.0f} s; everyone gone, settling {settle:.0f} s or more")
    # Memory is read once the server is idle: the jobs of closed tabs are cancelled, none left queued.
    settled = sampler.wait_idle(settle, settle + within(120))  # idle seconds: a busy box takes longer
    rss_after = sampler.read()[1]
    server_jobs = read_server_jobs(state_dir / "runs.sqlite", setup.teacher_id, watch.wall - 5)
    sampler.stop_flag.set()
    sampler.join(5)
    notes = [
        f"memory after read {settled:.0f} s after the class, the server idle",
        f"server log: {setup.log_dir / 'streamlit.log'}",
    ]
    return {"rss_after": rss_after, "server_jobs": server_jobs, "notes": notes}


def stop_everything(parts: dict, sampler: Sampler | None, server) -> None:
    """Whatever happened: the websocket students, the visitor, the sampler and the server stop."""
    if "ws_class" in parts:
        parts["ws_class"].stop()
    if "visitor" in parts:
        parts["visitor"].stop_flag.set()
        parts["visitor"].go.set()
    if sampler is not None:
        sampler.stop_flag.set()
    stop_server(server)


def figures(setup: Setup, watch: Watch, sampler: Sampler, parts: dict, **measured) -> Report:
    """The report from the watch, the server's samples and the clients' own records."""
    inside = [s for s in sampler.samples if s[0] >= watch.start]
    visitor, ws_class = parts["visitor"], parts["ws_class"]
    return Report(
        students=setup.roster,
        tti=[(t0 - watch.start, t) for t0, t in visitor.times],
        visitor_exceptions=visitor.exceptions,
        rss_peak=max(s[1] for s in inside),
        rss_peak_startup=max((s[1] for s in sampler.samples if s[0] < watch.start), default=0.0),
        cpu_waiting=sampler.cpu_between(watch.start + 3, watch.full_until or watch.end),
        cpu_total=(inside[-1][2] - inside[0][2]) if len(inside) > 1 else 0.0,
        press_spread=watch.press_spread,
        load_after=loadavg(),
        browsers=setup.browsers,
        students_idle=setup.students_idle,
        teacher_delay=watch.teacher_delay,
        poll_times=[t for c in ws_class.clients for t in c.poll_times],
        **measured,
    )
