"""``cloudstack_kms.cache.TtlCache``: expiry, clearing, and one reload at a time in the grace."""
from __future__ import annotations

import threading
import time

from cloudstack_kms.cache import TtlCache


def test_an_expired_entry_is_reloaded():
    cache: TtlCache[int] = TtlCache(0.05)
    loads = []
    assert cache.get_or_load("k", lambda: loads.append(1) or len(loads)) == 1
    assert cache.get_or_load("k", lambda: loads.append(1) or len(loads)) == 1
    time.sleep(0.06)
    assert cache.get_or_load("k", lambda: loads.append(1) or len(loads)) == 2


def test_in_the_grace_one_thread_reloads_and_the_others_answer_from_the_old_value():
    cache: TtlCache[str] = TtlCache(0.05, stale_grace_sec=5.0)
    cache.get_or_load("k", lambda: "old")
    time.sleep(0.06)  # expired, within the grace
    release = threading.Event()
    started = threading.Event()

    def slow_reload() -> str:
        started.set()
        release.wait(10)
        return "new"

    reloader = threading.Thread(target=lambda: cache.get_or_load("k", slow_reload))
    reloader.start()
    assert started.wait(10)
    # While the reload runs, nobody else loads: they get the old value at once.
    others = [cache.get_or_load("k", lambda: "second load") for _ in range(8)]
    assert others == ["old"] * 8
    release.set()
    reloader.join(10)
    assert cache.get_or_load("k", lambda: "third load") == "new"


def test_past_the_grace_the_old_value_is_never_served():
    cache: TtlCache[str] = TtlCache(0.02, stale_grace_sec=0.03)
    cache.get_or_load("k", lambda: "old")
    release = threading.Event()
    time.sleep(0.03)
    reloader = threading.Thread(target=lambda: cache.get_or_load("k", lambda: release.wait(10) and "new"))
    reloader.start()
    time.sleep(0.05)  # past ttl + grace, the reload still running
    assert cache.get_or_load("k", lambda: "loaded again") == "loaded again"
    release.set()
    reloader.join(10)


def test_a_cleared_entry_is_never_served_from_the_grace():
    cache: TtlCache[str] = TtlCache(0.02, stale_grace_sec=5.0)
    cache.get_or_load("k", lambda: "old")
    cache.clear()
    assert cache.get_or_load("k", lambda: "fresh") == "fresh"


def test_without_a_grace_every_caller_loads_an_expired_entry():
    cache: TtlCache[str] = TtlCache(0.02)
    cache.get_or_load("k", lambda: "old")
    time.sleep(0.03)
    release = threading.Event()
    reloader = threading.Thread(target=lambda: cache.get_or_load("k", lambda: release.wait(10) and "new"))
    reloader.start()
    time.sleep(0.01)
    assert cache.get_or_load("k", lambda: "own load") == "own load"
    release.set()
    reloader.join(10)
