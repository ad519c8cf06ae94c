"""Every CLI command's default works offline (issue 32, item 4).

The quick commands run for real here with every outside connection refused; the experiments
(minutes each with their defaults) are checked by what their defaults need: each backbone they
name is on this machine or falls back to one that is (tlcore.models.catalog.resolve_pretrained,
offline), and each dataset loads here. Commands that act on a learner's own files (a model, a
store) have nothing to default to. A new command must be put in one of the three lists."""

from __future__ import annotations

import argparse
import socket

import pytest

from tlcore import cli
from tlcore.models import catalog

pytestmark = pytest.mark.fast  # every test of this module is in the fast tier (`pytest -m fast`)

# run for real (the network closed): extra arguments (only where the default writes into the repository) and words the output holds
RUN_HERE = {
    "list": ([], "backbones:"),
    "settings": ([], "| `TLS_STATE_DIR` |"),
    "fill-mask": (["The cat is on the [MASK]."], "[MASK]"),
    "filters": (["--out", "{tmp}/filters.png"], ""),
    "prefetch": ([], ""),
}
# minutes with their defaults: checked by what they need
EXPERIMENTS = (
    "finetune", "compare", "class-experiment", "bench", "text-bench", "pretrain-text", "text-scale", "pretrain",
    "matrix", "transfer-depth", "estimate", "upload-bench", "export-check", "forgetting", "feature-space",
)  # fmt: skip
# act on the learner's own files: no default to work from
OWN_FILES = {
    "runs": "a store to export or back up",
    "predict": "a downloaded model and inputs",
    "notebook": "a saved model folder",
}


def commands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


@pytest.fixture
def offline(monkeypatch):
    """Every outside connection refused (a classroom without internet); the machine's own is allowed."""
    real = socket.socket.connect

    def connect(sock, address):
        host = address[0] if isinstance(address, tuple) else ""
        if host and host not in ("127.0.0.1", "::1", "localhost"):
            raise OSError(f"offline (test): no connection to {host}")
        return real(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: (_ for _ in ()).throw(OSError("offline (test)")))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_every_command_is_run_checked_or_said_to_need_files():
    assert set(commands()) == set(RUN_HERE) | set(EXPERIMENTS) | set(OWN_FILES)


@pytest.mark.parametrize("name", sorted(RUN_HERE))
def test_a_quick_commands_default_runs_offline(name, offline, tmp_path, capsys):
    extra, words = RUN_HERE[name]
    assert cli.main([name, *(a.replace("{tmp}", str(tmp_path)) for a in extra)]) == 0
    out = capsys.readouterr()
    assert words in out.out and "Traceback" not in out.err
    if name == "filters":
        assert (tmp_path / "filters.png").stat().st_size > 1000


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_an_experiments_defaults_need_nothing_from_the_network(name, offline):
    ns = commands()[name].parse_args([])
    values = vars(ns)
    backbones = [values[k] for k in ("backbone", "backbones") if values.get(k)]
    datasets = [values[k] for k in ("dataset", "datasets") if values.get(k)]
    for backbone in (b for v in backbones for b in str(v).split(",")):
        # the one fallback rule a run follows: raises when nothing here would do
        resolved, pretrained, _note = catalog.resolve_pretrained(backbone, values.get("pretrained", "auto"), online=False)
        assert not pretrained or catalog.weights_cached(resolved), (name, backbone, resolved)
    for dataset in (d for v in datasets for d in str(v).split(",")):
        assert catalog.available(dataset), (name, dataset)
