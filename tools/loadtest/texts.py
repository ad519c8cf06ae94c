"""What the pages say, as patterns: the app's own English (and Korean) strings from
assets/i18n, so a student (browser or websocket) can tell waiting, running, done, stopped,
failed and an error box apart."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
EN = json.loads((ROOT / "assets" / "i18n" / "en.json").read_text())
KO = json.loads((ROOT / "assets" / "i18n" / "ko.json").read_text())
# Something broke on a page: a raw exception box, or the one line the app shows instead of one
# (app.py for a page's exception, studio.state.callback for a click's), in either language.
APP_ERRORS = [lang[key].split("(")[0] for lang in (EN, KO) for key in ("error.page", "error.callback")]
WAITING = re.compile(re.escape(EN["job.waiting"]).replace(r"\{position\}", r"(\d+)").split(r"\.")[0])
RUNNING = re.compile(r"Run \d+ of \d+ \(")
DONE = re.compile(re.escape(EN["job.done"]).replace(r"\{seconds\}", r"[\d.]+"))
HAS_POINTS = re.compile(r'"[xy]":\s*\[\s*[-\d]')  # a trace with data in a plotly spec
# A stopped run says why: stopped by its learner, at the class's time limit, its tab closed, the teacher.
STOPPED = "|".join(
    re.escape(EN[k].split("{")[0]) for k in ("job.cancelled", "job.note.time_limit", "job.note.closed", "job.note.teacher")
)
FAILED = EN["job.failed"].split("{")[0]
