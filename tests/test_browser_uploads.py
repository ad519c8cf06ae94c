"""Upload folders in Streamlit's real runtime: a closed tab's private folder is deleted once
its session has ended, while an open tab keeps its own.

A small app (studio.upload_slots.upload_folder(), nothing else) on a real `streamlit run` server
with a short disconnected-session TTL, driven by headless Chromium. Without the janitor
(studio.server.upload_folders), a closed tab's folder stayed until a full garbage collection.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS, wait_healthy, within

ROOT = Path(__file__).resolve().parent.parent
playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]

APP = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
import streamlit as st
from studio.upload_slots import upload_folder

folder = upload_folder()
(folder.slot("images") / "cat.png").write_bytes(b"x")
st.write("FOLDER", folder.path.name)
"""


def test_a_closed_tabs_upload_folder_is_deleted_and_an_open_tabs_kept(tmp_path, free_port):
    (tmp_path / "app.py").write_text(APP, encoding="utf-8")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp), TLS_UPLOAD_REAP_S="0.5")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(tmp_path / "app.py"),
            "--server.port",
            str(free_port),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
            "--server.disconnectedSessionTTL",
            "2",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{free_port}"

    def folders() -> set[str]:
        return {p.name for p in tmp.glob("tlstudio-up-*")}

    try:
        assert wait_healthy(url)
        with playwright_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

            def open_tab():
                context = browser.new_context()
                page = context.new_page()
                page.goto(url)
                name = page.get_by_text("FOLDER").inner_text(timeout=within(60) * 1000).split()[-1]
                return context, name

            closing, gone = open_tab()
            staying, kept = open_tab()
            assert {gone, kept} <= folders()
            assert (tmp / gone).stat().st_mode & 0o777 == 0o700
            closing.close()  # the tab is closed: its session ends after the 2 s TTL
            deadline = time.monotonic() + 20
            while gone in folders() and time.monotonic() < deadline:
                time.sleep(0.25)
            assert gone not in folders()
            assert kept in folders()  # the open tab's upload stays
            staying.close()
            browser.close()
    finally:
        proc.terminate()
        proc.wait(30)
    assert folders() == set()  # the server's exit deletes what is left
