"""The whole class server's memory through a teacher's demos in Chromium: at rest after its
warm-up, then after page 3's default fine-tune, page 5's default text run, its masked-word demo
and page 4's freeze-depth sweep, each run to its end; the resident memory after each and the
peak so far (the kernel's VmHWM of the server's process).

    python -m tools.servermemory                 # the four, in that order
    python -m tools.servermemory --settle 60     # a longer wait for the warm-up before the first

Starts `streamlit run app.py` with a fresh state folder (the shipped settings, training in the
server's own process), drives one browser through the pages as a teacher would, and waits after
each click until the server has been idle (under a tenth of a core) for 3 s. Issue 56, item 4:
"the server after a text run, the demo and a sweep < 3 GB". What the memory holds is in
docs/class-load.md; `tools.loadtest.services --session` measures the engine alone.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tlcore.serve.cores import process_busy_s
from tools.loadtest import CHROMIUM, CHROMIUM_ARGS, fresh_server

GOAL_MB = 3 * 1024
# (what, page path, the button's key, a tab to open first or "")
DEMOS = [
    ("page 3's default fine-tune", "finetune", "start", ""),
    ("page 5's default text run", "text", "text_start", ""),
    ("the masked-word demo", "text", "mlm_live_start", "Guess the hidden word"),
    ("page 4's freeze-depth sweep", "compare", "sweep_start", "Freeze-depth sweep"),
]


def memory_mb(pid: int) -> tuple[float, float]:
    """(resident, peak resident) of a process, in MB (Linux's /proc/PID/status)."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def wait_idle(pid: int, quiet_s: float = 3.0, timeout_s: float = 600.0) -> float:
    """Seconds until the process has used under a tenth of a core for `quiet_s` on end."""
    t0 = time.monotonic()
    quiet_since, last = None, process_busy_s(pid) or 0.0
    while time.monotonic() - t0 < timeout_s:
        time.sleep(0.5)
        busy = process_busy_s(pid) or 0.0
        if busy - last < 0.05:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= quiet_s:
                return quiet_since - t0
        else:
            quiet_since = None
        last = busy
    raise TimeoutError(f"the server was still busy after {timeout_s:.0f} s")


def press(page, url: str, path: str, key: str, tab: str) -> None:
    """Open the page and press the button with this key (opening `tab` first when it is in one)."""
    page.goto(f"{url}/{path}?lang=en", timeout=120_000)
    page.locator(".st-key-text_start, .st-key-start, .st-key-race_start").first.wait_for(timeout=120_000)
    button = page.locator(f".st-key-{key} button").first
    if tab and not button.is_visible():
        page.get_by_role("tab", name=tab).first.click()
    button.scroll_into_view_if_needed(timeout=60_000)
    button.click()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--settle", type=float, default=40, help="seconds for the server's warm-up before the first demo")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    with fresh_server("tls-servermemory-") as (url, _, server), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_context(viewport={"width": 1280, "height": 720}, locale="en-US").new_page()
        page.goto(f"{url}/finetune?lang=en", timeout=120_000)
        page.locator(".st-key-start").first.wait_for(timeout=120_000)
        time.sleep(args.settle)
        wait_idle(server.pid)
        rest, peak = memory_mb(server.pid)
        print(f"{'at rest after the warm-up':34s} {rest:6.0f} MB   peak so far {peak:6.0f} MB", flush=True)
        for what, path, key, tab in DEMOS:
            press(page, url, path, key, tab)
            took = wait_idle(server.pid)
            now, peak = memory_mb(server.pid)
            print(
                f"{what:34s} {now:6.0f} MB   peak so far {peak:6.0f} MB   (+{now - rest:5.0f} MB on rest; busy {took:5.1f} s)",
                flush=True,
            )
        browser.close()
    verdict = "within" if peak < GOAL_MB else "over"
    print(f"\nthe server's peak {peak:.0f} MB, after all four {now:.0f} MB: {verdict} the goal of {GOAL_MB} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
