"""The feature space before any training (tlcore.explain.feature_space).

Contracts: the projection is 2-D, centred and scaled, and PCA says how much variation it
keeps; the probes are fitted on training features only and score validation examples (a
separable set scores 100%, labels that mean nothing score about chance); on small real data a
pretrained body's frozen features beat a random body's of the same architecture; a fine-tuned
model on the shelf adds a third view; the background worker computes a view once for everyone
who asks, never raises into a page, and refuses rather than queues without bound.
"""

from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np
import pytest
import torch

from tlcore.data import datasets
from tlcore.explain import feature_space
from tlcore.models import catalog
from tlcore.train import finetuned


def blobs(classes=3, per_class=20, dim=40, spread=0.3, seed=0):
    """Gaussian clusters around well separated centres: (x, y)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (classes, dim))
    y = np.repeat(np.arange(classes), per_class)
    return centres[y] + rng.normal(0, spread, (len(y), dim)), y


@pytest.mark.fast
def test_pca_projection_is_two_d_centred_and_says_what_it_keeps():
    x, _ = blobs()
    coords, explained = feature_space.project(x, "pca")
    assert coords.shape == (len(x), 2) and coords.dtype == np.float32
    assert np.allclose(coords.mean(axis=0), 0, atol=1e-5)
    assert np.sqrt((coords.astype(np.float64) ** 2).sum(axis=1).mean()) == pytest.approx(1.0, rel=1e-4)
    assert explained[0] >= explained[1] > 0 and sum(explained) <= 1.0
    # the top direction of three far-apart clusters carries most of the variation
    assert sum(explained) > 0.5


def test_tsne_keeps_clusters_apart_and_an_unknown_method_is_refused():
    x, y = blobs(per_class=15)
    coords, explained = feature_space.project(x, "tsne")
    assert coords.shape == (len(x), 2) and explained is None
    centres = np.stack([coords[y == c].mean(axis=0) for c in range(3)])
    within = np.mean([np.linalg.norm(coords[y == c] - centres[c], axis=1).mean() for c in range(3)])
    between = min(np.linalg.norm(centres[i] - centres[j]) for i in range(3) for j in range(i + 1, 3))
    assert between > 2 * within
    with pytest.raises(ValueError, match="unknown projection"):
        feature_space.project(x, "sammon")
    assert "pca" in feature_space.methods_available() and "tsne" in feature_space.methods_available()


@pytest.mark.fast
def test_probes_score_validation_examples_from_training_features_only():
    x, y = blobs(per_class=30)
    train, val = np.arange(len(y)) % 3 != 0, np.arange(len(y)) % 3 == 0
    logistic, ncm = feature_space.probe_accuracy(x[train], y[train], x[val], y[val])
    assert logistic == 1.0 and ncm == 1.0
    # labels that say nothing about the features: about chance (1/3), never near perfect
    rng = np.random.default_rng(1)
    noise = rng.normal(size=(300, 20))
    labels = rng.integers(0, 3, 300)
    logistic, ncm = feature_space.probe_accuracy(noise[:200], labels[:200], noise[200:], labels[200:])
    assert logistic < 0.55 and ncm < 0.55
    with pytest.raises(ValueError, match="two classes"):
        feature_space.probe_accuracy(x[:5], np.zeros(5), x[5:10], np.zeros(5))


@pytest.mark.fast
def test_image_features_are_what_the_head_reads():
    """The body's output pooled over its map is exactly what the classifier head sees."""
    torch.manual_seed(0)
    model = catalog.build_model("studio_resnet", 3, pretrained=False, image_size=32).eval()
    data = datasets.ImageData(
        ["a", "b", "c"],
        torch.randint(0, 255, (6, 3, 32, 32), dtype=torch.uint8),
        torch.tensor([0, 0, 1, 1, 2, 2]),
        torch.randint(0, 255, (3, 3, 32, 32), dtype=torch.uint8),
        torch.tensor([0, 1, 2]),
    )
    train, val = feature_space.image_features(model, data)
    assert train.shape == (6, 256) and val.shape == (3, 256)
    head = model.groups["head"][-1]  # AdaptiveAvgPool -> Flatten -> Linear
    with torch.no_grad():
        logits = model(data.train_x)
    assert torch.allclose(head(torch.from_numpy(train)), logits, atol=1e-4)


def test_pretrained_features_beat_random_ones_on_real_digits():
    """scikit-learn's real handwritten digits through the studio's pretrained backbone and the
    same architecture with random weights: the frozen pretrained features separate the classes
    better, by both probes (measured: 92% vs 78% linear probe, 85% vs 73% nearest mean)."""
    request = feature_space.Request("image", "studio_resnet", "digits", per_class=10, val_per_class=10, image_size=32)
    view = feature_space.feature_view(request)
    pre, rand = view.spaces["pretrained"], view.spaces["random"]
    assert pre.probe_acc > rand.probe_acc + 0.05 and pre.ncm_acc > rand.ncm_acc + 0.05
    assert pre.probe_acc > 0.8
    assert view.gap == pytest.approx(pre.probe_acc - rand.probe_acc)
    assert view.labels.shape == (100,) and pre.coords.shape == (100, 2) and view.n_val == 100
    assert view.thumbs.shape == (100, feature_space.THUMB_PX, feature_space.THUMB_PX, 3) and view.thumbs.dtype == np.uint8
    assert view.classes == tuple(str(i) for i in range(10)) and pre.backbone == "studio_resnet"
    assert set(view.timings) >= {"load_s", "embed_s", "project_s", "probe_s", "total_s"}
    # the random body is the same draw every time (seeded): the same numbers again
    feature_space._rows.clear()
    again = feature_space.feature_view(request)
    assert again.spaces["random"].probe_acc == rand.probe_acc
    assert np.allclose(again.spaces["random"].coords, rand.coords, atol=1e-4)


def test_a_fine_tuned_model_adds_a_third_view():
    torch.manual_seed(1)
    model = catalog.build_model("studio_resnet", 10, pretrained=True, image_size=32)
    entry = finetuned.Finetuned(model, tuple(str(i) for i in range(10)), 32, "studio_resnet")
    request = feature_space.Request(
        "image", "studio_resnet", "digits", per_class=5, val_per_class=5, image_size=32, finetuned_id="a-kept-model"
    )
    view = feature_space.feature_view(request, finetuned=entry)
    assert list(view.spaces) == ["pretrained", "random", "finetuned"]
    # an untrained copy of the pretrained body: the same features as the pretrained view
    assert view.spaces["finetuned"].probe_acc == view.spaces["pretrained"].probe_acc
    with pytest.raises(feature_space.FinetunedGone):  # the id names a model the caller no longer has
        feature_space.feature_view(request)


def test_only_the_pretrained_bodys_features_are_kept_for_the_class_runs(monkeypatch):
    """A random or fine-tuned body's features would only fill the runs' feature cache (no run
    trains from those weights): about 20 MB a learner stayed after a burst of feature views."""
    from tlcore.core.bounded import LRU, tensor_bytes
    from tlcore.data import feature_cache

    monkeypatch.setattr(feature_cache, "shared", LRU(2**30, weigh=tensor_bytes))  # this test's own, empty
    monkeypatch.setattr(feature_space, "_rows", LRU(2**30, weigh=lambda row: row.nbytes))  # none seen yet
    torch.manual_seed(2)
    model = catalog.build_model("studio_resnet", 10, pretrained=True, image_size=32)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01)  # fine-tuned: weights of its own
    entry = finetuned.Finetuned(model, tuple(str(i) for i in range(10)), 32, "studio_resnet")
    request = feature_space.Request(
        "image", "studio_resnet", "digits", per_class=5, val_per_class=5, image_size=32, finetuned_id="m"
    )
    view = feature_space.feature_view(request, finetuned=entry)
    assert list(view.spaces) == ["pretrained", "random", "finetuned"]
    assert len(feature_cache.shared) == 1  # the pretrained body's: a linear probe's cached prefix on this data


def _rows_kept(monkeypatch, limit_bytes=2**30):
    """This test's own, empty store of feature rows; returned for its counts."""
    from tlcore.core.bounded import LRU

    rows = LRU(limit_bytes, weigh=lambda row: row.nbytes)
    monkeypatch.setattr(feature_space, "_rows", rows)
    return rows


def test_a_view_over_images_another_view_showed_runs_no_body_and_shows_the_same(monkeypatch):
    """Page 3's default split (20 per class) is the first part of page 1's (30 per class) over the
    same validation images (`datasets.split_per_class`): after page 1's view every row of page 3's
    is found, none is computed, and the view is the one a cold server computes."""
    rows = _rows_kept(monkeypatch)
    big = feature_space.Request("image", "studio_resnet", "digits", per_class=8, val_per_class=5, image_size=32)
    small = dataclasses.replace(big, per_class=4)
    feature_space.feature_view(big)
    assert rows.misses == 2 * (80 + 50)  # two bodies, every image once
    found = feature_space.feature_view(small)
    assert rows.misses == 2 * (80 + 50) and rows.hits == 2 * (40 + 50)
    rows.clear()
    cold = feature_space.feature_view(small)
    for kind in ("pretrained", "random"):
        assert np.allclose(found.spaces[kind].coords, cold.spaces[kind].coords, atol=1e-4)
        assert found.spaces[kind].probe_acc == cold.spaces[kind].probe_acc
        assert found.spaces[kind].ncm_acc == cold.spaces[kind].ncm_acc


def test_a_view_with_more_images_computes_only_the_new_ones_and_shows_what_a_cold_one_does(monkeypatch):
    rows = _rows_kept(monkeypatch)
    small = feature_space.Request("image", "studio_resnet", "digits", per_class=4, val_per_class=5, image_size=32)
    big = dataclasses.replace(small, per_class=8)
    feature_space.feature_view(small)
    before = rows.misses
    grown = feature_space.feature_view(big)
    assert rows.misses - before == 2 * 40  # two bodies, the 40 training images page 3 did not show
    rows.clear()
    cold = feature_space.feature_view(big)
    for kind in ("pretrained", "random"):
        assert np.allclose(grown.spaces[kind].coords, cold.spaces[kind].coords, atol=1e-4)
        assert grown.spaces[kind].probe_acc == cold.spaces[kind].probe_acc


def test_the_kept_feature_rows_stay_within_their_bytes(monkeypatch):
    """studio_resnet's rows are 256 floats (1 KB): a 50-row bound keeps the newest 50 of 260."""
    rows = _rows_kept(monkeypatch, limit_bytes=50 * 256 * 4)
    view = feature_space.feature_view(
        feature_space.Request("image", "studio_resnet", "digits", per_class=8, val_per_class=5, image_size=32)
    )
    assert len(rows) == 50 and rows.total <= 50 * 256 * 4
    assert view.spaces["random"].coords.shape == (80, 2)  # the view itself is whole


def test_the_pretrained_panel_is_given_whole_before_the_random_body_runs(monkeypatch):
    """`on_space` gets the view after each body but the last: the pretrained panel as the whole
    view will show it (the same points and probes), while the random body is still to run."""
    _rows_kept(monkeypatch)
    so_far = []
    request = feature_space.Request("image", "studio_resnet", "digits", per_class=5, val_per_class=5, image_size=32)
    view = feature_space.feature_view(request, on_space=so_far.append)
    assert [list(v.spaces) for v in so_far] == [["pretrained"]]
    first = so_far[0]
    assert np.array_equal(first.spaces["pretrained"].coords, view.spaces["pretrained"].coords)
    assert first.spaces["pretrained"].probe_acc == view.spaces["pretrained"].probe_acc
    assert np.array_equal(first.labels, view.labels) and first.thumbs.shape == view.thumbs.shape


@pytest.mark.fast
def test_views_are_limited_to_a_few_hundred_examples():
    request = feature_space.Request("image", "studio_resnet", "digits", per_class=500, val_per_class=5, image_size=16)
    assert request.shown_per_class == feature_space.MAX_PER_CLASS["image"]
    assert feature_space.Request("text", "minilm_l6", "sentiment_en", 500, 24).shown_per_class == 100


@pytest.mark.skipif(not catalog.weights_cached("minilm_l6"), reason="the offline MiniLM package is not installed")
def test_pretrained_minilm_beats_its_random_twin_on_english_sentences():
    """The offline MiniLM's first-token features against the same architecture at random weights
    (measured: 69% vs 52% linear probe on the 48 validation sentences)."""
    view = feature_space.feature_view(feature_space.Request("text", "minilm_l6", "sentiment_en", per_class=96, val_per_class=24))
    pre, rand = view.spaces["pretrained"], view.spaces["random"]
    assert pre.probe_acc > rand.probe_acc + 0.05
    assert pre.dim == 384 and view.thumbs is None and len(view.texts) == len(view.labels) == 192
    assert view.n_val == 48


# --- the background worker ------------------------------------------------------------------


def fake_view(request: feature_space.Request) -> feature_space.FeatureView:
    space = feature_space.Space("pretrained", np.zeros((2, 2), np.float32), 1.0, 1.0, 4, None, 0.0, request.backbone)
    return feature_space.FeatureView(
        "image", request.dataset, ("a", "b"), np.array([0, 1]), {"pretrained": space}, request.method, 2
    )


def wait_done(spaces: feature_space.FeatureSpaces, request, timeout=10.0) -> feature_space.Status:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = spaces.status(request)
        if status.state not in ("running", "missing"):
            return status
        time.sleep(0.01)
    raise AssertionError(f"{request} still {status.state}")


@pytest.mark.fast
def test_the_worker_computes_each_view_once_for_everyone():
    calls, gate = [], threading.Event()

    def compute(request, **_):
        calls.append(request)
        gate.wait(5)
        return fake_view(request)

    spaces = feature_space.FeatureSpaces(compute, nice=0)
    request = feature_space.Request("image", "studio_resnet", "digits", 10, 10, 32)
    assert spaces.status(request).state == "missing"
    assert spaces.start(request).state == "running"  # returns at once: the page does not wait
    assert spaces.start(request).state == "running"  # a second learner joins the same computation
    gate.set()
    status = wait_done(spaces, request)
    assert status.state == "done" and status.view.dataset == "digits"
    assert spaces.start(request).state == "done" and len(calls) == 1


@pytest.mark.fast
def test_a_failure_is_kept_for_the_page_and_can_be_tried_again():
    attempts = []

    def compute(request, **_):
        attempts.append(1)
        if len(attempts) == 1:
            raise ValueError("no such data")
        return fake_view(request)

    spaces = feature_space.FeatureSpaces(compute, nice=0)
    request = feature_space.Request("image", "studio_resnet", "digits", 10, 10, 32)
    spaces.start(request)
    status = wait_done(spaces, request)
    assert status.state == "failed" and "no such data" in str(status.error)
    spaces.start(request)
    assert wait_done(spaces, request).state == "done"


@pytest.mark.fast
def test_the_worker_refuses_more_waiting_views_than_it_allows_and_keeps_a_bounded_number():
    gate = threading.Event()
    spaces = feature_space.FeatureSpaces(lambda r, **_: (gate.wait(5), fake_view(r))[1], max_waiting=2, max_kept=2, nice=0)
    requests = [feature_space.Request("image", "studio_resnet", "digits", n, 10, 32) for n in (1, 2, 3, 4)]
    spaces.start(requests[0])
    spaces.start(requests[1])
    with pytest.raises(feature_space.Busy):
        spaces.start(requests[2])
    gate.set()
    for r in requests[:2]:
        wait_done(spaces, r)
    spaces.start(requests[2])
    wait_done(spaces, requests[2])
    kept = [r for r in requests[:3] if spaces.status(r).state == "done"]
    assert kept == requests[1:3]  # the oldest view went first


@pytest.mark.fast
def test_a_running_views_status_carries_the_bodies_done_so_far():
    partial_given, gate = threading.Event(), threading.Event()

    def compute(request, *, finetuned=None, on_space=None, should_stop=None):
        partial = fake_view(request)
        on_space(partial)
        partial_given.set()
        gate.wait(5)
        return dataclasses.replace(partial, spaces={**partial.spaces, "random": partial.spaces["pretrained"]})

    spaces = feature_space.FeatureSpaces(compute, nice=0)
    request = feature_space.Request("image", "studio_resnet", "digits", 10, 10, 32)
    assert spaces.start(request).view is None  # nothing done yet
    assert partial_given.wait(5)
    status = spaces.status(request)
    assert status.state == "running" and list(status.view.spaces) == ["pretrained"]
    assert list(spaces.start(request).view.spaces) == ["pretrained"]  # a classmate joining sees it too
    gate.set()
    done = wait_done(spaces, request)
    assert done.state == "done" and list(done.view.spaces) == ["pretrained", "random"]
    assert spaces._partial == {}  # nothing of a finished view is kept twice


@pytest.mark.fast
def test_stop_ends_the_view_under_way_at_its_next_layer_and_begins_no_other():
    """The server's exit (`shared_spaces` registers `stop` at exit): the worker is a daemon thread,
    so nothing waits for it but `stop`, which ends the running view within a layer, not a view."""
    layers, begun = threading.Event(), []
    net = torch.nn.Sequential(*(torch.nn.Linear(8, 8) for _ in range(4)))

    def compute(request, *, finetuned=None, on_space=None, should_stop=None):
        begun.append(request)
        with feature_space._stops_when(should_stop) as stoppable:
            model = stoppable(net)
            while True:  # a body's forward passes that would go on for minutes
                model(torch.zeros(2, 8))
                layers.set()

    spaces = feature_space.FeatureSpaces(compute, nice=0)
    first, second = (feature_space.Request("image", "studio_resnet", "digits", n, 10, 32) for n in (1, 2))
    spaces.start(first)
    spaces.start(second)
    assert layers.wait(5)
    t0 = time.perf_counter()
    spaces.stop()
    assert time.perf_counter() - t0 < 1.0 and not spaces._thread.is_alive()
    status = spaces.status(first)
    assert status.state == "failed" and isinstance(status.error, feature_space.Stopped)
    assert begun == [first]  # the waiting one never began
    assert not any(m._forward_pre_hooks for m in net.modules())  # the layers' checks taken off again
    with pytest.raises(feature_space.Busy):
        spaces.start(feature_space.Request("image", "studio_resnet", "digits", 3, 10, 32))


def test_a_process_exits_at_once_while_a_real_view_is_computed():
    """The server's own worker (`shared_spaces`) in a process that exits in the middle of page 1's
    first view (the server's start starts it): it exits cleanly within seconds of its last line,
    not at the view's end (a pool's thread was joined at exit, to the view's end; a daemon
    thread still in torch at the interpreter's end aborts the process)."""
    import subprocess
    import sys

    code = """
import threading, time
from tlcore.explain import feature_space as fs
embedding, embed = threading.Event(), fs.image_features
fs.image_features = lambda *a, **k: (embedding.set(), embed(*a, **k))[1]
request = fs.first_views()[0]
fs.shared_spaces().start(request)
embedding.wait(120)
time.sleep(1.0)  # in the pretrained body's forward passes
print(fs.shared_spaces().status(request).state, time.time(), flush=True)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    ended = time.time()
    assert out.returncode == 0 and "terminate called" not in out.stderr, out.stderr[-2000:]
    state, last_line = out.stdout.split()
    assert state == "running" and ended - float(last_line) < 8.0  # quiet: under 3 s; the pool: 21 s
