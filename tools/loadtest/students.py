"""The students: what each saw and when (Student), and the websocket students that speak
Streamlit's protocol to the server (WsStudent, all of them in one loop: WsClass)."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from dataclasses import dataclass

from tools.loadtest.texts import APP_ERRORS, DONE, FAILED, HAS_POINTS, RUNNING, STOPPED, WAITING


@dataclass
class Student:
    name: str
    kind: str  # "browser" | "websocket"
    pressed: float | None = None
    t_position: float | None = None  # seconds after the press
    position: int | None = None
    t_running: float | None = None
    t_curve: float | None = None
    t_end: float | None = None
    outcome: str | None = None  # done | stopped | failed
    exceptions: int = 0
    error: str = ""

    def seen(self, now: float, *, position=None, running=False, curve=False, end=None, exceptions=0) -> None:
        if self.pressed is None:
            return
        dt = now - self.pressed
        if position is not None and self.t_position is None:
            self.t_position, self.position = dt, position
        if running and self.t_running is None:
            self.t_running = dt
        if curve and self.t_curve is None:
            self.t_curve = dt
        if end and self.outcome is None:
            self.t_end, self.outcome = dt, end
        self.exceptions = max(self.exceptions, exceptions)

    @property
    def ok(self) -> bool:
        """The issue's test: the job finished, or the page showed its queue position."""
        return not self.error and (self.outcome in ("done", "stopped") or self.t_position is not None)


# --- the server and what it uses -----------------------------------------------------------


class WsStudent:
    """A student whose 'browser' is a Streamlit protocol client: it loads page 3, presses Start
    by its widget id, and runs the fragment reruns the server asks for, as the frontend does."""

    def __init__(self, student: Student, url: str):
        self.s, self.url = student, url
        self.ready = asyncio.Event()
        self.start_id: str | None = None
        self.page_hash = ""
        self.fragments: dict[str, float] = {}  # fragment id -> interval the server asked for
        self.fragment_epoch = 0  # counts the full runs that cleared the fragments' timers
        self.closing = False
        self.finished = asyncio.Event()
        self.poll_sent: float | None = None
        self.poll_times: list[float] = []

    def client_state(self, **kw):
        from streamlit.proto.ClientState_pb2 import ClientState

        return ClientState(query_string="lang=en", page_script_hash=self.page_hash, page_name="finetune", **kw)

    async def send_rerun(self, ws, **kw) -> None:
        import websockets
        from streamlit.proto.BackMsg_pb2 import BackMsg

        msg = BackMsg()
        msg.rerun_script.CopyFrom(self.client_state(**kw))
        try:
            await ws.send(msg.SerializeToString())
        except websockets.ConnectionClosed:
            if not self.closing:  # a timer's send after the class ended and the socket closed is no figure
                raise

    async def press(self, ws) -> None:
        from streamlit.proto.WidgetStates_pb2 import WidgetState, WidgetStates

        self.s.pressed = time.monotonic()
        await self.send_rerun(ws, widget_states=WidgetStates(widgets=[WidgetState(id=self.start_id, trigger_value=True)]))

    async def poll_fragments(self, ws) -> None:
        """Rerun each fragment on its own timer, as the frontend does (streamlit's App.handleAutoRerun:
        one setInterval per fragment id at the interval the server asked for, kept while the interval
        stays the same, all cleared by a full run; a timer fires whether or not a run is going).
        Until session 24 this reran every fragment at the shortest interval, whenever no run was
        going: a class member's 3 s class pulse then ran at its job panel's 1-2 s pace."""
        timers: dict[str, tuple[float, asyncio.Task]] = {}
        epoch = self.fragment_epoch
        try:
            while not self.closing:
                if epoch != self.fragment_epoch:  # a full run cleared every timer
                    epoch = self.fragment_epoch
                    for _, task in timers.values():
                        task.cancel()
                    timers.clear()
                for fragment in [f for f, (interval, _) in timers.items() if self.fragments.get(f) != interval]:
                    timers.pop(fragment)[1].cancel()
                for fragment, interval in list(self.fragments.items()):
                    if fragment not in timers:
                        timers[fragment] = (interval, asyncio.create_task(self._timer(ws, fragment, interval)))
                await asyncio.sleep(0.1)
        finally:
            for _, task in timers.values():
                task.cancel()

    async def _timer(self, ws, fragment: str, interval: float) -> None:
        while not self.closing:
            await asyncio.sleep(interval)
            if self.poll_sent is None:
                self.poll_sent = time.monotonic()
            # shielded: a timer cancelled mid-send (a full run clears every timer) left half a frame on
            # the socket, and the connection died with 1011 (seen once in 30 students, session 33)
            await asyncio.shield(self.send_rerun(ws, fragment_id=fragment, is_auto_rerun=True))

    def handle(self, raw: bytes) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        msg = ForwardMsg()
        msg.ParseFromString(raw)
        kind = msg.WhichOneof("type")
        now = time.monotonic()
        if kind == "new_session":
            if not msg.metadata.run.fragment_ids:  # a full run: the frontend clears every fragment's timer
                self.fragments.clear()
                self.fragment_epoch += 1
        elif kind == "navigation":
            self.page_hash = msg.navigation.page_script_hash or self.page_hash  # page 3's, as the frontend keeps it
        elif kind == "script_finished":
            self.finished.set()
            if self.poll_sent is not None:  # a poll's round trip: how long the server took to answer it
                self.poll_times.append(now - self.poll_sent)
                self.poll_sent = None
        elif kind == "auto_rerun":
            self.fragments[msg.auto_rerun.fragment_id] = msg.auto_rerun.interval or 1.0
        elif kind == "stop_auto_rerun":
            for fragment in msg.stop_auto_rerun.fragment_ids or list(self.fragments):
                self.fragments.pop(fragment, None)
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            el = msg.delta.new_element
            which = el.WhichOneof("type")
            if which == "button" and el.button.label == "Start":
                self.start_id = el.button.id
            elif which == "alert":
                body = el.alert.body
                if any(body.startswith(prefix) for prefix in APP_ERRORS):
                    self.s.exceptions += 1
                m = WAITING.search(body)
                end = (
                    "failed"
                    if body.startswith(FAILED)
                    else "done"
                    if DONE.search(body)
                    else "stopped"
                    if re.search(STOPPED, body)
                    else None
                )
                self.s.seen(now, position=int(m.group(1)) if m else None, end=end)
            elif which == "progress" and RUNNING.search(el.progress.text):
                self.s.seen(now, running=True)
            elif which == "plotly_chart" and self.s.t_running is not None and HAS_POINTS.search(el.plotly_chart.spec):
                self.s.seen(now, curve=True)
            elif which == "exception":
                self.s.exceptions += 1

    async def run(self, go: asyncio.Event, deadline: float) -> None:
        import websockets

        ws_url = self.url.replace("http://", "ws://") + "/_stcore/stream"
        try:
            async with websockets.connect(
                ws_url, subprotocols=["streamlit"], max_size=None, open_timeout=120, ping_interval=None
            ) as ws:
                reader = asyncio.create_task(self.read(ws))
                await self.load_until_start(ws)
                await self.press_and_watch(ws, go, deadline)
                reader.cancel()
        except Exception as exc:  # noqa: BLE001 -- a client that broke is a figure
            self.s.error = f"{type(exc).__name__}: {exc}"[:200]

    async def load_until_start(self, ws, tries: int = 6) -> None:
        """Load the page until the Start widget's id is the same in two runs in a row (the first
        run sees no cookie and no settings yet, and its widget ids differ); then ready."""
        previous = None
        for _ in range(tries):
            self.finished.clear()
            await self.send_rerun(ws)
            await asyncio.wait_for(self.finished.wait(), timeout=180)
            if self.start_id and self.start_id == previous:
                break
            previous = self.start_id
        self.ready.set()

    async def press_and_watch(self, ws, go: asyncio.Event, deadline: float) -> None:
        """On `go`, press Start, then run the fragments the server asks for until the run ends."""
        await go.wait()
        await self.press(ws)
        poller = asyncio.create_task(self.poll_fragments(ws))
        while time.monotonic() < deadline and self.s.outcome is None and not self.closing:
            await asyncio.sleep(0.5)
        self.closing = True
        poller.cancel()

    async def read(self, ws) -> None:
        async for raw in ws:
            if isinstance(raw, bytes):
                self.handle(raw)


class WsClass(threading.Thread):
    """All websocket students in one asyncio loop (one thread), released together by `go`."""

    def __init__(self, students: list[Student], url: str, deadline: float):
        super().__init__(daemon=True)
        self.clients = self.make_clients(students, url)
        self.deadline = deadline
        self.loop = asyncio.new_event_loop()
        self.go = asyncio.Event()
        self.all_ready = threading.Event()

    def make_clients(self, students: list[Student], url: str) -> list:
        return [WsStudent(s, url) for s in students]

    def runs(self) -> list:
        """Each client's coroutine (called inside the loop, where its events must be made)."""
        self.go = asyncio.Event()
        return [c.run(self.go, self.deadline) for c in self.clients]

    def release(self) -> None:
        self.loop.call_soon_threadsafe(self.go.set)

    def stop(self) -> None:
        for c in self.clients:
            c.closing = True

    def run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def main():
            tasks = [asyncio.create_task(run) for run in self.runs()]

            async def readiness():
                await asyncio.gather(*(c.ready.wait() for c in self.clients))
                self.all_ready.set()

            ready_task = asyncio.create_task(readiness())
            await asyncio.gather(*tasks)
            ready_task.cancel()
            self.all_ready.set()

        self.loop.run_until_complete(main())


# --- the class -----------------------------------------------------------------------------
