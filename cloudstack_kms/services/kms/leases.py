"""Leases: a row names who works on something and until when; valid on SQLite, MySQL/MariaDB and Galera.

Taking a lease is one conditional UPDATE (the row is free, expired, or already ours). On one
database the row lock lets one server win; on Galera two nodes may both see the row free and
both update it, and the second to commit fails certification (error 1213): the loser treats
that as "someone else has it" (:func:`attempt`). Nothing waits on a lock held across the work,
so a dead server costs only the lease length, and no lock is node-local as ``GET_LOCK`` is.

Expiry times are milliseconds since the epoch by the *database's* clock (:func:`now_ms`): the
servers compare against one clock, so an application host with a wrong clock cannot steal.

:class:`RangeLeases` applies this to the rewrap worker (``kms_rewrap_lease``): a Previous KEK
version's wrapped keys are cut once into id ranges of about a batch each (:meth:`plan`); a
server claims ranges, renews them before each write and frees them after its run; a range
found empty is deleted, and a version with no range and no wrapped key left is finished. The
lease only keeps servers on disjoint work: the rewrap's conditional UPDATE is still what makes
each key move once.
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from sqlalchemy import delete, func, insert, literal_column, or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from ...db import Database, is_write_conflict
from ...observability import metrics
from ...models.kms import RewrapLease, WrappedKey

T = TypeVar("T")
#: An id above every wrapped key id: the last range of a plan is open-ended (SQLite's integers are signed).
MAX_ID = 2 ** 63 - 1
#: At most this many ranges per version: a huge version gets ranges of more than a batch.
MAX_RANGES = 1024

_NOW_MS = {
    # julianday() has sub-millisecond resolution; 2440587.5 is the Julian day of the epoch.
    "sqlite": "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
    # Pure UTC arithmetic: UNIX_TIMESTAMP(NOW()) would go through the session time zone.
    "mysql": "(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6)) DIV 1000)",
}


def now_ms(session: Session) -> Any:
    """The database's clock in milliseconds since the epoch, as an SQL expression."""
    name = session.get_bind().dialect.name
    return literal_column(_NOW_MS["sqlite" if name == "sqlite" else "mysql"])


def attempt(db: Database, work: Callable[[Session], T]) -> T | None:
    """``work`` in one transaction; None when it lost to another server: a duplicate key (someone
    inserted first) or a write conflict (InnoDB deadlock or lock wait timeout, Galera
    certification failure). Used for claims, where losing is a normal answer."""
    try:
        with db.transaction() as s:
            return work(s)
    except IntegrityError:
        return None
    except DBAPIError as exc:
        if is_write_conflict(exc):
            metrics.record_write_conflict("claim")
            return None
        raise


def retrying(db: Database, work: Callable[[Session], T], *, attempts: int = 8, readonly: bool = False) -> T:
    """``work`` in a transaction, run again (after a short random pause) when it loses a write
    conflict. Only for work that is safe to repeat: the database rolled the loser back whole."""
    for n in range(1, attempts + 1):
        try:
            with db.transaction(readonly=readonly) as s:
                return work(s)
        except DBAPIError as exc:
            if n == attempts or not is_write_conflict(exc):
                raise
            metrics.record_write_conflict("background")
            time.sleep(random.uniform(0.005, 0.03) * n)
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Range:
    """A lease row as read: the ids it covers, and whether this owner may claim it now."""

    id: int
    first_id: int
    last_id: int
    claimable: bool


class RangeLeases:
    """The rewrap ranges of KEK versions, seen by one owner (a server's msid)."""

    def __init__(self, db: Database, owner: int) -> None:
        self.db = db
        self.owner = owner

    def ranges(self, version_id: int) -> list[Range]:
        """The version's ranges, claimable ones first in random order (servers claiming at once
        then mostly try different ranges), then those other servers hold."""
        def read(s: Session) -> list[Range]:
            t = RewrapLease
            free = or_(t.owner_msid.is_(None), t.owner_msid == self.owner, t.expires_ms < now_ms(s))
            return [Range(r.id, r.first_id, r.last_id, bool(r.free)) for r in s.execute(
                select(t.id, t.first_id, t.last_id, free.label("free")).where(t.kek_version_id == version_id))]

        found = retrying(self.db, read, readonly=True)
        random.shuffle(found)
        return sorted(found, key=lambda r: not r.claimable)

    def plan(self, version_id: int, rows_per_range: int) -> bool:
        """Cut the version's wrapped keys into ranges of ``rows_per_range`` keys (more when that
        would make over :data:`MAX_RANGES`). The ranges cover every id, 0 to :data:`MAX_ID`,
        so that a key that still lands on the version later is in one. False when another server
        planned first (the unique first range at id 0 lets one plan in)."""
        with self.db.transaction(readonly=True) as s:
            count = s.scalar(select(func.count()).select_from(WrappedKey).where(
                WrappedKey.kek_version_id == version_id, WrappedKey.removed.is_(None))) or 0
        size = max(1, rows_per_range, math.ceil(count / MAX_RANGES))
        bounds = self._bounds(version_id, size)
        firsts = [0] + [b + 1 for b in bounds]
        lasts = bounds + [MAX_ID]

        def write(s: Session) -> bool:
            if s.scalar(select(RewrapLease.id).where(RewrapLease.kek_version_id == version_id).limit(1)):
                return False
            s.execute(insert(RewrapLease), [{"kek_version_id": version_id, "first_id": a, "last_id": b,
                                              "owner_msid": None, "expires_ms": 0} for a, b in zip(firsts, lasts)])
            return True

        return bool(attempt(self.db, write))

    def _bounds(self, version_id: int, size: int) -> list[int]:
        """The id of every ``size``-th wrapped key of the version, but not the very last key (the
        last range runs on to :data:`MAX_ID`). Picked by the database (a window function, MariaDB
        10.2+ and SQLite 3.25+): only the boundaries travel, not every id."""
        numbered = select(WrappedKey.id.label("id"), func.row_number().over(order_by=WrappedKey.id).label("n"),
                          func.count().over().label("total")).where(
            WrappedKey.kek_version_id == version_id, WrappedKey.removed.is_(None)).subquery()
        with self.db.transaction(readonly=True) as s:
            return list(s.scalars(select(numbered.c.id).where(numbered.c.n % size == 0, numbered.c.n < numbered.c.total)
                                  .order_by(numbered.c.id)))

    def claim(self, range_id: int, lease_sec: float, then: Callable[[Session], T]) -> tuple[bool, T | None]:
        """Claim the range and, in the same transaction, run ``then`` (the read of its keys: one
        commit for both). (False, None) when the range is another server's."""
        def take(s: Session) -> tuple[bool, T | None]:
            t, now = RewrapLease, now_ms(s)
            won = s.execute(update(t).where(t.id == range_id, or_(t.owner_msid.is_(None), t.owner_msid == self.owner,
                                                                   t.expires_ms < now))
                            .values(owner_msid=self.owner, expires_ms=now + int(lease_sec * 1000))
                            .execution_options(synchronize_session=False)).rowcount == 1
            return (True, then(s)) if won else (False, None)

        return attempt(self.db, take) or (False, None)

    def renew(self, s: Session, range_ids: list[int], lease_sec: float) -> bool:
        """Extend the leases, in the caller's transaction (the write of a chunk: no commit of its
        own). False when any of them is no longer ours (another server took it over after it
        expired; on Galera the takeover and this renewal conflict, and the caller's retry sees it)."""
        if not range_ids:
            return True
        t = RewrapLease
        return s.execute(update(t).where(t.id.in_(range_ids), t.owner_msid == self.owner)
                         .values(expires_ms=now_ms(s) + int(lease_sec * 1000))
                         .execution_options(synchronize_session=False)).rowcount == len(range_ids)

    def settle(self, version_id: int, ranges: list[Range]) -> list[int]:
        """After a run: delete the ranges left without wrapped keys, free the others (only
        those still ours). Returns the ids of the ranges deleted."""
        if not ranges:
            return []
        # Safe to repeat: each change is conditional on the range still being ours.
        return retrying(self.db, lambda s: self.settle_in(s, version_id, ranges))

    def settle_in(self, s: Session, version_id: int, ranges: list[Range]) -> list[int]:
        """:meth:`settle` in the caller's transaction (the last write of a run: one commit less)."""
        t = RewrapLease
        empty = [r.id for r in ranges if s.scalar(select(WrappedKey.id).where(
            WrappedKey.kek_version_id == version_id, WrappedKey.removed.is_(None),
            WrappedKey.id.between(r.first_id, r.last_id)).limit(1)) is None]
        if empty:
            s.execute(delete(t).where(t.id.in_(empty), t.owner_msid == self.owner)
                      .execution_options(synchronize_session=False))
        rest = [r.id for r in ranges if r.id not in empty]
        if rest:
            s.execute(update(t).where(t.id.in_(rest), t.owner_msid == self.owner)
                      .values(owner_msid=None, expires_ms=0).execution_options(synchronize_session=False))
        return empty

    def forget(self, version_id: int) -> None:
        """Drop whatever range rows a finished version still has."""
        retrying(self.db, lambda s: s.execute(delete(RewrapLease).where(RewrapLease.kek_version_id == version_id)))
