"""A small per-process cache whose entries expire after a fixed time.

Requests read a few rows on every call (the caller's user and key, live settings). Caching
them saves most of a small call's statements; the expiry is what keeps the cache correct
across processes and servers: a change made anywhere is seen everywhere within ``ttl``
seconds. Changes committed by this process clear the cache at once (see
:meth:`cloudstack_kms.db.Database.watch`), so nobody sees their own change late.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Generic, Hashable, TypeVar

V = TypeVar("V")
MISSING: Any = object()


class TtlCache(Generic[V]):
    """``stale_grace_sec``: for that long after an entry expires, one thread reloads it while
    the others keep answering from it, instead of every request thread that finds it expired
    loading it at once (eight threads read the same caller row twice a second each). An entry
    is thus at most ``ttl_sec + stale_grace_sec`` old; 0 (the default) never serves one late.
    A cleared entry is never served: this process's own changes are seen at once either way."""

    def __init__(self, ttl_sec: float, max_entries: int = 4096, stale_grace_sec: float = 0.0) -> None:
        self.ttl_sec = ttl_sec
        self.max_entries = max_entries
        self.stale_grace_sec = stale_grace_sec
        self._entries: dict[Hashable, tuple[float, V]] = {}
        self._refreshing: set[Hashable] = set()
        self._lock = threading.Lock()
        #: Bumped by :meth:`clear`: a value loaded before a clear must not be stored after it.
        self._generation = 0

    def get(self, key: Hashable) -> V:
        """The live value, or :data:`MISSING`."""
        entry = self._entries.get(key)  # a dict read is atomic; no lock on the hot path
        if entry is None or time.monotonic() >= entry[0]:
            return MISSING
        return entry[1]

    def get_or_load(self, key: Hashable, load: Callable[[], V], keep: Callable[[V], bool] | None = None) -> V:
        """The live value, else ``load()`` (stored, unless the cache was cleared meanwhile or
        ``keep`` says no to it)."""
        entry = self._entries.get(key)
        now = time.monotonic()
        if entry is not None:
            if now < entry[0]:
                return entry[1]
            if now < entry[0] + self.stale_grace_sec and not self._claim_refresh(key):
                return entry[1]  # another thread is reloading it
        generation = self._generation
        expires = now + self.ttl_sec  # counted from before the read, never after
        try:
            value = load()
            with self._lock:
                if generation == self._generation and (keep is None or keep(value)):
                    if len(self._entries) >= self.max_entries:
                        self._evict(expires)
                    self._entries[key] = (expires, value)
        finally:
            if self.stale_grace_sec:
                with self._lock:
                    self._refreshing.discard(key)
        return value

    def _claim_refresh(self, key: Hashable) -> bool:
        with self._lock:
            if key in self._refreshing:
                return False
            self._refreshing.add(key)
            return True

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries = {}

    def _evict(self, now_plus_ttl: float) -> None:
        """Drop expired entries; if that frees nothing, drop everything (a flood of distinct
        keys must not grow the process, and a refill is cheap)."""
        now = now_plus_ttl - self.ttl_sec
        live = {k: v for k, v in self._entries.items() if v[0] > now}
        self._entries = live if len(live) < self.max_entries else {}
