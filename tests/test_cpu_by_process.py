"""tools.cpu_by_process: where a command's CPU goes, by kind of process (issue 33, item 7)."""

from __future__ import annotations

import sys

import pytest

from tools.cpu_by_process import kind_of, main, watch

pytestmark = [pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"), pytest.mark.fast]


def test_the_kinds_are_told_apart_by_their_command_lines():
    assert kind_of("/usr/lib/chromium/chromium --type=renderer --lang=en") == "chromium renderer"
    assert kind_of("/usr/lib/chromium/chromium --type=gpu-process") == "chromium gpu"
    assert kind_of("/usr/lib/chromium/chromium --headless") == "chromium other"
    assert kind_of("/x/.venv/bin/python -m streamlit run app.py --server.port 8501") == "streamlit server"
    assert kind_of("/x/.venv/bin/python -u -c import sys;exec(eval(sys.stdin.readline()))") == "pytest-xdist worker"
    assert kind_of("/x/.venv/bin/python -m tlcore.serve.process_jobs 27") == "training worker"
    spin = "/x/.venv/bin/python -c import os parent = os.getppid() while os.getppid() == parent: pass"
    assert kind_of(spin) == kind_of("python -c while True: pass") == "busy loop (a test's load)"
    assert kind_of("/usr/bin/make -j2 all") == "other: /usr/bin/make -j2 all"


def test_a_child_that_spins_half_a_second_is_counted_and_its_exit_code_kept():
    spin = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass\nraise SystemExit(3)"
    code, spent, busy, wall = watch([sys.executable, "-c", spin], every_s=0.1)
    assert code == 3
    mine = spent[kind_of(f"{sys.executable} -c {spin}")]  # (other processes on the box are counted too)
    assert 0.5 <= mine <= wall + 0.5, spent  # the spin, and not more than it could have used
    assert busy >= mine - 0.1


def test_without_a_command_it_says_what_to_give(capsys):
    with pytest.raises(SystemExit):
        main([])
    assert "give the command to run after --" in capsys.readouterr().err
