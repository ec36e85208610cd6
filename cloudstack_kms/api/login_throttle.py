"""Slowing down password guessing at ``login``.

Failed logins are counted over a sliding window, per user name (in its domain) and client
address, and per user name alone with a higher limit; past either limit, further attempts are
refused with the ordinary login failure, without looking at the password, until the window has
moved on. The first limit stops one guesser; the second bounds many addresses guessing one
user while keeping it high enough that a stranger cannot easily lock a user out (the user's own
address keeps its own count). Addresses are not limited on their own: behind a proxy every
user shares one. Counts live in this server process: with ``W`` gunicorn workers and ``S``
servers a guesser gets at most ``W × S`` times the limit, still dozens of guesses per window
instead of thousands.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque

WINDOW_SEC = 300.0
MAX_FAILURES_PER_USER_AND_ADDRESS = 5
MAX_FAILURES_PER_USER = 50
#: Keys remembered at once; the oldest are forgotten first (bounded memory under a flood).
MAX_KEYS = 10_000


class LoginThrottle:
    def __init__(self, window: float = WINDOW_SEC, per_user_and_address: int = MAX_FAILURES_PER_USER_AND_ADDRESS,
                 per_user: int = MAX_FAILURES_PER_USER, clock=time.monotonic) -> None:  # noqa: ANN001
        self.window, self.per_user_and_address, self.per_user = window, per_user_and_address, per_user
        self._clock = clock
        self._failures: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def blocked(self, user_key: str, address: str) -> bool:
        now = self._clock()
        with self._lock:
            return (len(self._recent((user_key, address), now)) >= self.per_user_and_address
                    or len(self._recent((user_key, ""), now)) >= self.per_user)

    def failed(self, user_key: str, address: str) -> None:
        now = self._clock()
        with self._lock:
            for key in ((user_key, address), (user_key, "")):
                times = self._recent(key, now)
                times.append(now)
                self._failures[key] = times
                self._failures.move_to_end(key)
            while len(self._failures) > MAX_KEYS:
                self._failures.popitem(last=False)

    def succeeded(self, user_key: str, address: str) -> None:
        with self._lock:
            self._failures.pop((user_key, address), None)
