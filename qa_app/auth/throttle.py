"""The slow-down after failed sign-ins, per user name and per client address.

Each key (a name, an address) may fail FREE_FAILURES times; after that each further failure locks it
for twice as long as the one before (1 s, 2 s, 4 s, ... at most MAX_LOCK_SECONDS), and while either
key of an attempt is locked the attempt is refused before any password is checked. A key's count is
forgotten FORGET_SECONDS after its last failure, and a name's (not the address's) when it signs in.
Per name stops guessing one account from many addresses; per address stops one client trying many
names.

The counts live in this process's memory: a restart forgets them, and with `serve --workers N` each
worker counts on its own (an attacker gets at most N times the attempts). The clock is injected, so
tests run the lock without sleeping.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

FREE_FAILURES = 5
FIRST_LOCK_SECONDS = 1.0
MAX_LOCK_SECONDS = 15 * 60.0
FORGET_SECONDS = 60 * 60.0
MAX_KEYS = 10_000  # bounded memory: the keys failed longest ago are dropped first


@dataclass
class _Failures:
    count: int
    last: float


class SignInThrottle:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._failures: OrderedDict[str, _Failures] = OrderedDict()

    def _current(self, key: str, now: float) -> _Failures | None:
        record = self._failures.get(key)
        if record is not None and now - record.last >= FORGET_SECONDS:
            del self._failures[key]
            return None
        return record

    @staticmethod
    def lock_seconds(count: int) -> float:
        """How long a key with `count` failures is locked after its last one."""
        if count < FREE_FAILURES:
            return 0.0
        return min(FIRST_LOCK_SECONDS * 2.0 ** (count - FREE_FAILURES), MAX_LOCK_SECONDS)

    def retry_after(self, keys: Iterable[str]) -> float:
        """Seconds until an attempt with these keys may be checked; 0 when it may be now."""
        now = self.clock()
        wait = 0.0
        for key in keys:
            record = self._current(key, now)
            if record is not None:
                wait = max(wait, record.last + self.lock_seconds(record.count) - now)
        return wait

    def failed(self, keys: Iterable[str]) -> None:
        now = self.clock()
        for key in keys:
            record = self._current(key, now)
            if record is None:
                record = self._failures[key] = _Failures(0, now)
            record.count += 1
            record.last = now
            self._failures.move_to_end(key)
        while len(self._failures) > MAX_KEYS:
            self._failures.popitem(last=False)

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)
