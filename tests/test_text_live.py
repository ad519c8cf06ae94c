"""A text run's curves live while it trains (issue 56, item 4).

A linear probe spends nearly all its time in the frozen encoder. Its [CLS] vectors used to be
computed for every sentence before the first step, so the Text page showed "preparing" and then
the whole curve at once; now the first epoch encodes batch by batch as it trains
(tlcore.text.batches.TextSource.prepare). The contracts: steps arrive while the encoder still
reads, each sentence is read once, a run that finds the features ends exactly as one that
computed them, and the page draws the curve of a real text run that is still going.

Models are tiny BERTs saved into a temporary folder (tests.helpers.text_tiny), run through the
real recipe; nothing here waits on a clock, only on the run's own events.
"""

from __future__ import annotations

import threading

import pytest

from tests.helpers.apptest import app, job_of, ok, wait_until_done
from tests.helpers.text_tiny import save_tiny_model
from tests.test_text import config_for
from tlcore.core.events import Done, EvalEvent, Started, StepEvent
from tlcore.data import feature_cache
from tlcore.text import bert as models
from tlcore.train import recipe
from tlcore.train.config import RunConfig


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    # wider weights than BERT's own init, so each sentence has its own vector (see tests/test_text.py)
    return str(save_tiny_model(tmp_path_factory.mktemp("bert"), family="bert", init_range=0.2))


def probe(model_dir: str, **kw) -> RunConfig:
    """A linear probe of the tiny model on the English samples: 48 sentences in 6 batches, 16 to check."""
    return config_for(model_dir, **({"strategy": "linear_probe", "epochs": 3} | kw))


@pytest.fixture
def sentences_read(monkeypatch):
    """How many sentences the frozen encoder has read so far, all models (a list: one count)."""
    read = [0]
    real = models.TextClassifier.encode_cls

    def counted(self, batch):
        read[0] += len(batch["input_ids"])
        return real(self, batch)

    monkeypatch.setattr(models.TextClassifier, "encode_cls", counted)
    return read


def run_logged(config: RunConfig, read: list[int]) -> tuple[list, list[int]]:
    """The run's events, and at each one how many sentences the encoder had read."""
    events, seen = [], []

    def emit(event):
        events.append(event)
        seen.append(read[0])

    recipe.run(config, emit)
    return events, seen


def test_a_linear_probe_steps_while_its_encoder_still_reads(tiny, sentences_read):
    feature_cache.shared.clear()  # computed by this run, not found
    events, read = run_logged(probe(tiny), sentences_read)
    started = next(e for e in events if isinstance(e, Started))
    total = started.train_size + started.val_size
    assert started.cached_depth == 3  # embeddings + 2 layers: the features are cached
    steps = [(e, n) for e, n in zip(events, read, strict=True) if isinstance(e, StepEvent)]
    # the first step comes after one batch of 8 (its share of the 16 validation sentences after the step)
    assert steps[0][1] == 8
    # the first epoch's six steps each came with more of the data read, every one before the encoder was done
    first = [n for e, n in steps if e.epoch == 1]
    assert len(first) == 6 and first == sorted(set(first)) and first[-1] < total
    # each sentence was read once: later epochs and evaluations use the kept vectors
    assert sentences_read[0] == total
    assert isinstance(events[-1], Done) and events[-1].result.extra["encode_s"] > 0


def test_a_run_that_finds_the_features_ends_as_the_one_that_computed_them(tiny, sentences_read):
    feature_cache.shared.clear()
    cold, _ = run_logged(probe(tiny, seed=3), sentences_read)
    read_cold = sentences_read[0]
    warm, _ = run_logged(probe(tiny, seed=3), sentences_read)
    assert read_cold > 0 and sentences_read[0] == read_cold  # the second run read none
    losses = lambda events: [round(e.loss, 5) for e in events if isinstance(e, StepEvent)]  # noqa: E731
    assert losses(warm) == losses(cold)
    assert [e.val_acc for e in warm if isinstance(e, EvalEvent)] == [e.val_acc for e in cold if isinstance(e, EvalEvent)]
    assert warm[-1].result.predictions == cold[-1].result.predictions
    assert "encode_s" not in warm[-1].result.extra  # nothing was encoded


def test_the_text_page_draws_the_curve_of_a_text_run_still_going(tiny, monkeypatch):
    """A real text run (the tiny model in place of the page's backbone) is held after its third
    step, half-way through its encoder's pass (the test above): the page's live panel shows the
    loss curve with those three steps, and the results once the run is let go."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    feature_cache.shared.clear()
    reached, release = threading.Event(), threading.Event()

    def held_run(config, emit, should_stop):
        def held(event):
            emit(event)
            if isinstance(event, StepEvent) and event.step == 3:
                reached.set()
                release.wait(120)

        small = probe(tiny)  # the page's linear probe, on the tiny model and a small sample
        sizes = ("dataset", "per_class", "val_per_class", "epochs", "batch_size")
        return recipe.run(config.replace(backbone=tiny, **{k: getattr(small, k) for k in sizes}), held, should_stop)

    at = app("pages/5_text.py", run_fn=held_run, timeout=120)
    at.selectbox(key="w:text_dataset").set_value("sentiment_en").run()
    at.button(key="text_start").click().run()
    try:
        assert reached.wait(120), "the run took no third step"
        at.run()
        ok(at)
        assert job_of(at, "text").state == "running"
        drawn = [h.proto.body for h in at.get("html") if 'class="tls-live" data-chart="loss"' in h.proto.body]
        assert drawn and 'data-points="3"' in drawn[0], drawn  # the live loss curve (studio.plots.live), 3 steps
        assert any("over 3 steps" in m.value for m in at.markdown), [m.value for m in at.markdown]  # its words
    finally:
        release.set()
    assert wait_until_done(at, "text", timeout=120) == "done"
    at.run()
    ok(at)
    assert job_of(at, "text").runs[0].result.val_acc is not None


@pytest.mark.fast
def test_long_texts_get_the_ids_of_the_whole_text(tiny):
    """The text run tokenises a long text cut at a space (tlcore.text.batches.token_ids): the same
    ids as the whole text, whatever the lengths, spaces and lines, and texts with no space to cut at."""
    from tlcore.text.batches import token_ids

    tokenizer = models.load_classifier(tiny, 2, pretrained=False)[1]
    words = "the food was great but the service was slow and the room was cold".split()
    texts = [" ".join(words[i % len(words)] for i in range(n)) for n in (3, 40, 300, 3000)] + [
        "x" * 5000,  # no space at all
        " " * 2000 + "the food was great",  # the words after the cut
        "\n\n".join(["great", "service"] * 400),
        "word," * 900 + " end",
        "",
    ]
    for max_length in (8, 32, 128):
        whole = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
        assert token_ids(tokenizer, texts, max_length) == whole


@pytest.mark.fast
def test_the_time_estimate_counts_the_first_epochs_encoding_as_the_cached_pass(tmp_path):
    """A linear probe's encoder pass now runs inside its first epoch (`encode_s` of its result):
    the estimate learns it as the cached pass, once a run, not as the cost of each training step."""
    from tlcore.train import presets, time_estimate

    estimator = time_estimate.Estimator(tmp_path / "timings.json")
    probe = RunConfig(**{**presets.text().to_dict(), "strategy": "linear_probe", "epochs": 5})
    n_train, n_val = time_estimate.run_sizes(probe, 2)
    # 6 s of encoding in the first epoch and its evaluation, 0.1 s an epoch of head steps
    timing = {"setup_s": 0.5, "cache_s": 0.2, "train_s": [5.1, 0.1, 0.1, 0.1, 0.1], "eval_s": [1.0] + [0.0] * 4}
    estimator.record(probe, timing | {"finish_s": 0.1, "encode_s": 6.0}, n_train, n_val)
    assert estimator.estimate(probe, 2) == pytest.approx(0.5 + 0.2 + 6.0 + 5 * 0.1 + 0.1, rel=0.01)
    # ten epochs cost five more epochs of head steps, not five more encoder passes
    assert estimator.estimate(probe.replace(epochs=10), 2) == pytest.approx(0.5 + 6.2 + 10 * 0.1 + 0.1, rel=0.01)
