"""The feature space panel on pages 1, 3 and 5, driven without a browser (AppTest).

Contracts: each panel renders in English and Korean; nothing is computed until the learner
asks (one button), then the page asks the background worker and returns at once; the view
is drawn as one chart whose hover labels carry each image (or sentence), titled in the
learner's language with the probes' accuracies, and the gap between pretrained and random
features said in words; after a fine-tune on the same data the fine-tuned body is the third
panel; a failure is said in words with a way to try again, never a traceback.

The forward passes are replaced by a stub view (tlcore.explain.feature_space is tested for real in
tests/test_embedding.py), so these tests check the page, in seconds.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.helpers.apptest import app, job_of, ok, wait_until_done
from tests.helpers.fakes import fake_run
from tlcore.explain import feature_space
from tlcore.models import catalog
from tlcore.serve.jobs import JobQueue
from tlcore.train import finetuned

ROOT = Path(__file__).resolve().parent.parent
FASHION = ("T-shirt/top", "Trouser", "Pullover")
ASKED: list[feature_space.Request] = []  # computed, on the worker's thread
STARTED: list[feature_space.Request] = []  # asked for, in the page's run (`FeatureSpaces.start`)


def stub_view(request: feature_space.Request, finetuned=None, on_space=None, should_stop=None) -> feature_space.FeatureView:
    """A view with the shape of the real one: 3 classes x 4 examples, PCA, 2 or 3 bodies."""
    ASKED.append(request)
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 4)
    assert (finetuned is not None) == bool(request.finetuned_id)  # the page passes the learner's model along
    kinds = {"pretrained": 0.8, "random": 0.5} | ({"finetuned": 0.9} if request.finetuned_id else {})
    spaces = {
        kind: feature_space.Space(
            kind,
            rng.normal(size=(12, 2)).astype(np.float32),
            acc,
            acc - 0.1,
            1280,
            (0.3, 0.1) if request.method == "pca" else None,
            0.5,
            request.backbone,
        )
        for kind, acc in kinds.items()
    }
    if request.task == "text":
        return feature_space.FeatureView(
            "text",
            request.dataset,
            ("negative", "positive", "neutral"),
            labels,
            spaces,
            request.method,
            6,
            texts=tuple(f"sentence {i}" for i in range(12)),
            timings={"total_s": 1.5},
        )
    thumbs = np.full((12, feature_space.THUMB_PX, feature_space.THUMB_PX, 3), 128, np.uint8)
    return feature_space.FeatureView(
        "image", request.dataset, FASHION, labels, spaces, request.method, 6, thumbs=thumbs, timings={"total_s": 1.5}
    )


@pytest.fixture(autouse=True)
def stub_worker(monkeypatch):
    spaces = feature_space.FeatureSpaces(stub_view, nice=0)
    start = spaces.start
    monkeypatch.setattr(spaces, "start", lambda request, finetuned=None: STARTED.append(request) or start(request, finetuned))
    monkeypatch.setattr(feature_space, "shared_spaces", lambda: spaces)
    ASKED.clear()
    STARTED.clear()
    yield spaces


def strings(lang: str) -> dict:
    return json.loads((ROOT / "assets" / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))


def charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]


def chart_rows(at: AppTest) -> list[dict]:
    """The table under the last chart (Streamlit sends it beside the spec, as Arrow)."""
    import pyarrow as pa

    chart = at.get("vega_lite_chart")[-1]
    return pa.ipc.open_stream(chart.proto.datasets[0].data.data).read_all().to_pylist()


def show(at: AppTest, key: str, timeout: float = 20.0) -> dict:
    """Press "Show the feature space" and rerun until the chart is drawn; its Vega-Lite spec."""
    at.button(key=f"features_show:{key}").click().run()
    ok(at)
    deadline = time.monotonic() + timeout
    while not charts(at):
        assert time.monotonic() < deadline, "no feature space chart"
        time.sleep(0.05)
        at.run()
        ok(at)
    return charts(at)[-1]


def titles(spec: dict) -> list[str]:
    return [panel["title"]["text"] for panel in spec["hconcat"]]


PANELS = [("pages/1_pretraining.py", "pretraining"), ("pages/3_finetune.py", "finetune"), ("pages/5_text.py", "text")]


@pytest.mark.parametrize("lang", ["en", "ko"])
@pytest.mark.parametrize("page,key", PANELS)
def test_each_panel_shows_the_feature_space_in_both_languages(page, key, lang):
    text = strings(lang)
    at = app(page)
    ok(at)
    assert not charts(at)  # nothing is drawn before the learner asks ...
    if key == "pretraining":  # ... but page 1's view, the same for everyone, is started at once
        deadline = time.monotonic() + 10
        while not ASKED:
            assert time.monotonic() < deadline, "page 1 did not start its view"
            time.sleep(0.02)
        assert STARTED  # asked in the page's run: what the other pages' check below counts
    else:  # ... and the other pages compute nothing until then (AppTest opened page 1 first)
        STARTED.clear()
        at.run()
        assert not STARTED  # the run is over: nothing was asked of the worker in it
    spec = show(at, key)
    if lang == "ko":
        # The language switch of the sidebar, as a learner does it. (AppTest cannot rerun pages 3 and 5
        # opened in Korean: it re-sends each widget's value through its format function in English.)
        at.radio(key="w:lang").set_value("ko").run()
        ok(at)
        spec = charts(at)[-1]  # the view is kept: drawn again at once, now in Korean
    found = [
        e
        for e in [*at.subheader, *at.expander]
        if getattr(e, "value", None) == text["features.title"] or getattr(e.proto, "label", None) == text["features.title"]
    ]
    assert found, "the panel's title in the learner's language"
    request = ASKED[-1]
    assert request.method == "pca" and request.task == ("text" if key == "text" else "image")
    assert titles(spec) == [text["features.kind.pretrained"], text["features.kind.random"]]
    subtitle = spec["hconcat"][0]["title"]["subtitle"]
    assert subtitle == [text["features.probe"].format(acc="80"), text["features.ncm"].format(acc="70")]
    tooltip = {t["title"] for t in spec["hconcat"][0]["encoding"]["tooltip"]}
    if key == "text":
        assert tooltip == {"title", text["features.sentence"]}
    else:
        assert tooltip == {"title", "image"}  # vega-tooltip draws the field titled "image" as a picture
        data = chart_rows(at)
        assert len(data) == 12
        assert all(row["image"].startswith("data:image/png;base64,") for row in data)
        if request.dataset == "fashion_mnist" and lang == "ko":
            assert {row["cls"] for row in data} == {"티셔츠/상의", "바지", "풀오버"}  # class names translated
    gap = text["features.gap"].split("{gap}")[0]
    assert any(m.value.startswith(gap) for m in at.markdown), "the gap said in words"
    assert all(spec["config"][part]["labelFontSize"] >= 14 for part in ("axis", "legend"))


def test_the_projection_can_be_changed_and_the_view_hidden():
    at = app("pages/1_pretraining.py")
    show(at, "pretraining")
    at.button_group(key="w:features_method").set_value("tsne").run()
    deadline = time.monotonic() + 20
    while ASKED[-1].method != "tsne" or not charts(at) or "t-SNE" not in json.dumps(charts(at)[-1]):
        assert time.monotonic() < deadline
        time.sleep(0.05)
        at.run()
    ok(at)
    at.button(key="features_hide:pretraining").click().run()
    assert not charts(at) and at.button(key="features_show:pretraining")


def test_after_a_fine_tune_on_the_same_data_its_body_is_the_third_panel():
    model = catalog.build_model("studio_resnet", 2, pretrained=False, image_size=32)

    def run_keeping_a_model(config, emit, should_stop):  # a run returns its model; the queue keeps it
        return dataclasses.replace(
            fake_run(config, emit, should_stop), model=finetuned.Finetuned(model, ("cat", "dog"), 32, "studio_resnet")
        )

    at = app("pages/3_finetune.py", queue=JobQueue.started(run_keeping_a_model))
    at.button(key="start").click().run()
    assert wait_until_done(at, "finetune") == "done"
    at.run()
    spec = show(at, "finetune")
    kept_id = job_of(at, "finetune").runs[-1].result.model_id  # the queue kept the learner's model
    assert kept_id and ASKED[-1].finetuned_id == kept_id
    assert titles(spec) == [strings("en")[f"features.kind.{k}"] for k in ("pretrained", "random", "finetuned")]
    assert any(c.value == strings("en")["features.finetuned_note"] for c in at.caption)


def test_a_failed_view_is_said_in_words_and_can_be_tried_again(stub_worker, monkeypatch):
    calls = []

    def failing_once(request, **_):
        calls.append(request)
        if len(calls) == 1:
            raise feature_space.FinetunedGone("gone")
        return stub_view(request)

    monkeypatch.setattr(stub_worker, "_compute", failing_once)
    at = app("pages/1_pretraining.py")
    at.radio(key="w:lang").set_value("ko").run()
    at.button(key="features_show:pretraining").click().run()
    deadline = time.monotonic() + 20
    while not at.warning:
        assert time.monotonic() < deadline
        time.sleep(0.05)
        at.run()
    ok(at)
    assert at.warning[0].value == strings("ko")["features.finetuned_gone"]
    at.button(key="features_retry:pretraining").click().run()
    deadline = time.monotonic() + 20
    while not charts(at):
        assert time.monotonic() < deadline
        time.sleep(0.05)
        at.run()
    ok(at)


@pytest.mark.parametrize("page,key", PANELS[:2])
def test_first_views_are_the_very_views_pages_1_and_3_show_first(page, key, stub_worker, monkeypatch):
    """The server's start (app.py: `server.start_first_views`) computes the first views before any page
    is opened (tools.firstpage --feature-view times them in Chromium): a learner's first view on page 1
    or 3 (the default settings) is then a lookup, nothing more computed."""
    from studio import server

    monkeypatch.setenv("TLS_WARM_UP", "1")
    server.start_first_views(after_s=0)
    warmed = list(STARTED)
    assert len(warmed) == 2 and all(r.method == "pca" and not r.finetuned_id for r in warmed)
    for request in warmed:
        stub_worker.wait(request, timeout=20)
    at = app(page)
    show(at, key)
    assert ASKED == warmed  # the page's view was one of the two: computed once, before it was opened


def test_the_pretrained_panel_is_drawn_while_the_random_body_runs(stub_worker, monkeypatch):
    """A cold view's first half: the pretrained body's panel is drawn as soon as it is done, with a
    line saying the next is coming; the random body's panel joins it when it is done."""
    import threading

    gate = threading.Event()

    def pretrained_first(request, *, finetuned=None, on_space=None, should_stop=None):
        view = stub_view(request)
        if len(ASKED) == 1:  # page 1's own view, started when AppTest opened it first: at once
            return view
        on_space(dataclasses.replace(view, spaces={"pretrained": view.spaces["pretrained"]}))
        gate.wait(30)
        return view

    monkeypatch.setattr(stub_worker, "_compute", pretrained_first)
    text = strings("en")
    at = app("pages/3_finetune.py")
    try:
        at.button(key="features_show:finetune").click().run()
        deadline = time.monotonic() + 20
        while not charts(at):
            assert time.monotonic() < deadline, "no pretrained panel while the random body runs"
            time.sleep(0.05)
            at.run()
        ok(at)
        assert titles(charts(at)[-1]) == [text["features.kind.pretrained"]]
        assert any(i.value == text["features.computing_rest"] for i in at.info)
    finally:
        gate.set()
    deadline = time.monotonic() + 20
    while len(titles(charts(at)[-1])) < 2:
        assert time.monotonic() < deadline, "the random body's panel never joined"
        time.sleep(0.05)
        at.run()
    ok(at)
    assert titles(charts(at)[-1]) == [text["features.kind.pretrained"], text["features.kind.random"]]
    assert not any(i.value == text["features.computing_rest"] for i in at.info)


@pytest.mark.fast
def test_one_learner_holds_one_place_in_the_feature_worker_and_a_classmate_gets_theirs():
    """One learner's tabs filled all 8 of the worker's places and a classmate had no chart after
    240 s: now each learner waits for one view at a time."""
    import threading

    from studio.feature_space_panel import OneAtATime, start_for

    gate = threading.Event()
    spaces = feature_space.FeatureSpaces(lambda request, **_: gate.wait(30) and None, max_waiting=2, nice=0)
    views = [feature_space.Request("image", "studio_resnet", "digits", per_class, 2, 16) for per_class in (3, 4, 5)]
    assert start_for("hog", views[0], None, spaces).state == "running"
    assert start_for("hog", views[0], None, spaces).state == "running"  # the same view again: no new place
    with pytest.raises(OneAtATime):
        start_for("hog", views[1], None, spaces)
    assert start_for("classmate", views[2], None, spaces).state == "running"
    assert start_for("friend", views[0], None, spaces).state == "running"  # a shared view costs no place
    gate.set()
    spaces.wait(views[0])
    spaces.wait(views[2])


def test_where_each_device_has_its_own_address_its_cookies_hold_one_place_in_the_feature_worker(monkeypatch):
    """Issue 54: one learner holds one place, but twenty cookies from one script were twenty
    learners. Where the class file says `one_run_per_address`, an address holds one place (as in
    the job queue); behind one NAT (off) each cookie keeps its own; this machine's own tabs
    (address unknown) count by learner."""
    import threading

    from studio import feature_space_panel
    from studio.feature_space_panel import OneAtATime, start_for, waiter
    from tlcore.serve.class_limits import ClassLimits

    per_device = {"value": ClassLimits(one_run_per_address=True)}
    monkeypatch.setattr(feature_space_panel.class_limits, "load", lambda: per_device["value"])
    me = {"cookie": "script-1", "address": "192.0.2.9"}
    monkeypatch.setattr(feature_space_panel, "owner", lambda: me["cookie"])
    monkeypatch.setattr(feature_space_panel, "network_address", lambda: me["address"])

    gate = threading.Event()
    spaces = feature_space.FeatureSpaces(lambda request, **_: gate.wait(30) and None, max_waiting=4, nice=0)
    views = [feature_space.Request("image", "studio_resnet", "digits", per_class, 2, 16) for per_class in (3, 4, 5, 6)]
    try:
        assert start_for(waiter(), views[0], None, spaces).state == "running"
        me["cookie"] = "script-2"  # a second cookie, the same device
        with pytest.raises(OneAtATime):
            start_for(waiter(), views[1], None, spaces)
        me.update(cookie="classmate", address="192.0.2.10")
        assert start_for(waiter(), views[1], None, spaces).state == "running"
        per_device["value"] = ClassLimits(one_run_per_address=False)  # behind one NAT: each cookie its own place
        me.update(cookie="script-3", address="192.0.2.9")
        assert waiter() == "script-3"
        assert start_for(waiter(), views[2], None, spaces).state == "running"
        per_device["value"] = ClassLimits(one_run_per_address=True)
        me.update(cookie="teacher", address=None)  # this machine's own tab
        assert waiter() == "teacher"
    finally:
        gate.set()
        for view in views[:3]:
            spaces.wait(view)


def test_a_server_without_the_warm_up_starts_no_feature_view(stub_worker, monkeypatch):
    """TLS_WARM_UP=0 (the suite's shared servers): the views wait for the first page that asks."""
    from studio import server

    monkeypatch.setenv("TLS_WARM_UP", "0")
    server.start_first_views(after_s=0)
    assert STARTED == []
