"""The README's two commands, run as a newcomer runs them: print the figures.

    python -m tools.readme_check                 # a fresh clone, its own .venv, the run command; does the app answer?
    python -m tools.readme_check --tests         # then the test command too (the whole suite: long)
    python -m tools.readme_check --keep /tmp/x   # clone into /tmp/x and leave it there

The commands are read from the README's "Two commands" section (its first two ```bash blocks),
so the check follows the README as it is written. The run command's server gets a free port
(STREAMLIT_SERVER_PORT; the command itself is unchanged), and the check waits for Streamlit's
health endpoint, the page, and then loads it in headless Chromium: the page's title and no
error box. It prints the seconds each step took.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands(readme: str) -> tuple[str, str]:
    """(run command, test command): the first two bash blocks under '## Two commands'."""
    section = readme.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    if len(blocks) < 2:
        raise ValueError("the README's 'Two commands' section needs two ```bash blocks")
    return blocks[0].strip(), blocks[1].strip()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return r.status == 200
    except OSError:
        return False


def _page_looks_right(url: str) -> str:
    """'' when Chromium shows the app's page with no error box, else what it saw."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(url)
        page.wait_for_selector("[data-testid='stSidebar']", timeout=90_000)
        errors = page.locator("[data-testid='stException'], [data-testid='stAlertContentError']").count()
        title = page.title()
        browser.close()
    return "" if errors == 0 and title else f"title {title!r}, {errors} error box(es)"


def check_commands(clone: Path, tests: bool, wait_s: float) -> int:
    run_cmd, test_cmd = readme_commands((ROOT / "README.md").read_text(encoding="utf-8"))
    t0 = time.monotonic()
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    port = _free_port()
    env = dict(os.environ, STREAMLIT_SERVER_PORT=str(port), STREAMLIT_SERVER_HEADLESS="true")
    env.pop("VIRTUAL_ENV", None)
    log = open(clone / "readme-run.log", "w")  # noqa: SIM115 -- the server writes to it while it runs
    server = subprocess.Popen(
        ["bash", "-c", run_cmd], cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    verdict = "the app never answered"
    try:
        end = time.monotonic() + wait_s
        while time.monotonic() < end and server.poll() is None:
            if _answers(f"{url}/_stcore/health"):
                answered = time.monotonic() - t0
                seen = _page_looks_right(url)
                verdict = f"app answered {answered:.0f} s after the clone; Chromium: " + (seen or "page drawn, 0 error boxes")
                break
            time.sleep(2)
        else:
            verdict += f" (exit {server.poll()}; see {clone / 'readme-run.log'})"
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
    print(f"run command: {run_cmd}\n  {verdict}", flush=True)
    ok = verdict.endswith("0 error boxes")
    if tests and ok:
        t1 = time.monotonic()
        done = subprocess.run(["bash", "-c", test_cmd], cwd=clone, env=dict(os.environ, CI="true"))
        print(f"test command: {test_cmd}\n  exit {done.returncode} after {time.monotonic() - t1:.0f} s", flush=True)
        ok = done.returncode == 0
    return 0 if ok else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tests", action="store_true", help="also run the README's test command in the clone")
    p.add_argument("--keep", default="", help="clone into this (new) folder and keep it")
    p.add_argument("--wait", type=float, default=1800, help="seconds the install and start may take (default %(default)s)")
    args = p.parse_args(argv)
    clone = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="tls-readme-")) / "studio"
    return check_commands(clone, args.tests, args.wait)


if __name__ == "__main__":
    sys.exit(main())
