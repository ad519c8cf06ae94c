"""The suite's lanes under pytest-xdist (`-n 2 --dist loadgroup`, as .ci/run runs it): the tests that
share a Streamlit server or the Ray head run one after another on one worker (tests/conftest.py gives
them their xdist_group). Checked in a pytest of its own, on four throwaway tests marked `ray`: with
the groups lost (pytest 9.2 with xdist 3.8, or the conftest's marks given after xdist read them) they
went to both workers, silently."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT

pytest.importorskip("xdist")

LANE_TESTS = textwrap.dedent(
    """
    import os

    import pytest


    @pytest.mark.ray
    @pytest.mark.parametrize("n", range(4))
    def test_one_of_a_lane(n):
        with open(os.environ["LANE_LOG"], "a") as log:
            log.write(os.environ["PYTEST_XDIST_WORKER"] + "\\n")
    """
)


def test_a_lanes_tests_run_on_one_worker_under_xdist(tmp_path):
    (tmp_path / "test_lane.py").write_text(LANE_TESTS, encoding="utf-8")
    log = tmp_path / "workers.txt"
    env = dict(os.environ, LANE_LOG=str(log), PYTHONPATH=str(ROOT))
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_XDIST_WORKER_COUNT", None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest", "-n", "2",
         "--dist", "loadgroup", "-W", "ignore::pytest.PytestUnknownMarkWarning", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    workers = log.read_text().split()
    assert len(workers) == 4 and len(set(workers)) == 1, workers
