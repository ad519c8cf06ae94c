"""The README's layout table is the map a newcomer reads: it must name every module on disk
(a module added or moved without the table fails here), and nothing that is gone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["tlcore/core", "tlcore/data", "tlcore/models", "tlcore/train", "tlcore/lab", "tlcore/serve", "studio"]


def layout_rows() -> dict[str, str]:
    """The layout table's rows: '`tlcore/core/`' -> the row's text."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].startswith("`"):
            rows[cells[0]] = cells[1]
    return rows


@pytest.mark.parametrize("package", PACKAGES)
def test_the_layout_table_names_every_module_of_each_package_and_nothing_gone(package):
    row = layout_rows().get(f"`{package}/`")
    assert row is not None, f"README's layout table has no row for {package}/"
    named = set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)", row))
    on_disk = {p.stem for p in (ROOT / package).glob("*.py") if p.stem != "__init__"}
    assert on_disk - named == set(), f"README's row for {package}/ does not name: {sorted(on_disk - named)}"
    # what else the row names must still exist: a function, class or constant of the package (`fit`, `BatchSource`)
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / package).rglob("*.py"))
    gone = {n for n in named - on_disk if not re.search(rf"^\s*(def|class) {n}\b|^{n}\b\s*[:=]", source, re.M)}
    assert gone == set(), f"README's row for {package}/ names what is gone: {sorted(gone)}"


def test_tests_is_a_package_that_an_installed_tests_package_cannot_shadow(tmp_path):
    """A package that ships a top-level `tests` (some wheels do) sits in site-packages. Were this
    folder a namespace package (no __init__.py), Python would take that regular package instead,
    wherever it is on the path, and every `from tests.helpers ...` would fail."""
    import os
    import subprocess
    import sys

    shadow = tmp_path / "site" / "tests"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("SHADOW = True\n")
    code = "import tests, tests.helpers.fakes; print(tests.__file__)"
    env = {"PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path / 'site'}", "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-800:]
    assert Path(out.stdout.strip()) == ROOT / "tests" / "__init__.py"
