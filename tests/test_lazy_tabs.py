"""While a run trains, pages 4 and 5 draw only their open tab (studio.widgets.tab_drawn): a closed
tab's content is computed, sent and laid out by the browser on every run, on the cores the run
trains on. What a tab that is not drawn holds is not lost: the masked-word sentence and model, the
live pretraining's sentence and an uploaded zip or CSV outlive the runs that do not draw their
widgets (Streamlit forgets a widget's value, and an uploader its file, whenever a run does not draw
it: another page did that before, a closed tab or fold while a run goes does it now)."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.apptest import app, job_of, ok, strings, text_app, wait_until_done
from tests.helpers.fakes import png, slow_run, zip_of

EN = strings("en")


def keys(at) -> set[str]:
    kinds = ("button", "selectbox", "slider", "text_input", "radio", "toggle", "file_uploader", "button_group")
    return {w.key for kind in kinds for w in getattr(at, kind) if w.key}


def stop(at, slot: str) -> None:
    at.button(key=f"stop:{slot}").click().run()
    wait_until_done(at, slot, timeout=5)
    at.run()
    ok(at)


def captions(at) -> list[str]:
    return [c.value for c in at.caption]


def test_while_the_race_trains_page_4_draws_only_the_open_tab_and_every_tab_again_after():
    at = app("pages/4_compare.py", run_fn=slow_run)
    assert {"race_start", "sweep_start"} <= keys(at) and EN["caption.matrix_recommended"] in captions(at)
    at.button(key="race_start").click().run()
    ok(at)
    assert "stop:race" in keys(at) and "sweep_start" not in keys(at)  # the sweep's tab: not drawn
    assert EN["caption.matrix_recommended"] not in captions(at)  # nor the matrix's
    assert "w:epochs" in keys(at)  # the settings above the tabs are
    at.session_state["compare_tab"] = EN["page4.tab.matrix"]  # the learner opens the matrix
    at.run()
    ok(at)
    assert EN["caption.matrix_recommended"] in captions(at) and "sweep_start" not in keys(at)
    stop(at, "race")
    assert {"race_start", "sweep_start"} <= keys(at) and EN["caption.matrix_recommended"] in captions(at)


def test_while_a_text_run_trains_page_5_draws_only_the_open_tab_and_loses_no_sentence():
    at = app("pages/5_text.py", run_fn=slow_run)
    at.text_input(key="w:mask_sentence").input("A dog is a [MASK].").run()
    at.text_input(key="w:mlm_live_sentence").input("Seoul is a [MASK] city.").run()
    at.selectbox(key="w:mask_model").set_value("bert_tiny").run()
    at.button(key="text_start").click().run()
    ok(at)
    drawn = keys(at)
    assert "stop:text" in drawn and "w:text_dataset" in drawn  # the open tab: fine-tune
    assert not drawn & {"w:mask_sentence", "w:mlm_live_sentence", "mlm_live_start", "text_race_start"}
    at.session_state["text_tab"] = EN["text.tab.compare"]
    at.run()
    ok(at)
    assert "w:text_dataset" not in keys(at) and EN["job.busy_elsewhere"] in [i.value for i in at.info]
    stop(at, "text")
    assert {"w:text_dataset", "text_race_start", "text_start", "mlm_live_start"} <= keys(at)
    assert at.text_input(key="w:mask_sentence").value == "A dog is a [MASK]."
    assert at.text_input(key="w:mlm_live_sentence").value == "Seoul is a [MASK] city."
    assert at.selectbox(key="w:mask_model").value == "bert_tiny"


def two_classes() -> bytes:
    return zip_of({f"{c}/{i}.png": png((200 * (c == "cats"), 9 * i, 0)) for c in ("cats", "dogs") for i in range(3)})


def test_an_uploaded_zip_outlives_the_runs_that_do_not_draw_its_uploader_until_the_learner_removes_it():
    at = app("pages/3_finetune.py", run_fn=slow_run)
    at.radio(key="w:data_source").set_value("upload").run()
    at.file_uploader(key="upload").set_value(("pets.zip", two_classes(), "application/zip")).run()
    ok(at)
    folder = at.session_state["upload_summary"][1]
    at.button(key="start").click().run()  # the settings, the uploader with them, fold away while it trains
    assert not at.file_uploader
    stop(at, "finetune")
    # The uploader is empty again (Streamlit forgot its file); the page goes on with the same zip
    assert at.file_uploader(key="upload").value is None
    assert EN["upload.kept"].format(name="pets.zip") in captions(at)
    assert at.success[0].value == EN["upload.ok"].format(classes=2, images=6)
    assert not at.button(key="start").disabled
    at.button(key="start").click().run()
    assert job_of_data(at) == folder  # the next run trains on it
    stop(at, "finetune")
    at.button(key="upload_forget:images").click().run()  # "Remove it"
    ok(at)
    assert EN["upload.hint"] in captions(at) and at.button(key="start").disabled
    assert not Path(folder).exists()  # its files went with it (no run reads them)


def test_taking_the_file_out_of_the_uploader_forgets_the_upload():
    at = app("pages/3_finetune.py")
    at.radio(key="w:data_source").set_value("upload").run()
    at.file_uploader(key="upload").set_value(("pets.zip", two_classes(), "application/zip")).run()
    folder = at.session_state["upload_summary"][1]
    at.file_uploader(key="upload").set_value(None).run()  # its x
    ok(at)
    assert EN["upload.hint"] in captions(at) and at.button(key="start").disabled
    assert "upload_summary" not in at.session_state and not Path(folder).exists()


def test_an_uploaded_csv_outlives_a_visit_to_another_page():
    at = text_app()
    at.radio(key="w:text_source").set_value("upload").run()
    rows = "".join(f"{'good' if i % 2 else 'bad'} film {i},{'pos' if i % 2 else 'neg'}\n" for i in range(40))
    at.file_uploader(key="text_upload").set_value(("reviews.csv", ("text,label\n" + rows).encode(), "text/csv")).run()
    ok(at)
    at.switch_page("pages/2_strategy.py").run()
    at.switch_page("pages/5_text.py").run()
    ok(at)
    assert at.file_uploader(key="text_upload").value is None
    assert EN["upload.kept"].format(name="reviews.csv") in captions(at)
    assert at.success[0].value.startswith(EN["text.upload_ok"].split("{")[0])
    assert not at.button(key="text_start").disabled
    at.button(key="upload_forget:text").click().run()
    ok(at)
    assert EN["text.upload_hint"] in captions(at) and at.button(key="text_start").disabled


def job_of_data(at) -> str:
    return job_of(at, "finetune").configs[0].data_root
