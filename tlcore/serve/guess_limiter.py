"""Wrong guesses at a secret (the teacher's), limited where no client can reset the count.

A browser chooses its own cookie, so a limit per cookie is no limit: a script makes a new
cookie for every few guesses (measured: 5,394 guesses a minute from 8 scripts). What a
client cannot choose freely is the server itself and, within limits, its network address:

- per address: `free` wrong guesses, then each further one doubles the wait before the
  next (60 s, 120 s, 240 s, ... up to `longest_s`); an address quiet for `forget_s` starts
  over. At most `max_addresses` are remembered (the longest quiet go first), so memory
  stays bounded whatever a script sends.
- per server: once `per_minute` wrong guesses came in a minute, the addresses that made any
  of them wait until that minute is over; an address with no wrong guess in that minute (the
  teacher arriving at their own laptop) is still compared, but such fresh addresses share one
  comparison every `fresh_every_s` (10 s) while the budget stays spent. An address can be chosen
  by a script where a proxy passes on its `X-Forwarded-For`, or shared by a whole class behind
  one; the bound then is `per_minute` + 60 / `fresh_every_s` wrong guesses a minute (16).

A client that must wait is not told whether its guess was right: the guess is not compared.
The cost: a script that guesses from a few addresses no longer holds up the teacher (measured
before: 7 of 8 of the real teacher's tries refused over 106 s while a script guessed); one that
makes up a new address for every guess can make a fresh address wait up to `fresh_every_s`.

Not for: the secret itself (tlcore.serve.class_limits) or who is the teacher (studio.teacher).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Address:
    wrong: int = 0  # wrong guesses since it was last forgiven
    last: float = 0.0  # when the last one came
    until: float = 0.0  # no guess compared before this


class GuessLimiter:
    def __init__(
        self,
        *,
        free: int = 5,
        per_minute: int = 10,
        first_wait_s: float = 60.0,
        longest_s: float = 3600.0,
        forget_s: float = 3600.0,
        max_addresses: int = 4096,
        fresh_every_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.free = free  # wrong guesses an address makes before it must wait
        self.per_minute = per_minute  # wrong guesses the whole server takes in any 60 s
        self.fresh_every_s = fresh_every_s  # with that spent: one comparison per this many s for new addresses
        self.first_wait_s, self.longest_s, self.forget_s = first_wait_s, longest_s, forget_s
        self.max_addresses = max_addresses
        self._clock = clock
        self._addresses: OrderedDict[str, _Address] = OrderedDict()
        self._recent: deque[float] = deque(maxlen=per_minute)  # the server's last wrong guesses
        self._fresh_at = 0.0  # when a fresh address may next be compared while the budget is spent
        self._lock = threading.Lock()

    def wait_s(self, address: str) -> float:
        """Seconds before a guess from `address` may be compared (0: now)."""
        now = self._clock()
        with self._lock:
            entry = self._addresses.get(address)
            mine = max(0.0, entry.until - now) if entry is not None else 0.0
            spent = self._spent_s(now)
            if spent <= 0:
                return mine
            if entry is not None and now - entry.last < 60.0:  # one of the guessers: the minute is over first
                return max(spent, mine)
            return max(mine, self._fresh_at - now, 0.0)  # a fresh address: its turn in the slow lane

    def _spent_s(self, now: float) -> float:  # caller holds the lock
        """Seconds until the server's minute of `per_minute` wrong guesses is over (0: not spent)."""
        if len(self._recent) < self.per_minute:
            return 0.0
        return max(0.0, 60.0 - (now - self._recent[0]))

    def wrong(self, address: str) -> None:
        """A wrong guess from `address` was compared."""
        now = self._clock()
        with self._lock:
            entry = self._addresses.get(address)
            if self._spent_s(now) > 0 and (entry is None or now - entry.last >= 60.0):
                self._fresh_at = now + self.fresh_every_s  # a fresh address took the slow lane's turn
            self._recent.append(now)
            entry = self._addresses.pop(address, None) or _Address()
            if now - entry.last > self.forget_s:
                entry.wrong = 0
            entry.wrong, entry.last = entry.wrong + 1, now
            if entry.wrong >= self.free:  # back-off: 60 s, then twice as long for each further miss
                entry.until = now + min(self.longest_s, self.first_wait_s * 2 ** (entry.wrong - self.free))
            self._addresses[address] = entry  # newest last: the first to go are the longest quiet
            while len(self._addresses) > self.max_addresses:
                self._addresses.popitem(last=False)

    def right(self, address: str) -> None:
        """The right secret from `address`: its count starts over (the server's does not)."""
        with self._lock:
            self._addresses.pop(address, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._addresses)
