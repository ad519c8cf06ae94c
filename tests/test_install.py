"""tools/install.sh looks for room on the disk before it writes anything (stop 68's CI run died of a
full disk halfway through pip, with nothing but "[Errno 28] No space left on device" to go on).

`df` is replaced on PATH by one that reports a small disk, so these tests install nothing: the
script must stop, say how much it needs and what to do, and leave no environment behind.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def _small_disk(tmp_path: Path, free_gb: int) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    df = bin_dir / "df"
    df.write_text(
        "#!/bin/sh\n"
        'echo "Filesystem 1024-blocks Used Available Capacity Mounted on"\n'
        f'echo "/dev/small 99999999 1 {free_gb * 1024 * 1024} 1% /"\n'
    )
    df.chmod(0o755)
    return bin_dir


def _install(tmp_path: Path, free_gb: int, **env: str) -> subprocess.CompletedProcess[str]:
    venv = tmp_path / "place" / ".venv"
    venv.parent.mkdir()
    full_env = {
        **os.environ,
        "PATH": f"{_small_disk(tmp_path, free_gb)}{os.pathsep}{os.environ['PATH']}",
        "VENV": str(venv),
        "TMPDIR": str(tmp_path),
        **env,
    }
    return subprocess.run(
        ["bash", str(REPO / "tools" / "install.sh")],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )


@pytest.mark.parametrize(
    ("index", "needed"),
    [("", 9), (CPU_INDEX, 4)],
    ids=["cuda-build", "cpu-wheels"],
)
def test_a_full_disk_stops_the_install_before_it_writes_anything(tmp_path, index, needed):
    result = _install(tmp_path, free_gb=2, TORCH_INDEX_URL=index)

    assert result.returncode == 1, result.stdout + result.stderr
    assert f"only 2 GB free in {tmp_path / 'place'}" in result.stderr
    assert f"needs about {needed} GB there" in result.stderr
    assert "Nothing was installed" in result.stderr
    assert "VENV=" in result.stderr and "TMPDIR=" in result.stderr
    assert not (tmp_path / "place" / ".venv").exists()
    assert "installing with apt" not in result.stdout


def test_the_figure_asked_for_can_be_set(tmp_path):
    """TLS_INSTALL_FREE_GB: a machine that knows better (a wheel cache elsewhere) sets the figure."""
    result = _install(tmp_path, free_gb=5, TORCH_INDEX_URL="", TLS_INSTALL_FREE_GB="6")

    assert result.returncode == 1
    assert "only 5 GB free" in result.stderr and "needs about 6 GB" in result.stderr
    assert not (tmp_path / "place" / ".venv").exists()
