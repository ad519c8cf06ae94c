"""The README's layout table is the map a newcomer reads: it must name every module on disk
(a module added or moved without the table fails here), and nothing that is gone."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = [
    "tlcore/core",
    "tlcore/data",
    "tlcore/models",
    "tlcore/train",
    "tlcore/text",
    "tlcore/lab",
    "tlcore/serve",
    "tlcore/takehome",
    "studio",
]


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


@pytest.mark.fast
@pytest.mark.parametrize("package", PACKAGES)
def test_the_layout_table_names_every_module_of_each_package_and_nothing_gone(package):
    rows = layout_rows()
    row = rows.get(f"`{package}/`")
    assert row is not None, f"README's layout table has no row for {package}/"
    named = set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)", row))
    on_disk = {p.stem for p in (ROOT / package).glob("*.py") if p.stem != "__init__"}
    # a subpackage without a row of its own (`tlcore/lab/experiments/`): this row names it and its modules
    for sub in sorted(p.parent for p in (ROOT / package).glob("*/__init__.py")):
        if f"`{package}/{sub.name}/`" not in rows:
            on_disk |= {sub.name} | {p.stem for p in sub.glob("*.py") if p.stem != "__init__"}
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


# The files whose paths and dotted names a newcomer or a tool follows (issue 33, item 6; issue 55, item 4).
PATH_FILES = ["README.md", "pyproject.toml", ".streamlit/config.toml", "Dockerfile", "compose.yaml", ".ci/run"]
DOCSTRING_PACKAGES = ("tlcore", "studio", "tools")


def written_texts() -> dict[str, str]:
    """Where paths and names are written for a reader: PATH_FILES, requirements*.txt, docs/*.md,
    assets/**/*.json and the docstrings (each module's, class's and function's) of tlcore/, studio/
    and tools/: 'where' -> its text."""
    files = PATH_FILES + sorted(p.name for p in ROOT.glob("requirements*.txt"))
    files += sorted(p.relative_to(ROOT).as_posix() for pattern in ("docs/*.md", "assets/**/*.json") for p in ROOT.glob(pattern))
    texts = {name: (ROOT / name).read_text(encoding="utf-8") for name in files if (ROOT / name).exists()}
    for package in DOCSTRING_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            kinds = ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
            docs = [ast.get_docstring(n, clean=False) for n in [tree, *functions_and_classes(tree.body)] if isinstance(n, kinds)]
            texts[f"{path.relative_to(ROOT).as_posix()} (docstrings)"] = "\n".join(d for d in docs if d)
    return texts


def functions_and_classes(body: list) -> Iterator[ast.AST]:
    """Every def and class among these statements and inside them (where a docstring can be)."""
    for node in body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            yield node
        for field in ("body", "orelse", "finalbody", "handlers"):
            yield from functions_and_classes(getattr(node, field, []))


def top_level_entries() -> set[str]:
    """The repository's own top-level files and folders: what git tracks (not .venv, nor what a run
    leaves, test-artifacts/), or what is on disk outside a git checkout."""
    import subprocess

    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode == 0 and listed.stdout:
        return {name.split("/", 1)[0] for name in listed.stdout.split("\0") if name}
    return {p.name for p in ROOT.iterdir() if p.name not in (".git", ".venv")}


def named_paths(text: str) -> set[str]:
    """Every path in `text` that starts at one of the repository's top-level entries
    (`tlcore/serve/jobs.py`, `docs/`, `.ci/run`), as written (no trailing dot or slash; a word of
    another script after it, Korean's `assets/results/에`, is not part of it)."""
    tops = sorted(top_level_entries(), key=len, reverse=True)
    alternatives = "|".join(re.escape(t) for t in tops)
    pattern = re.compile(rf"(?<![\w/.:~$-])((?:{alternatives})(?:/[A-Za-z0-9_.*-]+)*/?)")
    return {m.group(1).rstrip("./") or m.group(1) for m in pattern.finditer(text)}


def resolves(path: str) -> bool:
    """On disk, as a file, a folder, a glob's match, a prefix of files a command writes
    (`--out assets/results/forgetting`: forgetting.csv, ...), or a module's attribute
    (`tlcore/train/recipe.run`)."""
    if "*" in path:
        return any(ROOT.glob(path))
    target = ROOT / path
    if target.exists() or any(target.parent.glob(target.name + "*")):
        return True
    module, _, _attr = path.rpartition(".")
    return bool(module) and (ROOT / f"{module}.py").exists()


@pytest.mark.fast
def test_every_path_the_readme_the_docs_the_settings_the_assets_and_the_docstrings_name_exists():
    missing = [
        f"{where}: {path}" for where, text in written_texts().items() for path in sorted(named_paths(text)) if not resolves(path)
    ]
    assert missing == [], f"paths written that do not exist (where: path): {missing}"


@pytest.mark.fast
def test_the_path_check_sees_a_stale_path():
    assert named_paths("see `tools/loadtest.py` and tlcore/serve/jobs.py.") == {"tools/loadtest.py", "tlcore/serve/jobs.py"}
    assert not resolves("tools/loadtest.py") and resolves("tools/loadtest") and resolves("tlcore/train/recipe.run")
    assert not resolves("tlcore/serve/nothing.here")
    assert named_paths("assets/results/에 있습니다") == {"assets/results"}


DOTTED = re.compile(r"(?<![\w./-])((?:tlcore|studio|tools)(?:\.[A-Za-z_]\w*)+)")


def dotted_names(text: str) -> set[str]:
    """Every dotted name of the repository's packages in `text` (`tlcore.serve.jobs.JobQueue`,
    `python -m tools.fast_tier`), as written (a sentence's last dot is not part of it)."""
    return set(DOTTED.findall(text))


def importable(name: str) -> str:
    """'' when importlib finds the module `name`, or its longest module prefix has the rest as
    attributes (`tlcore.serve.jobs.JobQueue`, `tlcore.core.events.RunResult.val_acc`); else why not."""
    import importlib
    import importlib.util

    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        module = ".".join(parts[:i])
        try:
            if importlib.util.find_spec(module) is None:
                continue
        except ImportError:
            continue
        if i == len(parts):
            return ""  # a module (never imported: `tlcore.__main__` would run)
        try:
            obj = importlib.import_module(module)
        except Exception as error:  # noqa: BLE001 -- said in the failure, whatever it is
            return f"{module} does not import: {error!r}"
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                return f"{module} has no {'.'.join(parts[i:])}"
            obj = getattr(obj, attr)
        return ""
    return "no such module"


def test_every_dotted_name_the_readme_the_docs_the_settings_the_assets_and_the_docstrings_write_resolves():
    stale = [
        f"{where}: {name} ({why})"
        for where, text in written_texts().items()
        for name in sorted(dotted_names(text))
        if (why := importable(name))
    ]
    assert stale == [], f"dotted names written that do not resolve (where: name (why)): {stale}"


@pytest.mark.fast
def test_the_name_check_sees_a_stale_dotted_name():
    text = "see tlcore.ray_jobs, `tlcore.serve.jobs.JobQueue`, python -m tools.fast_tier and tlcore.serve."
    assert dotted_names(text) == {"tlcore.ray_jobs", "tlcore.serve.jobs.JobQueue", "tools.fast_tier", "tlcore.serve"}
    assert dotted_names("assets/backbones/studio_resnet.json, tlcore/serve.py") == set()
    assert importable("tlcore.serve.jobs.JobQueue") == importable("tools.fast_tier") == importable("tlcore.__main__") == ""
    assert (
        importable("tlcore.ray_jobs") == "tlcore has no ray_jobs"
        and importable("studio.nothing.here") == "studio has no nothing.here"
    )
    assert importable("tlcore.serve.jobs.keep_freed_memory") == "tlcore.serve.jobs has no keep_freed_memory"


# What the fast tier must reach: a pattern each package's users write.
TIER_REACHES = {
    "tlcore.core": r"tlcore\.core\b|from tlcore import core",
    "tlcore.data": r"tlcore\.data\b",
    "tlcore.models": r"tlcore\.models\b",
    "tlcore.train": r"tlcore\.train\b",
    "tlcore.serve": r"tlcore\.serve\b",
    "tlcore.lab": r"tlcore\.lab\b",
    "tlcore.takehome": r"tlcore\.takehome\b",
    "tlcore.explain": r"tlcore\.explain\b",
    "studio": r"^\s*(from|import) studio\b",
    "pages": r"pages/\d_\w+\.py",
}
NOT_FAST = {"slow", "browser", "ray"}  # a test with one of these marks is never in the fast tier


def marks_in(node: ast.AST, aliases: dict[str, set[str]]) -> set[str]:
    """The `pytest.mark.X` names written in an expression (a decorator, a `pytestmark`, a case's
    `marks=`), a module-level alias (`needs_checkpoint = pytest.mark.skipif(...)`) read through."""
    found = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Attribute) and n.value.attr == "mark":
            found.add(n.attr)
        elif isinstance(n, ast.Name) and n.id in aliases:
            found |= aliases[n.id]
    return found


def fast_tests(path: Path) -> dict[str, set[str]]:
    """The tests of a module that are in the fast tier, each with every mark it carries: 'name' for
    a function marked fast (or a module whose `pytestmark` is), 'name[case]' for a parametrized case
    marked fast with `pytest.param(..., marks=pytest.mark.fast)`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    aliases: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            aliases[node.targets[0].id] = marks_in(node.value, aliases)
    module = aliases.get("pytestmark", set())
    found = {}
    for node in tree.body:
        if not (isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_")):
            continue
        marks = set(module)
        cases = []
        for deco in node.decorator_list:
            params = [c for c in ast.walk(deco) if isinstance(c, ast.Call) and getattr(c.func, "attr", "") == "param"]
            if params:
                cases += [marks_in(k.value, aliases) for c in params for k in c.keywords if k.arg == "marks"]
            else:
                marks |= marks_in(deco, aliases)
        if "fast" in marks:
            found[node.name] = marks | set().union(*cases)
        for i, case in enumerate(cases):
            if "fast" in case:
                found[f"{node.name}[{i}]"] = marks | case
    return found


@pytest.mark.fast
def test_no_fast_test_is_also_slow_browser_or_ray():
    both = [
        f"{path.name}::{name}: {sorted(marks & NOT_FAST)}"
        for path in sorted((ROOT / "tests").glob("test_*.py"))
        for name, marks in fast_tests(path).items()
        if marks & NOT_FAST
    ]
    assert both == [], f"a fast test (pytest -m fast) is never slow, browser or ray: {both}"


@pytest.mark.fast
def test_the_fast_tier_check_reads_every_way_of_marking(tmp_path):
    module = tmp_path / "test_example.py"
    module.write_text(
        "import pytest\n"
        "heavy = pytest.mark.slow\n"
        "@pytest.mark.fast\n"
        "def test_quick(): pass\n"
        "@heavy\n"
        "@pytest.mark.fast\n"
        "def test_both(): pass\n"
        "@pytest.mark.parametrize('n', [1, pytest.param(2, marks=[pytest.mark.fast, pytest.mark.ray])])\n"
        "def test_cases(n): pass\n"
        "def test_not_fast(): pass\n"
    )
    found = fast_tests(module)
    assert set(found) == {"test_quick", "test_both", "test_cases[0]"}
    assert found["test_both"] & NOT_FAST == {"slow"} and found["test_cases[0]"] & NOT_FAST == {"ray"}
    module.write_text("import pytest\npytestmark = [pytest.mark.fast]\ndef test_a(): pass\n")
    assert set(fast_tests(module)) == {"test_a"}


@pytest.mark.fast
def test_the_fast_tier_reaches_every_package():
    """`pytest -m fast` holds tests from modules that use each package of the engine, the studio
    and the pages (read from the modules' sources)."""
    modules = [path for path in sorted((ROOT / "tests").glob("test_*.py")) if fast_tests(path)]
    assert len(modules) > 10, modules
    sources = "\n".join(path.read_text(encoding="utf-8") for path in modules)
    missing = [p for p, pattern in TIER_REACHES.items() if not re.search(pattern, sources, re.M)]
    assert missing == [], f"the fast tier reaches no test of {missing}: mark one `@pytest.mark.fast`"


@pytest.mark.fast
def test_the_fast_tier_is_measured_against_its_budget_and_says_which_marks_to_change():
    from tools import fast_tier

    log = """
0.20s call     tests/test_a.py::test_one
0.05s setup    tests/test_a.py::test_one
0.01s call     tests/test_a.py::test_two
2.00s call     tests/test_b.py::test_slow[x]
0.10s call     tests/test_b.py::test_three
"""
    seconds = fast_tier.durations(log)
    assert seconds == pytest.approx({"tests/test_a.py::test_one": 0.25, "tests/test_a.py::test_two": 0.01,
                                     "tests/test_b.py::test_slow[x]": 2.0, "tests/test_b.py::test_three": 0.1})  # fmt: skip
    assert fast_tier.choose(seconds, max_s=0.3, budget_s=10) == [
        "tests/test_a.py::test_one",
        "tests/test_a.py::test_two",
        "tests/test_b.py::test_three",
    ]
    assert fast_tier.choose(seconds, max_s=0.3, budget_s=0.2) == ["tests/test_a.py::test_two", "tests/test_b.py::test_three"]
    marked = fast_tier.node_ids("tests/test_a.py::test_two\ntests/test_b.py::test_slow[x]\n\n2/5 tests collected in 0.1s\n")
    assert marked == {"tests/test_a.py::test_two", "tests/test_b.py::test_slow[x]"}
    lines = fast_tier.report(seconds, marked, max_s=0.3, budget_s=0.3)
    assert lines[0] == "the fast tier: 2 tests marked, 2.0 s of measured test time (budget 0 s)"
    assert lines[1:] == [
        "  take the mark off (over 0.3 s): tests/test_b.py::test_slow[x] (2.00 s)",
        "  mark (fits the budget): tests/test_b.py::test_three (0.10 s)",
    ]


# Issue 55: a module a newcomer reads in one sitting, a function that fits on a screen.
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 700, 60


def product_files() -> list[Path]:
    """The product's Python: the engine, the studio's helpers, the pages, the app and its frame (not tests or tools)."""
    globs = ("tlcore/**/*.py", "studio/**/*.py", "pages/*.py", "app.py", "frame.py")
    return sorted(p for pattern in globs for p in ROOT.glob(pattern))


def too_long(path: Path) -> list[str]:
    """The module if it is over MAX_MODULE_LINES, and every function over MAX_FUNCTION_LINES (methods,
    async and nested ones too), counted from its `def` line to its last: 'path:line name: n lines'."""
    text = path.read_text(encoding="utf-8")
    name = path.relative_to(ROOT).as_posix()
    count = len(text.splitlines())
    found = [f"{name}: {count} lines"] if count > MAX_MODULE_LINES else []
    for node in functions(ast.parse(text, filename=name).body):
        lines = node.end_lineno - node.lineno + 1
        if lines > MAX_FUNCTION_LINES:
            found.append(f"{name}:{node.lineno} {node.name}: {lines} lines")
    return found


def functions(body: list) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    """Every function among these statements and in their bodies. A def is always a statement, so
    the expressions (most of a tree's nodes) are never visited: ast.walk took as long as the parse."""
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):  # if/for/while/with/try/match/class/def
            yield from functions(getattr(node, field, []))


def test_no_product_module_over_700_lines_and_no_function_over_60():
    files = product_files()
    assert ROOT / "app.py" in files and ROOT / "tlcore" / "cli.py" in files
    found = [line for path in files for line in too_long(path)]
    assert found == [], f"over {MAX_MODULE_LINES} lines a module or {MAX_FUNCTION_LINES} a function, split: {found}"
