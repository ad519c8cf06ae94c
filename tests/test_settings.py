"""tlcore.core.settings: every TLS_* variable in one table, read when used, the README's table the same."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tlcore import cli
from tlcore.core import settings

pytestmark = pytest.mark.fast  # every test of this module is in the fast tier (`pytest -m fast`)

ROOT = Path(__file__).resolve().parent.parent
CODE = [*ROOT.glob("tlcore/**/*.py"), *ROOT.glob("studio/**/*.py"), *ROOT.glob("pages/*.py"), ROOT / "app.py", ROOT / "frame.py"]


def _names_in_code() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in CODE:
        for name in re.findall(r"\bTLS_[A-Z][A-Z0-9_]*[A-Z0-9]\b", path.read_text(encoding="utf-8")):
            found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_variable_the_code_names_is_in_the_one_table_and_every_entry_is_used():
    named = _names_in_code()
    assert set(named) - set(settings.BY_NAME) == set(), {n: named[n] for n in set(named) - set(settings.BY_NAME)}
    source = {p: p.read_text(encoding="utf-8") for p in CODE if p.name != "settings.py"}
    unused = [s.name for s in settings.SETTINGS if not any(f'"{s.name}"' in text for text in source.values())]
    assert unused == []


def test_no_module_reads_a_tls_variable_from_the_environment_itself():
    direct = re.compile(r"(os\.environ(\.get)?[\[(]|os\.getenv\()\s*[\"']TLS_")
    readers = [str(p.relative_to(ROOT)) for p in CODE if p.name != "settings.py" and direct.search(p.read_text(encoding="utf-8"))]
    assert readers == []


def test_a_setting_is_read_when_used_parsed_as_its_kind_and_a_bad_value_says_what_to_write(monkeypatch):
    monkeypatch.delenv("TLS_WORKER_NICE", raising=False)
    assert settings.get("TLS_WORKER_NICE") == 10  # the default, as an int
    monkeypatch.setenv("TLS_WORKER_NICE", " 5 ")
    assert settings.get("TLS_WORKER_NICE") == 5  # changed without a re-import
    monkeypatch.setenv("TLS_FEATURE_CACHE_MB", "0.5")
    assert settings.get("TLS_FEATURE_CACHE_MB") == 0.5
    monkeypatch.setenv("TLS_TRAIN_IN_PROCESS", "yes")
    assert settings.get("TLS_TRAIN_IN_PROCESS") is True
    monkeypatch.delenv("TLS_STORED_RUNS_PER_LEARNER", raising=False)
    assert settings.get("TLS_STORED_RUNS_PER_LEARNER") is None  # the class file's, else ClassLimits' own default
    monkeypatch.setenv("TLS_WORKER_NICE", "ten")
    with pytest.raises(ValueError, match=r"TLS_WORKER_NICE='ten' is not a whole number; .* e\.g\. TLS_WORKER_NICE=10"):
        settings.get("TLS_WORKER_NICE")
    monkeypatch.setenv("TLS_WORKER_NICE", "2.5")
    with pytest.raises(ValueError, match="whole number"):
        settings.get("TLS_WORKER_NICE")
    with pytest.raises(KeyError, match="not a studio setting"):
        settings.get("TLS_NO_SUCH_THING")


def test_a_cache_bound_follows_its_setting_without_a_restart(monkeypatch):
    import torch

    from tlcore.data import feature_cache

    monkeypatch.setenv("TLS_FEATURE_CACHE_MB", "1")
    assert feature_cache.shared.limit == 2**20
    feature_cache.shared.clear()
    try:
        assert feature_cache.shared.put("big", (torch.zeros(2**19),)) is False  # 2 MB: over a 1 MB bound
        monkeypatch.setenv("TLS_FEATURE_CACHE_MB", "4")
        assert feature_cache.shared.put("big", (torch.zeros(2**19),)) is True
    finally:
        feature_cache.shared.clear()


def test_the_readme_holds_the_table_and_the_cli_prints_it_hiding_a_secret(monkeypatch, capsys):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert settings.table() in readme, "README's settings table differs: paste `python -m tlcore settings`'s table"
    monkeypatch.setenv("TLS_TEACHER_SECRET", "correct horse battery")
    monkeypatch.setenv("TLS_WORKER_NICE", "5")
    assert cli.main(["settings"]) == 0
    out = capsys.readouterr().out
    assert settings.table() in out and "TLS_WORKER_NICE = 5" in out
    assert "correct horse" not in out and "TLS_TEACHER_SECRET = (set, not shown)" in out
