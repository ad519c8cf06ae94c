"""Join codes, nicknames and members: what a learner types to join a class and what the class knows of them.

A code is 6 characters from an alphabet without look-alikes (no 0/O, 1/I/L, 2/Z, 5/S, 8/B, 9), read
aloud without doubt. A nickname is the learner's own or one given ("Blue Otter 7", "파란 수달 7" on a
Korean page). Not for: who joined (tlcore.serve.classroom.state).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

ALPHABET = "ACDEFGHJKMNPQRTUVWXY3467"  # read aloud without doubt: no 0 O 1 I L 2 Z 5 S 8 B 9
CODE_LENGTH = 6
NICKNAME_MAX = 24
# Given nicknames, in the learner's language (the same words, so a class of two languages reads alike).
ADJECTIVES = {
    "en": ("Blue", "Red", "Green", "Gold", "Silver", "Quick", "Calm", "Brave", "Bright", "Lucky", "Kind", "Bold"),
    "ko": ("파란", "빨간", "초록", "금빛", "은빛", "재빠른", "차분한", "용감한", "밝은", "행운의", "다정한", "대담한"),
}
ANIMALS = {
    "en": ("Otter", "Fox", "Owl", "Panda", "Tiger", "Heron", "Lynx", "Koala", "Seal", "Whale", "Crane", "Hare"),
    "ko": ("수달", "여우", "부엉이", "판다", "호랑이", "왜가리", "스라소니", "코알라", "물범", "고래", "두루미", "토끼"),
}
MAX_RENAMES = 10  # a learner's name changes in one class (each is shown to the teacher and written to the class file)
RESERVED_NAMES = {"teacher", "선생님", "교사", "admin"}  # a learner may not pass for the teacher


def new_code(rng: Callable[[Sequence[str]], str] = secrets.choice) -> str:
    return "".join(rng(ALPHABET) for _ in range(CODE_LENGTH))


def normal_code(typed: str) -> str:
    """What a learner typed, as a code: upper case, spaces and dashes dropped ("abc-d3f" -> "ABCD3F")."""
    return "".join(ch for ch in str(typed).upper() if not ch.isspace() and ch != "-")[:32]


def given_nickname(rng: secrets.SystemRandom | None = None, lang: str = "en") -> str:
    rng = rng or secrets.SystemRandom()
    lang = lang if lang in ADJECTIVES else "en"
    return f"{rng.choice(ADJECTIVES[lang])} {rng.choice(ANIMALS[lang])} {rng.randint(1, 99)}"


def clean_nickname(typed: str) -> str:
    """A nickname as shown: printable, one line, at most NICKNAME_MAX characters ('' when nothing is
    left, or when it names the teacher)."""
    text = "".join(ch if ch.isprintable() else " " for ch in str(typed))
    name = " ".join(text.split())[:NICKNAME_MAX]
    return "" if name.casefold() in RESERVED_NAMES else name


@dataclass
class Member:
    """A learner in the class, as the class knows them (never their id: that is their cookie)."""

    nickname: str
    number: int  # 1, 2, ... in joining order: what the projector shows when names are hidden
    joined: float  # wall clock
    seen: float = field(default_factory=time.monotonic)  # last poll (not kept: a restart sees everyone anew)
    address: str | None = None  # where they joined from (not kept): one open part per address while others wait
    renames: int = 0  # name changes so far (not kept): at most MAX_RENAMES
    arrived: float = float("-inf")  # when they joined, on the class's clock (not kept: loaded members arrived long ago)
