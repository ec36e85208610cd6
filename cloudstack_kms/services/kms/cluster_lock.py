"""A cluster-wide named lock that holds on SQLite, MySQL/MariaDB and Galera alike.

One ``kms_lock`` row per name. Taking it is a conditional UPDATE (the row is free or its lease
has expired); the first taker of a name inserts the row, and the unique name lets one insert
win. A thread renews the lease while the lock is held; release frees the row. A holder that
dies (or hangs) keeps the lock only until its lease expires, by the database's clock.

Not ``GET_LOCK``: on Galera it belongs to one node, so two servers on two nodes both get it.
Here a second node's conflicting UPDATE fails certification (1213), which counts as "held by
someone else" (see ``leases.attempt``). SQLite: the same row, shared by every process of the host.
"""
from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import threading
import time
from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import insert, or_, select, update
from sqlalchemy.orm import Session

from ...db import Database
from ...models.kms import ClusterLock
from .leases import attempt, now_ms, retrying

log = logging.getLogger(__name__)


class Held:
    """Truthy while this acquisition holds the lock. ``lost`` turns True if a renewal found the
    lock taken over (this holder was silent longer than the lease): long work should check it."""

    def __init__(self, db: Database, name: str, lease_sec: float) -> None:
        self.db, self.name, self.lease_sec = db, name, lease_sec
        self.token = secrets.randbits(62) + 1  # per acquisition: two threads of one process exclude each other
        self.acquired = False
        self.lost = False
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def __bool__(self) -> bool:
        return self.acquired and not self.lost

    def _values(self, s: Session) -> dict:
        return {"owner": self.token, "holder": f"{socket.gethostname()}:{os.getpid()}"[:255],
                "expires_ms": now_ms(s) + int(self.lease_sec * 1000)}

    def _try(self) -> bool:
        def take(s: Session) -> bool:
            t = ClusterLock
            if s.execute(update(t).where(t.name == self.name, or_(t.owner.is_(None), t.expires_ms < now_ms(s)))
                         .values(**self._values(s)).execution_options(synchronize_session=False)).rowcount:
                return True
            if s.scalar(select(t.id).where(t.name == self.name)) is not None:
                return False
            s.execute(insert(t).values(name=self.name, **self._values(s)))
            return True

        return bool(attempt(self.db, take))

    def acquire(self, wait_sec: float) -> bool:
        deadline = time.monotonic() + wait_sec
        while not self._try():
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(random.uniform(0.05, 0.15), max(0.0, deadline - time.monotonic())))
        self.acquired = True
        self._renewer = threading.Thread(target=self._renew_loop, name=f"lock-{self.name}", daemon=True)
        self._renewer.start()
        return True

    def _renew(self, s: Session) -> int:
        t = ClusterLock
        return s.execute(update(t).where(t.name == self.name, t.owner == self.token)
                         .values(expires_ms=now_ms(s) + int(self.lease_sec * 1000))
                         .execution_options(synchronize_session=False)).rowcount

    def _renew_loop(self) -> None:
        renewed = time.monotonic()
        while not self._stop.wait(self.lease_sec / 3):
            try:
                if not attempt(self.db, self._renew):
                    self.lost = True
            except Exception:  # noqa: BLE001 - the database may be briefly away: try again until the lease runs out
                log.warning("could not renew the lock %s", self.name, exc_info=True)
                if time.monotonic() - renewed >= self.lease_sec:
                    self.lost = True
            else:
                renewed = time.monotonic()
            if self.lost:
                log.warning("lost the lock %s: another server took it over", self.name)
                return

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        if not self.acquired:
            return
        t = ClusterLock
        try:
            retrying(self.db, lambda s: s.execute(update(t).where(t.name == self.name, t.owner == self.token)
                                                  .values(owner=None, holder=None, expires_ms=0)
                                                  .execution_options(synchronize_session=False)))
        except Exception:  # noqa: BLE001 - the lease runs out by itself
            log.warning("could not release the lock %s", self.name, exc_info=True)
        self.acquired = False


@contextmanager
def cluster_lock(db: Database, name: str, wait_sec: float = 5.0, lease_sec: float = 30.0) -> Iterator[Held]:
    """Yields a :class:`Held`, truthy when this caller holds ``name``; falsy when another
    holder kept it for ``wait_sec``. Held for at most ``lease_sec`` past the holder's last sign
    of life."""
    held = Held(db, name, lease_sec)
    held.acquire(wait_sec)
    try:
        yield held
    finally:
        held.release()
