"""The app, driven without a browser (streamlit.testing.v1.AppTest).

Contracts: every page renders in both languages without an exception; the matrix sets
the strategy and freeze depth; the freeze slider updates the trainable count with the
right numbers; Start sends a job to the queue and, after polling, its results appear;
Stop stops it; leaving the page and coming back shows the run again.

Training is replaced by a stub run function (given to a JobQueue that the test puts in
the session), so these tests take seconds and check the app, not the trainer.
"""

from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.helpers.apptest import (
    PAGES,
    QUEUE,
    ROOT,
    app,
    buttons,
    camera_page,
    charts,
    counts,
    job_of,
    ok,
    queue_of,
    shoot,
    strings,
    upload_page,
    wait_until_done,
)
from tests.helpers.fakes import GROUPS, fake_run, png, png_claiming, slow_run, wait_for, zip_of
from tlcore.core.events import Done, EvalEvent, Failed, Started
from tlcore.models import catalog
from tlcore.serve.jobs import JobQueue
from tlcore.train import strategies
from tlcore.train.config import RunConfig


@pytest.mark.parametrize("lang", ["en", "ko"])
@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_in_both_languages(page, lang):
    at = app(page, lang=lang)
    ok(at)
    key = {"1": "page1.title", "2": "page2.title", "3": "page3.title", "4": "page4.title"}[Path(page).name[0]]
    assert at.title[0].value == strings(lang)[key]
    assert at.query_params["lang"] in (lang, [lang])  # a shareable link


def test_sidebar_shows_language_device_and_queue():
    at = app()  # AppTest keeps the sidebar of the first run only (st.navigation quirk)
    side = [m.value for m in at.sidebar.markdown]
    assert any("CPU" in m or "CUDA" in m or "MPS" in m for m in side)
    assert any("0 running, 0 waiting" in m for m in side)
    assert at.radio(key="w:lang").options == ["English", "한국어"]


def test_language_switch_changes_the_page_text():
    at = app()
    at.radio(key="w:lang").set_value("ko").run()
    ok(at)
    assert at.title[0].value == strings("ko")["page1.title"]


def test_an_unknown_language_in_the_url_falls_back_to_english():
    at = app(lang="xx")
    ok(at)
    assert at.title[0].value == strings("en")["page1.title"]
    assert at.query_params["lang"] in ("en", ["en"])  # the URL is corrected


def test_matrix_cell_sets_strategy_freeze_depth_and_learning_rate():
    at = app("pages/2_strategy.py")
    body = len(GROUPS) - 1
    at.button(key="cell:small:similar").click().run()
    ok(at)
    assert at.session_state["strategy"] == "linear_probe" and at.session_state["freeze_depth"] == body
    assert at.slider(key="w:freeze_depth").value == body
    at.button(key="cell:small:different").click().run()
    rec = strategies.recommend("different", "small", num_groups=len(GROUPS))
    assert at.slider(key="w:freeze_depth").value == rec.freeze_depth
    assert at.session_state["lr"] == rec.lr and at.session_state["strategy"] == rec.strategy
    assert any(rec.reason_en in s.value for s in at.success)  # the page says why
    at.button(key="cell:large:different").click().run()
    assert at.slider(key="w:freeze_depth").value == 0 and at.session_state["strategy"] == "full"
    assert at.button(key="cell:large:different").proto.type == "primary"  # the chosen cell is marked
    at.slider(key="w:freeze_depth").set_value(3).run()  # a hand-made choice is no longer the cell's
    assert at.button(key="cell:large:different").proto.type == "secondary"


def test_matrix_cell_keeps_the_learners_layer_decay_and_the_run_uses_it():
    """A cell click once set layer decay to 1.0: 'full + layer-wise decay' then trained like 'full'."""
    at = app("pages/2_strategy.py")
    at.slider(key="w:layer_decay").set_value(0.5).run()
    at.button(key="cell:large:different").click().run()
    ok(at)
    assert at.session_state["layer_decay"] == 0.5
    at.selectbox(key="w:strategy").set_value("full_llrd").run()
    assert at.session_state["layer_decay"] == 0.5
    at.switch_page("pages/3_finetune.py").run()
    ok(at)
    at.button(key="start").click().run()
    config = job_of(at, "finetune").configs[0]
    assert config.strategy == "full_llrd" and config.layer_decay == 0.5
    groups = list(GROUPS)
    plan = strategies.make_plan(
        "full_llrd", groups, lr=config.lr, head_lr_mult=config.head_lr_mult, layer_decay=config.layer_decay
    )
    body = groups[:-1]
    assert plan.lrs[body[0]] == pytest.approx(config.lr * 0.5 ** (len(body) - 1))  # decayed, not all equal


def similarity_caption(at: AppTest) -> str:
    """Page 3's line that says how similar the data is to the backbone's pretraining data."""
    start = strings("en")["data.similarity"].split("(")[0]
    return next(c.value for c in at.caption if c.value.startswith(start))


def test_a_similar_cell_runs_a_similar_pair_and_fine_tune_says_similar():
    """Offline, no sample dataset is similar to the ImageNet backbone's photos: a "similar" cell
    must switch to a pair that is (and say so), not keep data page 3 calls "different"."""
    at = app("pages/2_strategy.py")
    at.button(key="cell:small:similar").click().run()
    ok(at)
    backbone, dataset = at.session_state["backbone"], at.session_state["dataset"]
    assert at.session_state["data_source"] == "offline"
    assert catalog.similarity_of(dataset, backbone) == "similar", (backbone, dataset)
    similar, different = strings("en")["matrix.similar"], strings("en")["matrix.different"]
    said = [i.value for i in at.info if i.value.startswith("This cell runs")]
    assert said and f"**{similar}**" in said[0]  # page 2 names the pair and what it is
    if backbone != catalog.offline_default():  # a switched backbone is explained, with the own-photos way
        assert "your own photos" in said[0]
    assert at.session_state["freeze_depth"] == len(group_names(backbone)) - 1  # the rule for this backbone

    at.switch_page("pages/3_finetune.py").run()
    ok(at)
    assert f"**{similar}**" in similarity_caption(at)
    at.button(key="start").click().run()
    config = job_of(at, "finetune").configs[0]
    assert (config.backbone, config.dataset, config.strategy) == (backbone, dataset, "linear_probe")

    at.switch_page("pages/2_strategy.py").run()
    at.button(key="cell:large:different").click().run()
    ok(at)
    assert catalog.similarity_of(at.session_state["dataset"], at.session_state["backbone"]) == "different"
    at.switch_page("pages/3_finetune.py").run()
    assert f"**{different}**" in similarity_caption(at)


def group_names(backbone: str) -> list[str]:
    return catalog.build_model(backbone, 2, pretrained=False).group_names


def readout(at: AppTest) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("### trainable:"))


@pytest.mark.parametrize("depth", [0, 2, 5])
def test_freeze_slider_updates_the_trainable_count(depth):
    counts = catalog.build_model(catalog.offline_default(), 10, pretrained=False, image_size=32).param_counts()
    at = app("pages/2_strategy.py")
    at.slider(key="w:freeze_depth").set_value(depth).run()
    ok(at)
    trainable = sum(n for g, n in list(counts.items())[depth:])
    total = sum(counts.values())
    numbers = re.findall(r"[\d.]+[MK]?", readout(at))
    assert numbers[0] == (f"{trainable / 1e6:.3g}M" if trainable >= 1e6 else f"{trainable / 1e3:.3g}K")
    assert numbers[1] == f"{total / 1e6:.3g}M"
    share = 100 * trainable / total
    assert numbers[2] == (f"{share:.1f}" if share >= 1 else f"{share:.2f}")  # a small share keeps two decimals
    # The slider names the strategy it amounts to.
    assert at.session_state["strategy"] == {0: "full", 2: "partial", 5: "linear_probe"}[depth]


@pytest.mark.parametrize("depth", [1, 4])
def test_page3_shows_what_start_will_train_before_any_run(depth):
    """Page 3 draws the strategy's groups beside Start (grey = frozen), following the slider,
    in plain HTML: no chart before a run (a first Plotly chart slowed a fresh visitor's page)."""
    at = app("pages/3_finetune.py")
    at.slider(key="w:freeze_depth").set_value(depth).run()
    ok(at)
    assert not charts(at)
    row = next(m.value for m in at.markdown if 'class="tls-blocks"' in m.value)
    names = re.findall(r"<b>([^<]+)</b>", row)
    frozen = [n for n, block in zip(names, row.split("<b>")[1:]) if "frozen" in block]
    assert names[-1] == "head" and frozen == names[:depth]
    assert any(c.value.startswith("trainable:") for c in at.caption)


def test_slider_readout_changes_when_moved():
    at = app("pages/2_strategy.py")
    at.slider(key="w:freeze_depth").set_value(0).run()
    everything = readout(at)
    at.slider(key="w:freeze_depth").set_value(4).run()
    assert readout(at) != everything and "100.0%" in everything


def test_start_submits_a_job_and_results_appear_after_polling():
    at = app("pages/3_finetune.py")
    at.button(key="start").click().run()
    ok(at)
    assert at.session_state["job:finetune"] is not None
    assert wait_until_done(at, "finetune") == "done"
    at.run()
    ok(at)
    assert at.success and "0." in at.success[0].value  # "Finished in 0.x s."
    drawn = charts(at)
    assert len(drawn) >= 6  # loss, accuracy, heatmap, bars, confusion, drift
    assert at.code[0].value.startswith("python -m tlcore finetune")
    mistakes = [c for c in image_captions(at) if c.startswith("true")]
    assert len(mistakes) == 1  # the one misclassified example


def test_stop_cancels_the_running_job():
    at = app("pages/3_finetune.py", run_fn=slow_run)
    at.button(key="start").click().run()
    at.button(key="stop:finetune").click().run()
    assert wait_until_done(at, "finetune", timeout=5) == "cancelled"
    at.run()
    ok(at)
    assert at.warning and at.warning[0].value == strings("en")["job.cancelled"]


def test_leaving_the_page_and_coming_back_shows_the_running_job():
    at = app("pages/3_finetune.py", run_fn=slow_run)
    at.button(key="start").click().run()
    at.switch_page("pages/4_compare.py").run()
    ok(at)
    # One active job per session: the race cannot start while the fine-tune runs.
    assert any(i.value == strings("en")["job.busy_elsewhere"] for i in at.info)
    at.switch_page("pages/3_finetune.py").run()
    ok(at)
    assert at.button(key="stop:finetune")  # the live panel of the same job is back
    at.button(key="stop:finetune").click().run()
    wait_until_done(at, "finetune", timeout=5)


def test_race_runs_the_chosen_strategies_and_shows_a_table():
    at = app("pages/4_compare.py")
    at.pills(key="w:race_strategies").set_value(["scratch", "linear_probe"]).run()
    at.button(key="race_start").click().run()
    assert wait_until_done(at, "race") == "done"
    at.run()
    ok(at)
    column = strings("en")["race.col.strategy"]
    table = next(d.value for d in at.dataframe if column in d.value.columns)
    assert len(table) == 2 and list(table.iloc[:, 0]) == [
        strings("en")["strategy.scratch"],
        strings("en")["strategy.linear_probe"],
    ]
    # times on a shared machine are not comparable: throughput instead, and the caching said in words
    assert strings("en")["race.col.throughput"] in table.columns and "seconds" not in table.columns
    assert strings("en")["race.col.cached"] in table.columns
    assert any("cached" in c.value and "images per second" in c.value for c in at.caption)


@pytest.mark.fast
def test_race_table_shows_training_throughput_and_what_was_cached_not_seconds():
    """Two runs whose seconds say the opposite of their speed (17.9 s for the fast probe on a
    busy machine): the table shows no time at all, but each run's training throughput (the
    median epoch, through the trained part) and the frozen groups computed once."""
    from studio.results import race_table
    from tlcore.core.events import History
    from tlcore.serve.jobs import JobView
    from tlcore.train.config import RunConfig

    def run(cached: int, rates: list[float], seconds: float, **extra) -> object:
        history = History()
        history.append(
            Started(4, 3, tuple(GROUPS), tuple(GROUPS[:cached]), 10, 100, "CPU (test)", 20, 10, ("cat", "dog"), cached)
        )
        for epoch, rate in enumerate(rates, start=1):
            history.append(EvalEvent(epoch, 2 * epoch, 0.5, 0.7, 0.8, epoch * 1.0, rate))
        history.append(
            Done(
                {
                    "val_acc": 0.7,
                    "best_val_acc": 0.75,
                    "seconds": seconds,
                    "examples_per_s": 5.0,
                    "trainable_params": 10,
                    "total_params": 100,
                    "cached_depth": cached,
                    **extra,
                }
            )
        )
        return history.snapshot()

    view = JobView(
        "j",
        "done",
        0,
        ("scratch", "linear probe"),
        (run(0, [40.0, 50.0, 60.0], 4.3), run(5, [900.0, 1000.0, 5.0], 17.9, train_per_s=1000.0)),
        (RunConfig(strategy="scratch"), RunConfig(strategy="linear_probe")),
        1.0,
    )
    rows = race_table(view)
    en = strings("en")
    assert not any("second" in column.lower() or column == "s" for column in rows[0])
    assert [r[en["race.col.throughput"]] for r in rows] == [50, 1000]  # median epoch; the engine's own figure
    assert [r[en["race.col.cached"]] for r in rows] == ["–", "stem → stage4"]


def test_pretraining_experiment_runs_scratch_and_pretrained():
    at = app("pages/1_pretraining.py")
    at.button(key="exp_start").click().run()
    assert wait_until_done(at, "experiment") == "done"
    at.run()
    ok(at)
    view = job_of(at, "experiment")
    assert [c.strategy for c in view.configs] == ["scratch", "full"]


# --- the text assets the pages read ---------------------------------------------------


@pytest.mark.fast
def test_ui_strings_have_the_same_keys_in_both_languages():
    # engine.* keys translate tlcore.core.messages, whose English lives in the engine (see test_korean)
    assert set(strings("en")) == {k for k in strings("ko") if not k.startswith("engine.")}
    assert all(strings("ko").values())


@pytest.mark.fast
def test_every_static_ui_key_used_in_the_code_exists():
    used = set()
    for path in [ROOT / "app.py", ROOT / "frame.py", *ROOT.glob("pages/*.py"), *ROOT.glob("studio/*.py")]:
        used |= set(re.findall(r"""\bt\(\s*["']([\w]+\.[\w.]+)["']""", path.read_text(encoding="utf-8")))
    assert used, "the scan found no keys"
    missing = sorted(used - set(strings("en")))
    assert not missing, missing


@pytest.mark.fast
def test_lessons_have_the_same_sections_in_both_languages():
    from studio.i18n import lesson_sections

    names = sorted(p.stem for p in (ROOT / "assets" / "lessons" / "en").glob("*.md"))
    assert names
    for name in names:
        en, ko = lesson_sections(name, "en"), lesson_sections(name, "ko")
        assert list(en) == list(ko), name
        assert all(body for _, body in ko.values()), name


@pytest.mark.parametrize("page", PAGES)
def test_every_widget_has_a_help_tooltip(page):
    at = app(page)
    if page.endswith("3_finetune.py"):  # also the job panel and the results
        at.button(key="start").click().run()
        wait_until_done(at, "finetune")
        at.run()
    widgets = [*at.button, *at.selectbox, *at.slider, *at.select_slider, *at.radio, *at.multiselect, *at.pills]
    assert widgets
    missing = [w.label for w in widgets if not w.help]
    assert not missing, f"widgets without help on {page}: {missing}"


# --- uploads on the Fine-tune page ------------------------------------------------------


def test_a_good_upload_with_korean_names_is_summarised_and_trains():
    files = {f"고양이/{i}.png": png((200, 0, 0)) for i in range(4)}
    files.update({f"강아지/{i}.png": png((0, 0, 200)) for i in range(4)})
    files["강아지/broken.jpg"] = b"not an image"
    at = upload_page(zip_of(files))
    ok(at)
    assert "2" in at.success[0].value and "8" in at.success[0].value  # 2 classes, 8 images
    assert at.expander and "1" in at.expander[0].label  # the skipped file is listed
    at.button(key="start").click().run()
    assert wait_until_done(at, "finetune") == "done"
    config = job_of(at, "finetune").configs[0]
    assert config.dataset == "folder" and sorted(p.name for p in Path(config.data_root).iterdir()) == sorted(["고양이", "강아지"])


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"this is not a zip", "not a zip"),
        (zip_of({f"cats/{i}.png": png((1, 2, 3)) for i in range(3)}), "one class"),
        (zip_of({"../escape.png": png((1, 2, 3)), "a/1.png": png((1, 2, 3))}), "outside its folder"),
    ],
    ids=["not-a-zip", "one-class", "outside-its-folder"],
)
def test_a_bad_upload_gets_a_clear_message_and_no_start(content, reason):
    at = upload_page(content)
    assert not at.exception
    assert any(reason in e.value for e in at.error), [e.value for e in at.error]
    alerts = [e.proto.body for e in at.get("html") if '"tls-alert"' in e.proto.body]  # heard at once too (issue 31)
    assert any(reason in a for a in alerts), alerts
    assert at.button(key="start").disabled
    folder = at.session_state["_uploads"].path  # the session's private folder: the refused upload left nothing
    assert sorted(p.name for p in folder.iterdir()) == [".owner", ".server"]  # only the folder's markers
    assert not str(folder).endswith("tlstudio-uploads")


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_a_zipped_file_claiming_ten_billion_pixels_is_listed_as_skipped_and_the_rest_trains(lang):

    files = {f"cats/{i}.png": png((200, 0, 0)) for i in range(3)}
    files.update({f"dogs/{i}.png": png((0, 0, 200)) for i in range(3)})
    files["cats/bomb.png"] = png_claiming(100_000, 100_000)  # PIL itself raises on this header
    at = upload_page(zip_of(files))
    at.radio(key="w:lang").set_value(lang).run()  # (AppTest formats options in English: switch after)
    ok(at)
    assert at.success[0].value == strings(lang)["upload.ok"].format(classes=2, images=6)
    skipped = [e for e in at.expander if e.label == strings(lang)["upload.skipped.one"].format(n=1)]
    assert skipped, [e.label for e in at.expander]  # "1 file was skipped", one of its kind
    table = skipped[0].dataframe[0].value
    reason = str(table.iloc[0, 1])
    assert list(table.iloc[:, 0]) == ["cats/bomb.png"] and "10,000,000,000" in reason
    assert ("픽셀이 너무 많음" in reason) if lang == "ko" else reason.startswith("too many pixels"), reason
    assert not at.button(key="start").disabled  # the rest of the zip is used


def test_a_new_upload_replaces_the_last_one_but_never_under_a_waiting_run():
    import threading

    gate = threading.Event()

    def held_run(config, emit, should_stop):  # the run waits (as in a busy queue) until the gate opens
        while not gate.is_set() and not should_stop():
            time.sleep(0.02)
        return fake_run(config, emit, should_stop)

    first = zip_of({f"{c}/{i}.png": png((200 * (c == "cats"), 9 * i, 0)) for c in ("cats", "dogs") for i in range(3)})
    second = zip_of({f"{c}/{i}.png": png((0, 9 * i, 200 * (c == "owls"))) for c in ("owls", "bats") for i in range(3)})
    at = app("pages/3_finetune.py", run_fn=held_run)
    at.radio(key="w:data_source").set_value("upload").run()
    at.file_uploader(key="upload").set_value(("first.zip", first, "application/zip")).run()
    at.button(key="start").click().run()
    used = Path(job_of(at, "finetune").configs[0].data_root)
    at.run()  # while a run is on, the settings (the uploader too) fold into an expander, drawn once opened
    assert not at.file_uploader and [e.label for e in at.expander][0] == strings("en")["page3.settings"]
    at.session_state["fold:settings3"] = True  # the learner opens it (studio.widgets.folded)
    at.run()
    at.file_uploader(key="upload").set_value(("second.zip", second, "application/zip")).run()
    ok(at)
    assert at.session_state["_upload_slot:images"] != used.name  # the second upload was taken
    assert sorted(p.name for p in used.iterdir()) == ["cats", "dogs"]  # the waiting run's data is untouched
    gate.set()
    assert wait_until_done(at, "finetune") == "done"
    at.run()
    folder = at.session_state["_uploads"].path
    images = lambda: sorted(p.name for p in folder.glob("images-*"))  # noqa: E731
    assert len(images()) == 2
    at.file_uploader(key="upload").set_value(("bad.zip", b"not a zip", "application/zip")).run()
    assert at.error and len(images()) == 1  # the refused upload left nothing; the replaced one went
    at.file_uploader(key="upload").set_value(("first.zip", first, "application/zip")).run()
    ok(at)
    assert images() == [used.name]  # the second upload, replaced by no run's data, is gone too


def test_an_open_tab_keeps_its_run_alive_on_any_page():
    """The sidebar's queue fragment (on every page) sends the heartbeat for the session's run."""
    queue = JobQueue.started(slow_run, stale_after_s=600)
    job = queue.submit(RunConfig(backbone="studio_resnet", epochs=1), "owner-1")

    def page():
        from studio.page_frame import queue_status

        queue_status()

    at = AppTest.from_function(page, default_timeout=30)
    at.session_state[QUEUE] = queue
    at.session_state["owner"] = "owner-1"
    with queue._lock:
        queue._jobs[job].last_seen -= 500  # as if nobody had looked for 500 s
    before = queue._jobs[job].last_seen
    at.run()
    assert queue._jobs[job].last_seen > before + 400
    assert any("1 running" in m.value or "1 waiting" in m.value for m in at.markdown)
    queue.cancel(job, "owner-1")


def test_a_second_learner_sees_their_place_in_the_queue():
    at = app("pages/3_finetune.py", run_fn=slow_run)
    queue = queue_of(at)
    other = queue.submit(RunConfig(backbone="studio_resnet", epochs=1), "another-browser")  # takes the one worker
    at.button(key="start").click().run()
    ok(at)
    waiting = strings("en")["job.waiting"].format(position=1)
    assert any(i.value == waiting for i in at.info), [i.value for i in at.info]
    queue.cancel(at.session_state["job:finetune"], at.session_state["owner"])
    queue.cancel(other, "another-browser")


def test_sweep_runs_every_freeze_depth_and_draws_the_curve():
    at = app("pages/4_compare.py")
    at.button(key="sweep_start").click().run()
    assert wait_until_done(at, "sweep") == "done"
    view = job_of(at, "sweep")
    assert [c.freeze_depth for c in view.configs] == list(range(len(GROUPS)))
    at.run()
    ok(at)
    assert any(c.value == strings("en")["caption.sweep"] for c in at.caption)


def test_another_backbone_redraws_its_groups_and_counts():
    at = app("pages/2_strategy.py")
    at.selectbox(key="w:backbone").set_value("resnet18").run()
    ok(at)
    at.slider(key="w:freeze_depth").set_value(4).run()  # stem + stage1..3 frozen
    counts = catalog.build_model("resnet18", 10, pretrained=False, image_size=224).param_counts()
    trainable = counts["stage4"] + counts["head"]
    assert readout(at) == (
        f"### trainable: {trainable / 1e6:.3g}M of {sum(counts.values()) / 1e6:.3g}M "
        f"({100 * trainable / sum(counts.values()):.1f}%)"
    )


def test_finetune_page_shows_the_data_first_with_readable_class_names():
    at = app("pages/3_finetune.py")
    ok(at)
    assert any(e.label == strings("en")["preview.title"] for e in at.expander)
    names = ("T-shirt/top", "Ankle boot") if catalog.offline_default() == "efficientnet_lite0" else ("0", "9")
    all_captions = image_captions(at)
    assert all(n in all_captions for n in names), all_captions
    assert not any(re.fullmatch(r"\w+-\d{5,}", c) for c in all_captions), all_captions


def test_try_a_new_image_shows_what_the_pretrained_model_knows():
    """Before a fine-tune: the ImageNet top 5 for a bundled photo; after one: the task's classes."""
    at = app("pages/3_finetune.py")
    ok(at)
    bars = [(e.proto.text, e.proto.value) for e in at.get("progress")]  # "Egyptian cat: 38.4%", 38
    assert len(bars) == 5 and bars[0][0].split(":")[0] in ("Egyptian cat", "tiger cat", "tabby"), bars
    assert [v for _, v in bars] == sorted((v for _, v in bars), reverse=True)
    assert any(strings("en")["try.no_finetune"] == c.value for c in at.caption)


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_a_picture_to_try_claiming_ten_billion_pixels_is_one_translated_line(lang):

    at = app("pages/3_finetune.py")
    at.button_group(key="try:finetune:source").set_value("upload").run()
    at.file_uploader(key="try:finetune:upload").set_value(("huge.png", png_claiming(100_000, 100_000), "image/png")).run()
    at.radio(key="w:lang").set_value(lang).run()  # (AppTest formats options in English: switch after)
    assert not at.exception
    assert [e.value for e in at.error] == [strings(lang)["try.too_many_pixels"]]  # one line, no "Something went wrong"
    assert at.subheader[-1].value == strings(lang)["try.title"] and at.button(key="start")  # the page is all there
    assert not at.get("progress")  # nothing classified


def test_korean_finetune_page_names_fashion_classes_in_korean():
    if catalog.offline_default() != "efficientnet_lite0":
        pytest.skip("the ImageNet backbone is not installed")
    at = app("pages/3_finetune.py", lang="ko")
    ok(at)
    assert "앵클 부츠" in image_captions(at)


# --- your own classes from the camera ----------------------------------------------------


def test_one_click_takes_one_picture_and_the_camera_is_ready_for_the_next():
    at = camera_page()
    ok(at)
    shoot(at, (200, 120, 40))
    ok(at)
    assert counts(at) == ["**thumbs up**: 1 picture", "**thumbs down**: 0 pictures"]
    assert at.camera_input[0].key != "cam_input:0" and at.camera_input[0].value is None  # a fresh camera, no Clear photo
    shoot(at, (40, 200, 120))
    assert counts(at)[0] == "**thumbs up**: 2 pictures"
    at.radio(key="cam_target").set_value("thumbs down").run()
    for color in ((10, 20, 200), (90, 90, 90)):
        shoot(at, color)
    ok(at)
    assert counts(at) == ["**thumbs up**: 2 pictures", "**thumbs down**: 2 pictures"]
    assert not at.button(key="start").disabled  # two a class: enough to start
    at.radio(key="w:lang").set_value("ko").run()
    assert [m.value for m in at.markdown if m.value.startswith("**thumbs")] == [
        "**thumbs up**: 사진 2장",
        "**thumbs down**: 사진 2장",
    ]


@pytest.mark.parametrize("grey, kept", [(0, False), (6, False), (20, True)])
def test_a_black_shot_is_not_kept_and_the_learner_is_told(grey, kept):
    at = camera_page()
    shoot(at, (grey, grey, grey))
    ok(at)
    dark = strings("en")["cam.dark"]
    assert counts(at)[0] == ("**thumbs up**: 1 picture" if kept else "**thumbs up**: 0 pictures")
    assert [i.value for i in at.info if i.value == dark] == ([] if kept else [dark])
    assert at.camera_input[0].value is None  # either way the next click takes the next picture


def test_shots_stop_at_the_caps_per_class_and_per_learner_and_the_page_says_so(monkeypatch):
    from studio import image_panels

    monkeypatch.setattr(image_panels, "MAX_SHOTS_PER_CLASS", 2)
    monkeypatch.setattr(image_panels, "MAX_SHOTS", 3)
    at = camera_page()
    shoot(at, (200, 0, 0))
    shoot(at, (0, 200, 0))
    ok(at)
    assert at.camera_input[0].disabled
    assert strings("en")["cam.class_full"].format(name="thumbs up", n=2) in [i.value for i in at.info]
    at.radio(key="cam_target").set_value("thumbs down").run()
    shoot(at, (0, 0, 200))
    assert at.camera_input[0].disabled and counts(at)[1] == "**thumbs down**: 1 picture"
    assert strings("en")["cam.all_full"].format(n=3) in [i.value for i in at.info]


@pytest.mark.parametrize("names", ["a!, a?", "Cat, cat", "!!!, class 1"])
def test_class_names_that_would_share_a_folder_are_refused_in_one_line(names):
    at = camera_page(names)
    assert not at.exception and not at.error
    clash = [w.value for w in at.warning]
    assert len(clash) == 1 and all(n.strip() in clash[0] for n in names.split(",")), clash
    assert "/" not in clash[0].replace("'/'", "") and not at.camera_input  # no server path; nothing to shoot yet
    at.text_input(key="cam_names").set_value("a!, b?").run()
    ok(at)
    assert at.camera_input  # different folders: the camera is back


def test_a_page_that_fails_says_so_without_the_servers_folders(monkeypatch):
    from studio import image_panels

    def fails(*args, **kwargs):
        raise FileExistsError(17, "File exists", "/tmp/tlstudio-up-k2x9/camera-5e1f/a")

    monkeypatch.setattr(image_panels, "try_image_panel", fails)
    at = app()  # the first run goes through frame.py, whose handler draws the line
    assert not at.exception
    assert [e.value for e in at.error] == [
        strings("en")["error.page"].format(kind="FileExistsError", message="[Errno 17] File exists: '…/a'")
    ]


def image_captions(at: AppTest) -> list[str]:
    """The pictures' captions: drawn as HTML figures with alt text (studio.image_panels.pictures)."""
    import html

    bodies = [e.proto.body for e in at.get("html")]
    return [html.unescape(c) for body in bodies for c in re.findall(r"<figcaption>(.*?)</figcaption>", body)]


# --- one class server, many learners ------------------------------------------------------


def worker_threads() -> int:
    import threading

    return sum(t.name.startswith("tlcore-worker") for t in threading.enumerate())


def send_clear_cache(at: AppTest) -> None:
    """What Streamlit's server does when any browser sends the `clear_cache` message
    (Settings > Clear cache, or a hand-made websocket message): its own handler, run on
    this session's state."""
    from types import SimpleNamespace

    from streamlit.runtime.app_session import AppSession

    AppSession._handle_clear_cache_request(SimpleNamespace(_session_state=at._session_state._state))
    # The browser then reruns the page; its old widget values are gone with the state.
    at._run()


def test_a_clear_cache_message_drops_neither_the_queue_nor_the_runs(monkeypatch):
    from studio import server
    from tlcore.serve import jobs
    from tlcore.serve.jobs import JobLimitError

    monkeypatch.setattr(jobs, "_shared", None)  # a fresh server, training replaced by the stub
    monkeypatch.setattr(server, "_start_server_queue", lambda: JobQueue.started(slow_run))
    at = app("pages/3_finetune.py", use_server_queue=True)
    at.button(key="start").click().run()
    ok(at)
    server_queue, me, job = server.job_queue(), at.session_state["owner"], at.session_state["job:finetune"]
    assert server_queue.get(job, me).state in ("queued", "running")
    workers = worker_threads()

    send_clear_cache(at)
    ok(at)
    assert server.job_queue() is server_queue and worker_threads() == workers  # no new queue, no new worker
    assert server_queue.get(job, me).state in ("queued", "running")  # the run is still there, still watched
    assert at.session_state["owner"] == me  # the same learner: the one-run limit still holds
    with pytest.raises(JobLimitError):
        server_queue.submit(RunConfig(), me)
    assert at.session_state["job:finetune"] == job and buttons(at, "stop:finetune")  # the run is on screen again
    assert not buttons(at, "start")  # no second Start
    server_queue.cancel(job, me)


def test_a_learner_never_sees_or_stops_another_learners_run():
    from studio.job_panel import _request_stop

    server_queue = JobQueue.started(slow_run)
    alice = app("pages/3_finetune.py", queue=server_queue, owner="alice")
    alice.button(key="start").click().run()
    job = alice.session_state["job:finetune"]
    assert buttons(alice, "stop:finetune")

    bob = app("pages/3_finetune.py", queue=server_queue, owner="bob")
    bob.session_state["job:finetune"] = job  # Bob has got hold of Alice's job id
    bob.run()
    ok(bob)
    assert not buttons(bob, "stop:finetune") and not charts(bob)  # nothing of Alice's run
    assert bob.session_state["job:finetune"] is None

    def bob_presses_stop(job_id: str) -> None:
        _request_stop(job_id)

    stop = AppTest.from_function(bob_presses_stop, args=(job,), default_timeout=30)
    stop.session_state[QUEUE] = server_queue
    stop.session_state["owner"] = "bob"
    stop.run()  # the Stop's queue call is over when the run returns: nothing is left to happen later
    assert f"stopping:{job}" not in stop.session_state  # the queue refused Bob's Stop
    assert not server_queue._jobs[job].stop_requested  # Bob's Stop flagged nothing for Alice's run to see
    assert server_queue.get(job, "alice").state in ("queued", "running")
    alice.button(key="stop:finetune").click().run()
    assert wait_until_done(alice, "finetune", timeout=5) == "cancelled"


def test_settings_survive_pages_and_a_language_switch():
    at = app("pages/3_finetune.py")
    at.slider(key="w:epochs").set_value(7).run()
    at.slider(key="w:per_class").set_value(30).run()
    at.selectbox(key="w:strategy").set_value("full").run()
    at.switch_page("pages/2_strategy.py").run()
    at.select_slider(key="w:lr").set_value(3e-4).run()
    at.switch_page("pages/4_compare.py").run()
    at.switch_page("pages/3_finetune.py").run()
    assert any("0.0003" in c.value for c in at.caption)  # page 2's rate is the one page 3 will use
    at.radio(key="w:lang").set_value("ko").run()  # labels change: Streamlit would restart these widgets
    ok(at)
    assert at.title[0].value == strings("ko")["page3.title"]
    assert at.slider(key="w:epochs").value == 7 and at.slider(key="w:per_class").value == 30
    assert at.selectbox(key="w:strategy").value == "full" and at.session_state["lr"] == 3e-4


def test_a_reload_finds_the_learners_settings_and_run_again(monkeypatch):
    """F5 or a second tab: a new Streamlit session whose browser sends the learner cookie."""
    from studio import learner

    monkeypatch.setattr(learner, "_cookie", lambda name: "a-learner-cookie-0123456789")
    server_queue = JobQueue.started(slow_run)
    first = app("pages/3_finetune.py", queue=server_queue)
    first.slider(key="w:epochs").set_value(6).run()
    first.button(key="start").click().run()
    job = first.session_state["job:finetune"]
    assert first.session_state["owner"] == "a-learner-cookie-0123456789"

    monkeypatch.setattr(learner.learners, "token_of_session", lambda session: None)  # a new session
    again = app("pages/3_finetune.py", queue=server_queue)
    ok(again)
    assert again.session_state["job:finetune"] == job and buttons(again, "stop:finetune")  # re-attached
    again.session_state["fold:settings3"] = True  # the settings, folded while the run goes, opened
    again.run()
    assert again.slider(key="w:epochs").value == 6
    again.button(key="stop:finetune").click().run()
    assert wait_until_done(again, "finetune", timeout=5) == "cancelled"


def test_a_new_browser_is_not_someone_elses_learner(monkeypatch):
    """Without the cookie (another browser, or a link copied from the teacher's address bar)
    a session is a new learner with defaults and no runs."""
    from studio import learner
    from studio.state import DEFAULTS

    server_queue = JobQueue.started(slow_run)
    teacher = app("pages/3_finetune.py", queue=server_queue)
    teacher.slider(key="w:epochs").set_value(9).run()
    monkeypatch.setattr(learner.learners, "token_of_session", lambda session: None)
    student = app("pages/3_finetune.py", queue=server_queue)
    assert student.session_state["owner"] != teacher.session_state["owner"]
    assert student.slider(key="w:epochs").value == DEFAULTS["epochs"]


def test_a_stale_label_from_the_browser_after_a_language_switch_is_settled():
    """Streamlit's selectbox sends its value as the shown label; after a switch to Korean the
    browser can send the English label, which reached callbacks as the value (a raw error box)."""
    at = app("pages/3_finetune.py")
    at.selectbox(key="w:backbone").set_value("studio_resnet").run()
    label = "Studio ResNet (pretrained by this project) · works offline"

    def clamp_with_a_label(label: str) -> None:
        import streamlit as st

        from studio.widgets import clamp_depth

        st.session_state["backbone"] = label
        clamp_depth()  # the selectbox's on_change, as the browser triggers it

    probe = AppTest.from_function(clamp_with_a_label, args=(label,), default_timeout=30)
    probe.session_state["owner"] = at.session_state["owner"]
    probe.run()
    assert not probe.exception and not probe.error
    assert probe.session_state["backbone"] == "studio_resnet"  # the learner's last good value


def test_a_backbone_without_weights_offline_is_announced_before_start_and_recorded(monkeypatch):
    from tlcore.models import catalog as registry

    monkeypatch.setattr(registry, "weights_cached", lambda name: name in ("efficientnet_lite0", "studio_resnet"))
    at = app("pages/3_finetune.py")
    at.session_state["online"] = False
    at.selectbox(key="w:backbone").set_value("resnet18").run()
    ok(at)
    warning = [w.value for w in at.warning if "ResNet-18" in w.value]
    assert warning and "EfficientNet-Lite0" in warning[0]  # said before Start, naming what will run
    assert "(needs internet)" in at.selectbox(key="w:backbone").format_func("resnet18")
    at.button(key="start").click().run()
    config = job_of(at, "finetune").configs[0]
    assert config.backbone == "efficientnet_lite0"
    assert "--backbone efficientnet_lite0" in config.to_cli()


def test_the_two_depth_experiments_are_named_apart_and_never_share_an_axis():
    """The app's freeze-depth sweep (all groups pretrained, the first k frozen) and the committed
    transfer-depth experiment (the first k copied, the rest random) are different experiments."""
    at = app("pages/4_compare.py")
    ok(at)
    en = strings("en")
    assert any(m.value == f"#### {en['page4.transfer_depth.heading']}" for m in at.markdown)
    assert any(c.value == en["page4.transfer_depth.intro"] for c in at.caption)
    at.button(key="sweep_start").click().run()
    assert wait_until_done(at, "sweep") == "done"
    at.run()
    by_key = {c.key: c for c in charts(at)}
    import json as _json

    def x_title(key):
        return _json.loads(by_key[key].proto.spec)["layout"]["xaxis"]["title"]["text"]

    assert x_title("sweep") == en["plot.freeze_depth.x"]
    assert x_title("transfer_depth:transfer_depth.json") == en["plot.transfer_depth.x"]


def _in_order(node) -> list:
    """The page's elements in the order they are drawn."""
    children = getattr(node, "children", None)
    if not children:
        return [node]
    return [e for key in sorted(children) for e in _in_order(children[key])]


def test_start_queues_in_its_callback_so_a_click_costs_one_page_run(monkeypatch):
    import studio.page_frame

    at = app("pages/3_finetune.py", run_fn=slow_run)
    runs, real = [], studio.page_frame.ensure_frame
    monkeypatch.setattr(studio.page_frame, "ensure_frame", lambda *a, **k: (runs.append(1), real(*a, **k))[1])
    at.run()
    plain = len(runs)
    at.button(key="start").click().run()
    assert len(runs) - plain == plain  # the click ran the page once, as a plain rerun does: no second run
    assert at.button(key="stop:finetune")  # and that one run already draws the live panel
    ok(at)
    at.button(key="stop:finetune").click().run()
    wait_until_done(at, "finetune", timeout=5)


def test_a_refused_start_is_said_under_the_button():
    from tlcore.serve.class_limits import ClassLimits

    at = app("pages/3_finetune.py", queue=JobQueue.started(fake_run, limits=ClassLimits(max_epochs=1)))
    at.button(key="start").click().run()
    assert "job:finetune" not in at.session_state or at.session_state["job:finetune"] is None
    assert len(at.error) == 1
    order = _in_order(at.main)
    start = next(i for i, e in enumerate(order) if getattr(e, "key", None) == "start")
    said = next(i for i, e in enumerate(order) if e is at.error[0])
    assert said == start + 1, [getattr(e, "type", "?") for e in order[start - 1 : start + 3]]
    at.run()
    assert not at.error  # said once, for the click that was refused


@pytest.mark.fast
def test_far_back_in_the_line_the_panel_polls_less_often():
    from studio.job_panel import FAR_POLL_S, POLL_S, QUEUED_POLL_S, poll_every
    from tlcore.serve.jobs import JobView

    def view(state, position):
        return JobView("j", state, position, ("a",), (), (RunConfig(),), 0.0)

    assert poll_every(view("running", 0)) == POLL_S
    assert poll_every(view("queued", 1)) == poll_every(view("queued", 2)) == QUEUED_POLL_S
    assert poll_every(view("queued", 3)) == poll_every(view("queued", 29)) == FAR_POLL_S > QUEUED_POLL_S


def _live_first(at: AppTest, slot: str) -> None:
    """The slot's live panel comes first under the title, before any tab or setting, and
    carries the script that brings it into view (studio.job_panel.follow)."""
    order = _in_order(at.main)
    title = next(i for i, e in enumerate(order) if getattr(e, "type", None) == "title")
    stop = next(i for i, e in enumerate(order) if getattr(e, "key", None) == f"stop:{slot}")
    tabs = [i for i, e in enumerate(order) if getattr(e, "type", None) == "tab"]
    assert title < stop and all(stop < i for i in tabs), (title, stop, tabs)
    follows = [e for e in order[title:stop] if f".st-key-live-{slot}" in str(getattr(e, "proto", ""))]
    assert follows and "scrollIntoView" in str(follows[0].proto)


@pytest.mark.parametrize(
    ("page", "slot", "start"),
    [
        ("pages/3_finetune.py", "finetune", "start"),
        ("pages/4_compare.py", "race", "race_start"),
        ("pages/4_compare.py", "sweep", "sweep_start"),
        ("pages/5_text.py", "text", "text_start"),
    ],
)
def test_while_a_run_goes_its_live_panel_comes_first_and_follows_every_click(page, slot, start):
    """Pages with tabs (4, 5) draw the running slot's panel above them, so it is in view
    whichever tab is open; each full run of the script brings it into view again."""
    at = app(page, run_fn=slow_run)
    at.button(key=start).click().run()
    ok(at)
    _live_first(at, slot)
    at.run()  # any click: the page is drawn again, the panel first and followed again
    _live_first(at, slot)
    assert len([b for b in at.button if b.key == f"stop:{slot}"]) == 1  # drawn once, not in its tab too
    at.button(key=f"stop:{slot}").click().run()
    wait_until_done(at, slot, timeout=5)
    at.run()
    ok(at)
    assert not [b for b in at.button if b.key == f"stop:{slot}"]


def test_while_page_3_trains_its_settings_reading_guide_and_try_it_are_drawn_only_once_opened():
    """A shut expander's content is still computed, sent and laid out by the browser on every run;
    while a run goes, page 3 folds its settings, reading guide and Try it into expanders whose
    content is drawn only once the learner opens one (studio.widgets.folded), and after the run the
    page is whole again."""
    en = strings("en")
    at = app("pages/3_finetune.py", run_fn=slow_run)
    assert "w:epochs" in [s.key for s in at.slider] and at.button(key="start")
    at.button(key="start").click().run()
    ok(at)
    folds = [e for e in at.expander if e.label in (en["page3.settings"], en["page3.reading"], en["try.title"])]
    assert [e.label for e in folds] == [en["page3.settings"], en["page3.reading"], en["try.title"]]
    assert all(not e.children for e in folds)  # nothing drawn in them
    assert not at.slider and "w:dataset" not in [b.key for b in at.selectbox]
    assert en["try.intro"] not in [c.value for c in at.caption]
    at.session_state["fold:settings3"] = True  # the learner opens the settings
    at.run()
    ok(at)
    assert {"w:per_class", "w:epochs", "w:freeze_depth"} <= {s.key for s in at.slider}
    settings, reading, try_it = (
        e for e in at.expander if e.label in (en["page3.settings"], en["page3.reading"], en["try.title"])
    )
    assert settings.children and not reading.children and not try_it.children
    at.button(key="stop:finetune").click().run()
    wait_until_done(at, "finetune", timeout=5)
    at.run()
    ok(at)
    assert not [e for e in at.expander if e.label in (en["page3.settings"], en["try.title"])]  # whole again
    assert "w:epochs" in [s.key for s in at.slider] and at.button(key="start")
    assert en["try.intro"] in [c.value for c in at.caption]


def run_keeping_a_model(config, emit, should_stop):
    """fake_run that returns a (tiny) fine-tuned model, as every real image run does (the queue keeps it)."""
    from tlcore.train.finetuned import Finetuned

    result = fake_run(config, emit, should_stop)
    model = catalog.build_model("studio_resnet", 2, pretrained=False, image_size=16)  # random weights, tiny
    return dataclasses.replace(result, model=Finetuned(model, ("cat", "dog"), 16, "studio_resnet"))


def test_page_1_after_column_fills_from_the_pages_own_experiment():
    """'After fine-tuning' on page 1 said to go to another page and never filled there: it
    shows the model the page's own experiment fine-tuned from the pretrained weights."""
    at = app(run_fn=run_keeping_a_model)
    ok(at)
    assert any(c.value == strings("en")["try.no_experiment"] for c in at.caption)
    at.button(key="exp_start").click().run()
    assert wait_until_done(at, "experiment") == "done"
    at.run()
    ok(at)
    assert not any(c.value == strings("en")["try.no_experiment"] for c in at.caption)
    bars = [e.proto.text for e in at.get("progress")]
    assert any(b.startswith("cat:") for b in bars) and any(b.startswith("dog:") for b in bars), bars


def caption_pattern(template: str) -> re.Pattern:
    """A caption template of the i18n files ("looking for “{cls}” ({p:.0%})") as a regex."""
    return re.compile(".+".join(re.escape(part) for part in re.split(r"\{[^}]*\}", template)))


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_try_it_shows_what_each_model_looks_at_side_by_side(lang):
    """Under the two columns: Grad-CAM over the picture for the pretrained model's top
    ImageNet class, and after a fine-tune for the fine-tuned model's class, captioned in
    the learner's language; a flat map is said to be flat."""
    if catalog.backbone(catalog.offline_default()).pretrained_on != "imagenet":
        pytest.skip("the ImageNet backbone is not installed")
    text = strings(lang)
    before, after = caption_pattern(text["try.map_before"]), caption_pattern(text["try.map_after"])
    at = app(run_fn=run_keeping_a_model, lang=lang)
    ok(at)
    assert any(c.value == text["try.map_intro"] for c in at.caption)
    shown = image_captions(at)
    assert not [c for c in shown if after.match(c)], shown
    cat = [c for c in shown if before.match(c)]
    names = ("Egyptian cat", "tiger cat", "tabby") if lang == "en" else ("이집트 고양이", "호랑무늬 고양이", "줄무늬 고양이")
    assert len(cat) == 1 and any(name in cat[0] for name in names), shown  # ImageNet's names in the learner's language
    group = "stage4" if lang == "en" else "4단계"
    assert f"{group}, 7×7" in cat[0] and text["try.map_flat"] not in cat[0], cat  # the cat's map has a place that counts
    at.button(key="exp_start").click().run()
    assert wait_until_done(at, "experiment") == "done"
    at.run()
    ok(at)
    shown = image_captions(at)
    mapped = [c for c in shown if after.match(c)]
    assert [c for c in shown if before.match(c)] and len(mapped) == 1, shown
    assert "“cat”" in mapped[0] or "“dog”" in mapped[0], mapped
    # The stand-in model: studio_resnet at 16 px, whose last feature map is one cell: nothing can stand out
    assert f"{group}, 1×1" in mapped[0] and mapped[0].endswith(text["try.map_flat"]), mapped


def test_page_1_what_transfers_table_shows_all_its_columns():
    """A markdown table (it wraps its cells), not a dataframe that showed 2 of 7 columns at 1280 px."""
    from tlcore.lab.experiments import transfer_contrast

    if not transfer_contrast():
        pytest.skip("no committed transfer-contrast results")
    at = app()
    en = strings("en")
    heads = [en[f"page1.contrast.{k}"] for k in ("backbone", "dataset", "per_class", "scratch", "best", "best_acc", "gain")]
    tables = [m.value for m in at.markdown if all(h in m.value for h in heads)]
    assert len(tables) == 1 and tables[0].count("\n") == 1 + len(transfer_contrast())
    assert not [d for d in at.dataframe if en["page1.contrast.backbone"] in d.value.columns]


def failing_run(config, emit, should_stop):
    """A run that fails after it started (out of memory, say), said in the engine's words."""
    emit(Started(4, 2, tuple(GROUPS), (), 100, 200, "CPU (test)", 20, 10, ("cat", "dog")))
    emit(Failed("out of memory while training"))


def test_a_failed_run_is_said_in_the_assertive_region():
    """Issue 31, item 2: the end of a failed run reaches a screen reader at once (tls-alert),
    not in the polite one (tls-live) that progress goes to (tests/test_browser_a11y.py)."""
    import json

    at = app("pages/3_finetune.py", run_fn=failing_run)
    at.button(key="start").click().run()
    assert wait_until_done(at, "finetune") == "failed"
    at.run()
    assert at.error and "out of memory while training" in at.error[0].value
    scripts = [e.proto.body for e in at.get("html") if "tls-alert" in e.proto.body or "tls-live" in e.proto.body]
    said = [s for s in scripts if "out of memory while training" in s]
    assert said and all('"tls-alert"' in s for s in said), said  # the failure: the assertive region
    assert json.dumps("tls-live") not in "".join(said)


def test_a_run_the_page_sees_going_is_said_to_have_started_and_its_end_is_said():
    """The polite region says a run started as soon as the page sees it running (before any epoch
    ends), then its end. (In Chromium a 2 s run can end between two polls: the page then says only
    that it waited and that it finished; tests/test_browser_a11y.py.)"""
    import threading

    gate = threading.Event()

    def held_run(config, emit, should_stop):  # started, then holds until the test has looked
        emit(Started(4, 2, tuple(GROUPS), (), 100, 200, "CPU (test)", 20, 10, ("cat", "dog")))
        while not gate.is_set() and not should_stop():
            time.sleep(0.02)
        return fake_run(config, emit, should_stop)

    def said(at) -> str:
        return "".join(e.proto.body for e in at.get("html") if "tls-live" in e.proto.body)

    at = app("pages/3_finetune.py", run_fn=held_run)
    at.button(key="start").click().run()
    assert wait_for(lambda: job_of(at, "finetune").state == "running", timeout=20)
    at.run()
    assert "started" in said(at), said(at)
    gate.set()
    assert wait_until_done(at, "finetune") == "done"
    at.run()
    assert "Finished in" in said(at), said(at)


def test_the_servers_start_computes_what_page_1s_first_visit_would_wait_for():
    """studio.preload (app.py, before the server answers) leaves page 1's try-it panel and the time
    notes nothing to compute: the first photo's top 5 and the default backbone's FLOPs per group
    (2.5 s of a fresh server's first page script on the 2-core box, session 40)."""
    import studio
    from studio.state import DEFAULTS
    from tlcore.models import catalog, imagenet
    from tlcore.train import time_estimate

    imagenet.sample_top_ids.cache_clear()
    time_estimate.group_gflops.cache_clear()
    studio._warm_first_page()
    before_top, before_flops = imagenet.sample_top_ids.cache_info(), time_estimate.group_gflops.cache_info()
    assert before_top.currsize == 1 and before_flops.currsize >= 1
    imagenet.sample_top_ids(catalog.offline_default(), imagenet.SAMPLE_PHOTOS[0].name)
    time_estimate.group_gflops(DEFAULTS["backbone"], DEFAULTS["image_size"])
    assert imagenet.sample_top_ids.cache_info().hits == before_top.hits + 1
    assert time_estimate.group_gflops.cache_info().hits == before_flops.hits + 1
