"""English and Korean: UI strings, lesson sections, and the language kept in the URL.

- `t("key", **values)` looks a UI string up in assets/i18n/<lang>.json (English when a
  key is missing in Korean, the key itself when missing everywhere, so a gap shows
  on screen instead of crashing a class);
- `lesson("pretraining", "why")` renders one section of assets/lessons/<lang>/<name>.md,
  where sections are written as `## Title {#key}`;
- the language lives in the URL (`?lang=ko`) so a teacher can share a Korean link, and
  in the session so it survives page switches, which clear the URL's parameters.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import streamlit as st

from studio import learner
from studio.bound_widgets import bound

ASSETS = Path(__file__).resolve().parent.parent / "assets"
LANGS = {"en": "English", "ko": "한국어"}
DEFAULT_LANG = "en"
_SECTION = re.compile(r"^## (?P<title>.+?)\s*\{#(?P<key>[\w-]+)\}\s*$", re.MULTILINE)


def relabelled(key: str, options) -> str:
    """`key`, for a selectbox whose option labels are in the page's language. After a language switch the
    box's value is given back before it is drawn, so the box shows it in the new language: Streamlit's
    selectbox keeps showing the label its value had when it was chosen (a teacher's Class page in Korean
    showed the English question, session 41), unless the page sets its value. Only after a switch: a
    value set by the page is sent to the browser again, on every run of a timer fragment too."""
    seen = f"_lang_of:{key}"
    lang = current_lang()
    if st.session_state.get(seen, lang) != lang and st.session_state.get(key) in options:
        st.session_state[key] = st.session_state[key]
    st.session_state[seen] = lang
    return key


def current_lang() -> str:
    """The session's language; the URL wins on first load (a shared ?lang=ko link), then the
    language this learner last used (a new tab or a typed address without ?lang)."""
    if "lang" not in st.session_state:
        stored = learner.learners.load(learner.owner()).get("lang")
        wanted = st.query_params.get("lang") or stored or browser_lang()
        st.session_state["lang"] = wanted if wanted in LANGS else DEFAULT_LANG
    return st.session_state["lang"]


def browser_lang() -> str:
    """The browser's own language where we have it (a Korean phone's ko-KR opens Korean)."""
    locale = str(getattr(st.context, "locale", None) or "").lower()
    return next((lang for lang in LANGS if locale.startswith(lang)), DEFAULT_LANG)


def sync_url() -> None:
    """Write the language back into the URL (page switches drop query parameters)."""
    lang = current_lang()
    if st.query_params.get("lang") != lang:
        st.query_params["lang"] = lang


def language_picker() -> None:
    """The sidebar's English / 한국어 switch."""
    current_lang()
    st.sidebar.radio(
        "Language / 언어",
        options=list(LANGS),
        format_func=LANGS.get,
        **bound("lang"),
        horizontal=True,
        help="Switch the whole app between English and Korean. / 앱 전체를 영어와 한국어 사이에서 바꿉니다.",
    )
    sync_url()


@functools.cache
def strings(lang: str) -> dict[str, str]:
    path = ASSETS / "i18n" / f"{lang}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def translated(key: str, fallback: str) -> str:
    """A UI string if the i18n files have one (registry titles are English), else the fallback."""
    text = t(key)
    return fallback if text == key else text


def t(key: str, lang: str | None = None, **values) -> str:
    lang = lang or current_lang()
    text = strings(lang).get(key) or strings(DEFAULT_LANG).get(key) or key
    return text.format(**values) if values else text


def t_count(key: str, n: int, **values) -> str:
    """A string about n things in the form n needs: `<key>.one` for exactly one ("1 picture"),
    `<key>` otherwise ("2 pictures"). Korean counts with one form ("사진 1장", "사진 2장"), so its
    two entries read alike; both languages keep both keys."""
    return t(f"{key}.one" if n == 1 else key, n=n, **values)


@functools.cache
def lesson_sections(name: str, lang: str) -> dict[str, tuple[str, str]]:
    """key -> (title, markdown body) of every section in a lesson file."""
    text = (ASSETS / "lessons" / lang / f"{name}.md").read_text(encoding="utf-8")
    matches = list(_SECTION.finditer(text))
    sections = {}
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        sections[match["key"]] = (match["title"], text[match.end() : end].strip())
    return sections


def lesson_text(name: str, key: str, lang: str | None = None) -> tuple[str, str]:
    lang = lang or current_lang()
    sections = lesson_sections(name, lang)
    if key not in sections:
        sections = lesson_sections(name, DEFAULT_LANG)
    return sections.get(key, (key, ""))


def lesson(name: str, key: str, *, level: int = 3, expanded: bool | None = None) -> None:
    """Show one lesson section: as a heading and text, or inside an expander."""
    title, body = lesson_text(name, key)
    if expanded is None:
        st.markdown(f"{'#' * level} {title}")
        st.markdown(body)
    else:
        with st.expander(title, expanded=expanded):
            st.markdown(body)


def explain(key: str | None, values: dict | None, english: str) -> str:
    """An engine message (tlcore.core.messages) in the current language: its translation from
    `engine.<key>`, else the engine's own English."""
    text = strings(current_lang()).get(f"engine.{key}") if key else None
    if text is None:
        return english
    # A value may be a message itself (a skipped file's reason inside a refusal): translated too.
    values = {name: _translated(value) for name, value in (values or {}).items()}
    try:
        return text.format(**values)
    except (KeyError, IndexError, ValueError):
        return english


def explain_error(error: BaseException | object) -> str:
    """An engine error, or a value that carries a message (tlcore.core.messages.Reason), in the
    current language; anything else as it is."""
    from tlcore.core.messages import message_of

    message = message_of(error)
    return explain(message.key, message.values, str(error)) if message else str(error)


def _translated(value):
    from tlcore.core.messages import message_of

    return explain_error(value) if message_of(value) else value


_CPU = re.compile(r"CPU \((?P<threads>\d+) threads? of (?P<cores>\d+) cores?\)")


def device_text(description: str) -> str:
    """The engine's device description ('CPU (2 threads of 2 cores)') in the current language."""
    return _CPU.sub(lambda m: t("device.cpu", threads=m["threads"], cores=m["cores"]), description)


def duration(seconds: float) -> str:
    """'< 1 s', '45 s', '3 min', '1 h 5 min' in the current language (never '0 s')."""
    if seconds < 0.5:
        return t("time.under_second")
    seconds = round(seconds)
    if seconds < 90:
        return t("time.seconds", n=seconds)
    minutes = round(seconds / 60)
    if minutes < 90:
        return t("time.minutes", n=minutes)
    return t("time.hours", h=minutes // 60, m=minutes % 60)


def run_labels(view) -> list[str]:
    """Each run's name on screen (`view`: a tlcore.serve.jobs.JobView or JobSummary): a strategy's key (`linear_probe`) by its name in this language.

    A race is submitted with its strategies' keys; a run stored before that carries the name
    in the language it was started in ("From scratch"), which is translated too."""
    return [
        t(f"strategy.{config.strategy}") if label in _strategy_names(config.strategy) else label
        for label, config in zip(view.labels, view.configs, strict=False)
    ]


def _strategy_names(strategy: str) -> set[str]:
    """A strategy's key and its name in every language (a race started in English, shown in Korean)."""
    return {strategy} | {strings(lang).get(f"strategy.{strategy}", strategy) for lang in LANGS}


@functools.cache
def _imagenet_names(lang: str) -> tuple[str, ...]:
    """ImageNet's 1000 class names in `lang`, by class id (assets/i18n/imagenet_<lang>.json; the
    English are torchvision's own)."""
    path = ASSETS / "i18n" / f"imagenet_{lang}.json"
    if not path.exists():
        from tlcore.models.imagenet import categories

        return categories()
    return tuple(json.loads(path.read_text(encoding="utf-8")))


def imagenet_title(class_id: int) -> str:
    """An ImageNet class's name in the learner's language ("tabby" -> "줄무늬 고양이")."""
    return _imagenet_names(current_lang())[class_id]


_MARKUP = re.compile(r"([\\`*_{}\[\]()#+\-!|~<>$:&=^.@])")  # what markdown, LaTeX, colours, icons or HTML read
_WWW = re.compile(r"(www)(\\\.)", re.IGNORECASE)


def as_text(text: str) -> str:
    """Anyone's text (a nickname, a teacher's own question) inside markdown, shown as it was typed:
    every mark markdown reads escaped (no emphasis, link, heading, list, colour, LaTeX, icon or HTML;
    "http://" and "a@b" lose their autolink with their ":" and "@"), and a zero-width space after
    "www" (its autolink, which escaping alone did not stop). Numbers stay as typed ("0.001")."""
    return _WWW.sub("\\1\u200b\\2", _MARKUP.sub(r"\\\1", str(text)))


def class_title(dataset: str, name: str) -> str:
    """A class name in the learner's language where the i18n files have one."""
    key = f"class.{dataset}.{name}"
    text = t(key)
    return name if text == key else text
