"""A server's warm-up (tlcore.serve.warm_up): the image pages' runs, then page 5's first text run,
so that the class's first press on either page finds its data, model and features ready.

Contracts: the order (the image demo first: it is what a class starts with); only models on this
machine (a warm-up never downloads); a run that fails does not stop the ones after it; and, for
real, the text page's first run after the warm-up finds its encoder's features instead of
computing them (tests/test_text_page.py checks that the page's first Start is that run).
"""

from __future__ import annotations

import pytest

from tlcore.data import feature_cache
from tlcore.serve import warm_up
from tlcore.text import bert, first_run
from tlcore.train import presets, recipe


@pytest.mark.fast
def test_the_image_runs_come_first_then_the_text_pages_first_runs(monkeypatch):
    monkeypatch.setattr(bert, "is_cached", lambda name: name == "minilm_l6")
    configs = warm_up.configs()
    image = presets.warm_ups()
    assert configs[: len(image)] == image and all(c.task == "image" for c in image)
    text = configs[len(image) :]
    assert text == (first_run.config(korean=False), first_run.config(korean=True))
    assert [c.backbone for c in text] == ["minilm_l6", "minilm_l6"] and text[1].dataset == "sentiment_ko"


@pytest.mark.fast
def test_only_models_on_this_machine_are_warmed(monkeypatch):
    monkeypatch.setattr(bert, "is_cached", lambda name: False)
    assert first_run.warm_ups() == ()  # the page's fallback model is not here: nothing to warm
    monkeypatch.setattr(bert, "is_cached", lambda name: name in ("minilm_l6", "klue_bert"))
    english, korean = first_run.warm_ups()
    assert (english.backbone, korean.backbone) == ("minilm_l6", "klue_bert")


@pytest.mark.fast
def test_a_failing_run_does_not_stop_the_next_and_stop_is_heard_between_runs(monkeypatch):
    runs = [presets.image(), presets.image().replace(seed=1), presets.image().replace(seed=2)]
    monkeypatch.setattr(warm_up, "configs", lambda: tuple(runs))
    seen = []

    def fake(config, should_stop):
        seen.append(config.seed)
        if config.seed == 0:
            raise RuntimeError("no data")
        return True

    monkeypatch.setattr(recipe, "warm_up", fake)
    assert warm_up.run_all() == 2 and seen == [0, 1, 2]
    seen.clear()
    assert warm_up.run_all(should_stop=lambda: len(seen) == 2) == 1 and seen == [0, 1]


def test_after_the_warm_up_the_text_pages_first_run_finds_its_features(monkeypatch):
    """Real: MiniLM reads the page's first run's sentences once, in the warm-up; the run then
    trains on the kept features (the default run cold 4.2-4.4 s, warm 0.65-0.9 s, tools.textrun)."""
    config = first_run.config(korean=False)
    if not bert.is_cached(config.backbone):
        pytest.skip(f"{config.backbone} is not on this machine")
    monkeypatch.setattr(presets, "warm_ups", lambda: ())
    monkeypatch.setattr(first_run, "warm_ups", lambda: (config,))
    feature_cache.shared.clear()
    assert warm_up.run_all() == 1
    misses = feature_cache.shared.misses
    result = recipe.run(config, lambda event: None)
    assert feature_cache.shared.misses == misses and feature_cache.shared.hits >= 1
    assert "encode_s" not in result.extra  # the encoder did not run
    feature_cache.shared.clear()
