"""tlcore.core.bounded: the one shape of every cache (least recently used first, by count or bytes)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest
import torch

from tlcore.core.bounded import LRU, tensor_bytes

pytestmark = pytest.mark.fast  # every test of this module is in the fast tier (`pytest -m fast`)


def test_a_count_bound_drops_the_least_recently_used_first():
    cache = LRU(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert "b" not in cache and cache.get("a") == 1 and cache.get("c") == 3
    assert len(cache) == 2 and cache.total == 2 and (cache.hits, cache.misses) == (3, 0)
    assert cache.get("b") is None and cache.misses == 1


def test_a_byte_bound_counts_each_entrys_tensors_and_replacing_a_key_frees_its_old_bytes():
    cache = LRU(3 * 4000, weigh=tensor_bytes)
    for key in "abc":
        cache.put(key, (torch.zeros(1000),))  # 4000 bytes each
    cache.put("a", (torch.zeros(500),))  # replaced: 2000 bytes now, nothing dropped
    assert len(cache) == 3 and cache.total == 2000 + 2 * 4000
    cache.put("d", (torch.zeros(1000),))
    assert "b" not in cache and cache.total == 2000 + 2 * 4000  # b was the oldest


def test_an_entry_over_the_whole_bound_is_refused_unless_the_newest_is_kept():
    refusing = LRU(100, weigh=tensor_bytes)
    refusing.put("small", torch.zeros(10))
    assert refusing.put("huge", torch.zeros(1000)) is False and "huge" not in refusing and "small" in refusing
    keeping = LRU(100, weigh=tensor_bytes, keep_newest=True)
    keeping.put("small", torch.zeros(10))
    assert keeping.put("huge", torch.zeros(1000)) is True and keeping.items() == [("huge", keeping.get("huge"))]


def test_a_bound_named_by_a_setting_is_read_at_every_put_in_its_unit(monkeypatch):
    cache = LRU("TLS_FEATURE_CACHE_MB", unit=2**20, weigh=tensor_bytes)
    monkeypatch.setenv("TLS_FEATURE_CACHE_MB", "1")
    assert cache.limit == 2**20 and cache.put("big", torch.zeros(2**19)) is False  # 2 MB: over a 1 MB bound
    monkeypatch.setenv("TLS_FEATURE_CACHE_MB", "4")
    assert cache.limit == 4 * 2**20 and cache.put("big", torch.zeros(2**19)) is True  # no new store needed


def test_get_or_make_makes_once_and_never_holds_the_lock_while_making():
    cache = LRU(4)
    inside, release = threading.Event(), threading.Event()

    def slow():
        inside.set()
        release.wait(10)
        return "slow"

    worker = threading.Thread(target=cache.get_or_make, args=("k", slow))
    worker.start()
    assert inside.wait(10)
    cache.put("other", 1)  # another caller is not kept waiting by the slow make
    assert cache.get("other") == 1
    release.set()
    worker.join(10)
    made = []
    assert cache.get_or_make("k", lambda: made.append(1) or "again") == "slow" and made == []
    cache.put("none", None)  # a kept None is a hit, not a miss to make again
    assert cache.get_or_make("none", lambda: "made") is None


def test_tensor_bytes_adds_up_tensors_in_containers_dataclasses_and_objects():
    @dataclass
    class Split:
        x: torch.Tensor
        y: torch.Tensor
        classes: tuple[str, ...]

    split = Split(torch.zeros(4, 3, dtype=torch.float32), torch.zeros(4, dtype=torch.int64), ("a", "b"))
    assert tensor_bytes(split) == 4 * 3 * 4 + 4 * 8
    assert tensor_bytes({"a": [torch.zeros(2, dtype=torch.float16), None], "b": "text"}) == 4
    assert tensor_bytes(3) == 0
