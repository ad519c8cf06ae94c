"""The teacher's secret cannot be guessed at speed (tlcore.serve.guess_limiter): the count is per client
address and per server, never per cookie, waits grow, and memory stays bounded."""

from __future__ import annotations

import pytest

from tlcore.serve.guess_limiter import GuessLimiter


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def attack(limiter: GuessLimiter, clock: Clock, *, clients: int, seconds: float, address_of) -> int:
    """`clients` scripts each try a guess every 10 ms (a new cookie each time: cookies are not
    counted at all); returns how many guesses were compared (not told to wait)."""
    compared, end, n = 0, clock.now + seconds, 0
    while clock.now < end:
        for c in range(clients):
            n += 1
            address = address_of(c, n)
            if limiter.wait_s(address) == 0:
                limiter.wrong(address)
                compared += 1
        clock.now += 0.01
    return compared


def test_eight_scripts_from_one_address_get_a_few_guesses_then_growing_waits():
    clock = Clock()
    limiter = GuessLimiter(free=5, per_minute=10, clock=clock)
    assert attack(limiter, clock, clients=8, seconds=60, address_of=lambda c, n: "10.0.0.7") == 5
    # then 1 guess after 60 s, 1 after 120 s more, ...: 3 in the next 7 minutes
    assert attack(limiter, clock, clients=8, seconds=7 * 60, address_of=lambda c, n: "10.0.0.7") == 3
    assert limiter.wait_s("10.0.0.7") > 200 and limiter.wait_s("10.0.0.8") == 0  # others are not blocked


def test_eight_scripts_rotating_addresses_get_at_most_ten_guesses_a_minute_and_memory_stays_bounded():
    """Addresses that can be faked (X-Forwarded-For trusted from a proxy) or a whole class behind
    one: the server's own bound holds."""
    clock = Clock()
    limiter = GuessLimiter(free=5, per_minute=10, max_addresses=1000, clock=clock)
    for minute in range(5):
        got = attack(limiter, clock, clients=8, seconds=60, address_of=lambda c, n: f"fake-{n}")
        assert got <= 10 + 6, (minute, got)  # the budget, then one fresh address every 10 s
    assert len(limiter) <= 1000


@pytest.mark.fast
def test_the_right_secret_starts_an_address_over_and_a_quiet_one_is_forgiven():
    clock = Clock()
    limiter = GuessLimiter(free=2, per_minute=100, forget_s=600, clock=clock)
    limiter.wrong("a")
    limiter.right("a")
    limiter.wrong("a")
    assert limiter.wait_s("a") == 0  # one miss since the right one: still free
    limiter.wrong("a")
    assert 59 < limiter.wait_s("a") <= 60
    clock.now += 601
    limiter.wrong("a")
    assert limiter.wait_s("a") == 0  # forgiven after 10 quiet minutes: one miss counted


@pytest.mark.fast
def test_a_script_guessing_from_a_few_addresses_never_keeps_the_teacher_out():
    """The server's budget is spent by a script on three addresses (its own back-off aside, it
    keeps guessing); the teacher types the right secret from a fresh address: compared at once,
    and even with fresh addresses made up for every guess, within 10 s."""
    clock = Clock()
    limiter = GuessLimiter(free=5, per_minute=10, clock=clock)
    attack(limiter, clock, clients=3, seconds=30, address_of=lambda c, n: f"10.0.0.{c}")
    assert limiter.wait_s("10.0.0.1") > 0  # the guessers wait ...
    assert limiter.wait_s("10.0.0.99") == 0  # ... and the teacher's laptop does not
    for start in range(0, 120, 7):  # the teacher arrives at any moment of a made-up-address flood
        clock.now += 7
        attack(limiter, clock, clients=2, seconds=1, address_of=lambda c, n, s=start: f"fake-{s}-{n}")
        assert limiter.wait_s(f"teacher-{start}") <= 10, start


@pytest.mark.fast
def test_the_server_budget_still_slows_the_addresses_that_spent_it():
    clock = Clock()
    limiter = GuessLimiter(free=100, per_minute=10, clock=clock)  # no per-address back-off in the way
    for i in range(10):
        limiter.wrong(f"10.0.0.{i % 2}")
        clock.now += 1
    assert 49 < limiter.wait_s("10.0.0.0") <= 51 and 49 < limiter.wait_s("10.0.0.1") <= 51
    assert limiter.wait_s("10.0.0.2") == 0
    limiter.wrong("10.0.0.2")  # a fresh address's wrong guess takes the slow lane's turn
    assert 9 < limiter.wait_s("10.0.0.3") <= 10 and limiter.wait_s("10.0.0.2") > 40
