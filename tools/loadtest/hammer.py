"""The request-time services hammered from several learners' tabs against a running server:
feature-space views, Grad-CAM ("Try it"), model and ONNX downloads, image and text. Prints the
server's resident memory at the start of the burst, its peak, and after it.

    python -m tools.loadtest.hammer                       # 3 learners, 3 rounds, image and text
    python -m tools.loadtest.hammer --learners 2 --rounds 1 --no-text

What it does, on loopback, against `streamlit run app.py` (the shipped settings, a fresh
state folder):
- each learner is a Chromium context (their own cookie) with two tabs: page 3 and page 5;
- set-up: every learner runs page 3's default fine-tune and (unless --no-text) page 5's
  default text run, so each has models of their own on the server's shelf;
- the start figure: the server's RSS once set-up is over and the server has settled;
- each round, every learner's clicks are sent one right after the other (the server gets them
  together), then their results are awaited: page 3 shows the feature space (then another
  projection each round), picks the next sample photo in "Try it" (two Grad-CAM maps),
  downloads the model's weights and its ONNX export; page 5 downloads the text model's weights
  and ONNX (87 MB each for MiniLM);
- then the tabs stay open `--settle` s (the janitor lets a download's bytes go a few seconds
  after the browser asked for them: studio.download_hold) and memory is read again, and once
  more after the tabs are closed and their sessions have ended (`--closed-wait`, 150 s: Streamlit
  keeps a closed tab's session 120 s for a reconnect).

The server's RSS (its training processes' included, tools.loadtest.sampler) is sampled every
0.5 s. Targets (issue 29, item 2): peak < 3 GB; after the burst within 10% of the start.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from tools.loadtest.browser import CHROMIUM, CHROMIUM_ARGS, error_count
from tools.loadtest.sampler import Sampler
from tools.loadtest.server import free_port, start_server, stop_server, wait_healthy
from tools.loadtest.texts import DONE, EN

PEAK_GOAL_MB = 3 * 1024
BACK_WITHIN = 0.10  # after the burst: within 10% of the start

IDLE_JS = """() => {
    const status = document.querySelector('[data-testid="stStatusWidget"]');
    return !(status && status.innerText.includes('Running')) && !document.querySelector('[data-stale="true"]');
}"""


T0 = time.monotonic()


DOWNLOAD_S = 300  # a round's downloads must have ended this long after the first was clicked


def say(text: str) -> None:
    """One line of progress, with the seconds since the start."""
    print(f"[{time.monotonic() - T0:6.1f} s] {text}", flush=True)


def wait_idle(page, timeout_ms: int = 120_000) -> None:
    page.wait_for_function(IDLE_JS, timeout=timeout_ms)


class Learner:
    """One learner: a context with a page-3 tab and, for text, a page-5 tab; what they saw."""

    def __init__(self, browser, url: str, index: int, text: bool, folder: Path):
        self.index, self.url, self.folder = index, url, folder
        self.context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US", accept_downloads=True)
        self.image = self.context.new_page()
        self.text = self.context.new_page() if text else None
        self.downloads: list = []  # (tab, Download)
        self.checked = 0  # downloads already looked at
        self.method = ""  # the feature-space projection asked for last
        self.times: dict[str, list[float]] = {}
        self.errors = 0
        # Each download's end, as Chromium tells it (Playwright's download.failure() waits without
        # a bound: a download that starts and never ends hung the whole tool for good)
        self.begun: dict[str, str] = {}  # guid -> url
        self.ended: dict[str, tuple[str, float]] = {}  # guid -> (completed | canceled, when)
        self.timed: set[str] = set()  # guids whose time is in self.times already
        for tab in self.tabs():
            tab.set_default_timeout(180_000)
            tab.on("download", lambda d, tab=tab: self.downloads.append((tab, d)))
            cdp = self.context.new_cdp_session(tab)
            cdp.send("Page.enable")
            cdp.on("Page.downloadWillBegin", lambda e: self.begun.__setitem__(e["guid"], e["url"]))
            cdp.on("Page.downloadProgress", self._progress)
            # every /media request and its answer, to tell a download the server never answered from one
            # the browser never started (printed for a round with a download missing)
            cdp.send("Network.enable")
            cdp.on("Network.requestWillBeSent", lambda e, tab=tab: self._media(tab, e["request"]["url"], "asked"))
            cdp.on("Network.responseReceived", lambda e, tab=tab: self._media(tab, e["response"]["url"], e["response"]["status"]))
            tab.on("console", lambda m, tab=tab: m.type in ("error", "warning") and self._media(tab, m.text[:160], "console"))
        self.media: list[str] = []  # "<seconds> <tab> <what> <url>", this round's

    def _media(self, tab, url: str, what) -> None:
        if "/media/" in url or what == "console":
            name = "text" if tab is self.text else "image"
            self.media.append(f"{time.monotonic() - T0:6.1f} s {name} {what} {url.rsplit('/', 1)[-1][:70]}")

    def _progress(self, event: dict) -> None:
        if event["state"] != "inProgress":
            self.ended.setdefault(event["guid"], (event["state"], time.monotonic()))

    def tabs(self) -> list:
        return [p for p in (self.image, self.text) if p is not None]

    def run(self, tab, path: str, start_key: str) -> None:
        """Press a page's Start (a learner has one job at a time: wait_run before the next)."""
        tab.goto(f"{self.url}/{path}?lang=en")
        tab.locator(f".st-key-{start_key} button").first.click()

    @staticmethod
    def wait_run(tab, timeout_s: float) -> None:
        tab.get_by_text(DONE).first.wait_for(timeout=timeout_s * 1000)
        wait_idle(tab)

    # -- one round: fire, then wait

    def feature_panel(self):
        """Page 3's feature-space expander (folded under the settings until opened)."""
        return self.image.locator('[data-testid="stExpander"]').filter(has_text=EN["features.title"]).first

    def fire(self, round_no: int) -> dict[str, float]:
        """Send this round's clicks without waiting for their results; returns when each was sent."""
        sent = {}
        page = self.image
        panel = self.feature_panel()
        if not panel.evaluate(
            "e => { const d = e.tagName === 'DETAILS' ? e : e.querySelector('details'); return !!d && d.open; }"
        ):
            panel.locator("summary").first.click()  # the view is folded under the settings
            wait_idle(page)
        show = panel.get_by_role("button", name=EN["features.show"])
        if show.count():
            show.first.click()
            self.method = EN["features.method.pca"]  # the default projection
        else:  # the view is open: another projection (each is computed once, then kept)
            names = [EN[f"features.method.{m}"] for m in ("pca", "tsne")]
            self.method = names[round_no % len(names)]
            panel.locator(".st-key-w-features_method button").filter(has_text=self.method).first.click()
        sent["feature space"] = time.monotonic()
        say(f"learner {self.index}: feature space ({self.method}) asked for")
        wait_idle(page)  # the picker is redrawn by the click above
        samples = page.locator(".st-key-try-finetune-sample button")
        samples.first.wait_for(timeout=120_000)  # the picker may still be on its way after the redraw
        samples.nth((round_no + 1) % samples.count()).click()
        sent["Grad-CAM"] = time.monotonic()
        say(f"learner {self.index}: photo {(round_no + 1) % samples.count() + 1} picked (Grad-CAM)")
        for tab in self.tabs():
            wait_idle(tab)
            for label in ("takehome.weights", "takehome.onnx"):
                name = re.compile(re.escape(EN[label].split("(")[0]))
                sent.setdefault("downloads", time.monotonic())
                tab.get_by_role("button", name=name).first.click()
                say(f"learner {self.index}: {'text' if tab is self.text else 'image'} {label.split('.')[1]} clicked")
        return sent

    def wait_round(self, sent: dict[str, float], expected_downloads: int) -> list[str]:
        """Wait for every result of the round; their times go into self.times. Returns failures."""
        failed = []
        page = self.image
        # the chart of the projection asked for, with its sentence ("... squeezed with t-SNE; computed in")
        words = "squeezed with " + self.method + ";"
        try:
            panel = self.feature_panel()
            panel.get_by_text(words).first.wait_for(timeout=240_000)
            panel.locator('[data-testid="stVegaLiteChart"]').first.wait_for(
                state="attached", timeout=30_000
            )  # drawn when scrolled to
            self.times.setdefault("feature space", []).append(time.monotonic() - sent["feature space"])
        except Exception as error:  # noqa: BLE001 -- a view that never came is a failure, not a crash
            try:  # what the learner sees there instead
                shown = " | ".join(self.feature_panel().inner_text(timeout=5_000).split("\n"))[:400]
                self.feature_panel().screenshot(path=str(self.folder / f"features-{self.index}.png"), timeout=10_000)
            except Exception as other:  # noqa: BLE001
                shown = f"(the panel could not be read: {str(other).splitlines()[0]})"
            failed.append(
                f"learner {self.index}: no feature-space chart for {self.method} ({str(error).splitlines()[0]}); shown: {shown}"
            )
        wait_idle(page, 240_000)
        self.times.setdefault("page idle again (Grad-CAM drawn)", []).append(time.monotonic() - sent["Grad-CAM"])
        deadline = time.monotonic() + DOWNLOAD_S
        while time.monotonic() < deadline and (len(self.downloads) < expected_downloads or set(self.begun) - set(self.ended)):
            page.wait_for_timeout(250)
        unfinished = {url for guid, url in self.begun.items() if guid not in self.ended}
        for guid, (_state, when) in self.ended.items():
            if guid not in self.timed:
                self.timed.add(guid)
                self.times.setdefault("download (all of a round's)", []).append(when - sent["downloads"])
        for _tab, download in self.downloads[self.checked :]:
            if download.url in unfinished:
                failed.append(
                    f"learner {self.index}: {download.suggested_filename} ({download.url}) not finished after {DOWNLOAD_S} s"
                )
                download.cancel()
                continue
            problem = download.failure()  # the download has ended: answers at once
            if problem:
                failed.append(f"learner {self.index}: {download.suggested_filename}: {problem}")
        came = sorted(download.suggested_filename for _tab, download in self.downloads[self.checked :])
        self.checked = len(self.downloads)
        got = len(self.downloads)
        if got < expected_downloads:
            failed.append(
                f"learner {self.index}: {expected_downloads - got} download(s) never came (this round: {', '.join(came) or 'none'})"
            )
            print(f"learner {self.index}, this round's /media requests and console errors:", *self.media, sep="\n  ", flush=True)
        self.media = []
        for tab in self.tabs():
            wait_idle(tab, 240_000)
            self.errors += error_count(tab)
        return failed


def summary(values: list[float]) -> str:
    values = sorted(values)
    return f"median {values[len(values) // 2]:.1f} s, worst {values[-1]:.1f} s" if values else "-"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--learners", type=int, default=3, help="learners, each with their own cookie (default 3)")
    ap.add_argument("--rounds", type=int, default=3, help="bursts of clicks (default 3)")
    ap.add_argument("--no-text", action="store_true", help="page 3 only: no text run, no text downloads")
    ap.add_argument("--settle", type=float, default=45, help="seconds after the burst before memory is read (default 45)")
    ap.add_argument(
        "--closed-wait",
        type=float,
        default=150,
        help="seconds after the tabs close before memory is read again (default 150: the sessions have ended)",
    )
    ap.add_argument("--run-timeout", type=float, default=600, help="seconds for every learner's set-up runs")
    args = ap.parse_args(argv)

    from playwright.sync_api import sync_playwright

    state = Path(tempfile.mkdtemp(prefix="tls-hammer-"))
    env = dict(os.environ, TLS_STATE_DIR=str(state))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(port, state / "streamlit.log", env)
    failures: list[str] = []
    try:
        if not wait_healthy(url):
            print(f"the server did not start: {state / 'streamlit.log'}", file=sys.stderr)
            return 2
        sampler = Sampler(server.pid, trace=str(state / "rss.csv"))  # each process's RSS and PSS, for a look after
        print(f"each process's memory every 0.5 s: {state / 'rss.csv'} (clock: time.monotonic, as T0={T0:.2f})", flush=True)
        sampler.start()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            learners = [Learner(browser, url, i + 1, not args.no_text, state) for i in range(args.learners)]
            begun = time.monotonic()
            # every learner's image run, then (one job a learner at a time) their text run
            for tab_of, path, key in (("image", "finetune", "start"), ("text", "text", "text_start")):
                tabs = [(learner, getattr(learner, tab_of)) for learner in learners if getattr(learner, tab_of)]
                for learner, tab in tabs:
                    learner.run(tab, path, key)
                for learner, tab in tabs:
                    learner.wait_run(tab, args.run_timeout)
            print(f"set-up: {len(learners)} learners' runs finished in {time.monotonic() - begun:.0f} s", flush=True)
            time.sleep(args.settle)  # the runs' own memory given back, as after the burst
            start_mb = sampler.read()[1]
            burst_from = len(sampler.samples)
            per_round = 2 + (2 if not args.no_text else 0)  # downloads a learner gets each round
            for r in range(args.rounds):
                sent = [learner.fire(r) for learner in learners]
                for learner, times in zip(learners, sent, strict=True):
                    failures += learner.wait_round(times, per_round * (r + 1))
                peak_so_far = max(s[1] for s in sampler.samples[burst_from:])
                print(f"round {r + 1}: peak so far {peak_so_far:.0f} MB", flush=True)
            time.sleep(args.settle)
            after_open = sampler.read()[1]
            errors = sum(learner.errors for learner in learners)
            times: dict[str, list[float]] = {}
            for learner in learners:
                for what, seconds in learner.times.items():
                    times.setdefault(what, []).extend(seconds)
            for learner in learners:
                learner.context.close()
            browser.close()
        time.sleep(args.closed_wait)  # Streamlit keeps a closed tab's session (and what it holds) 120 s for a reconnect
        after_closed = sampler.read()[1]
        peak = max(s[1] for s in sampler.samples[burst_from:])
        sampler.stop_flag.set()
    finally:
        stop_server(server)
    downloads = args.rounds * args.learners * per_round
    print(f"\n{args.learners} learners x {args.rounds} rounds: {downloads} downloads, feature views and Grad-CAM clicks")
    for what, seconds in times.items():
        print(f"  {what}: {summary(seconds)}")
    print(
        f"  server RSS: start {start_mb:.0f} MB, peak {peak:.0f} MB, after {after_open:.0f} MB (tabs open), {after_closed:.0f} MB (closed)"
    )
    ok_peak = peak < PEAK_GOAL_MB
    ok_back = after_open <= start_mb * (1 + BACK_WITHIN)
    print(f"  [{'ok' if ok_peak else 'FAIL'}] peak < {PEAK_GOAL_MB} MB")
    print(
        f"  [{'ok' if ok_back else 'FAIL'}] after the burst within {BACK_WITHIN:.0%} of the start ({after_open / start_mb:.2f}x)"
    )
    print(f"  [{'ok' if not failures else 'FAIL'}] every request answered{': ' + '; '.join(failures) if failures else ''}")
    print(f"  [{'ok' if not errors else 'FAIL'}] no error on any page ({errors})")
    return 0 if ok_peak and ok_back and not failures and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
