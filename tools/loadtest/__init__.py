"""A class on one server: N students press Start on page 3 within 2 s; print the figures.

    python -m tools.loadtest --students 30            # the class the issue asks for
    python -m tools.loadtest --students 5 --max-seconds 6 --browsers 5   # the suite's scale

What it does, in one process on loopback:
- starts `streamlit run app.py` from the repository root, so `.streamlit/config.toml` (the
  settings we ship) applies; `--max-seconds` writes a class.toml (`TLS_CLASS_CONFIG`) that caps
  each job, the teacher's own control, to make a short class;
- `--browsers` students are real Chromium pages (one browser, one context each: their own
  cookie, their own Streamlit session);
- the other students are websocket clients that speak Streamlit's own protocol to the same
  server (`/_stcore/stream`, BackMsg/ForwardMsg protobufs): they load page 3 like a browser,
  press the real Start button by its widget id, and re-run the live panel's fragment every
  time the server asks for it (`auto_rerun`), as the browser's frontend does. The server
  cannot tell them from browsers: same sessions, same script runs, same fragment polls, same
  deltas sent. They draw nothing, so they cost the machine less than a browser would;
- a fresh visitor (a new browser context) opens page 3 every `--probe-every` seconds and is
  timed until Start is clickable and the script has finished (time to interactive);
- the server's RSS and CPU are sampled every 0.5 s from /proc.

Figures (per student and summed up) print as a pass/fail list against the issue's targets.
Everything it starts (server, browsers) is stopped before it returns.

The package, one job a module: texts (what the pages say), server (start, health, stop, the
store's record), sampler (/proc), browser (Chromium settings, a page's state, the fresh
visitor), students (the students' records and the websocket clients), report (figures and
targets), classroom (one class, start to end), __main__ (the command line). The browser
tests and the other tools import the server and Chromium helpers from here.
"""

from tools.loadtest.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    STUDENT_IDLE,
    Visitor,
    error_count,
    idle_chromium,
    read_status,
    wait_interactive,
)
from tools.loadtest.classroom import run_class
from tools.loadtest.report import AFTER_TARGET_MB, LAST_TARGET_S, PEAK_TARGET_MB, PRESS_WINDOW_S, TTI_TARGET_S, Report
from tools.loadtest.sampler import Sampler, loadavg
from tools.loadtest.server import free_port, fresh_server, read_server_jobs, start_server, stop_server, wait_healthy
from tools.loadtest.students import Student, WsClass, WsStudent
from tools.loadtest.texts import EN, KO, ROOT

__all__ = [
    "AFTER_TARGET_MB",
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "EN",
    "KO",
    "LAST_TARGET_S",
    "PEAK_TARGET_MB",
    "PRESS_WINDOW_S",
    "ROOT",
    "STUDENT_IDLE",
    "TTI_TARGET_S",
    "Report",
    "Sampler",
    "Student",
    "Visitor",
    "WsClass",
    "WsStudent",
    "error_count",
    "free_port",
    "fresh_server",
    "idle_chromium",
    "loadavg",
    "read_server_jobs",
    "read_status",
    "run_class",
    "start_server",
    "stop_server",
    "wait_healthy",
    "wait_interactive",
]
