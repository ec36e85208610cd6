"""The background rewrap worker: moves wrapped keys from ``Previous`` KEK versions to the Active one.

Runs in every server process, and every server works at once, on different keys: a Previous
version's wrapped keys are cut into id ranges of about a batch, and a server rewraps only the
ranges it holds a lease on (``leases.RangeLeases``: claimed by a conditional UPDATE, renewed
before each write, freed after the run, taken over by another server once a dead holder's
lease expires). Each run takes, per Previous version, up to ``kms.rewrap.batch.size`` wrapped
keys from ranges it could claim:

1. claim ranges and read their keys (short transactions);
2. unwrap with the old version's provider and wrap with the Active version's provider,
   in memory, outside any transaction, in chunks of ``CRYPTO_CHUNK`` keys (``INLINE_CHUNK``
   when the crypto runs in this process; each chunk one call through the retry wrapper, with
   its timeout); plaintext is zeroed at once;
3. per chunk, one short transaction writes the new blobs with a conditional update — only
   rows that still point at the old version change, and only while the target is still the
   Active version — and a ``KMS.KEY.WRAP`` event with the number of rows moved
   (``parameters`` = ``count=<n>``), and renews the leases; the last one also frees them (or
   deletes the ranges left empty). With an HSM, the next chunk's crypto runs meanwhile on a
   second thread.

The lease keeps servers off each other's keys; it is not what makes a key move once. The
conditional update is: a server whose lease was taken over while it worked (it stalled past
the expiry) can still write its chunk, and moves only the keys nobody moved meanwhile; its
event counts exactly those. On Galera the second of two such writes fails certification
(1213); it is run again and then moves nothing. Write conflicts (1213, 1205) are retried
where the transaction is safe to repeat, and lost claims are simply "someone else's range".

A crash at any point loses nothing: until step 3 commits, the old blob and the old KEK are
intact, and the crashed server's ranges are free again when their leases expire. A Previous
version with no range and no wrapped key left becomes ``Archived``, and only after that commit
is its KEK deleted from the backend (retried on later runs until it succeeds; ``removed`` is
set on the version once the KEK is gone). Both run under the cluster lock ``kms.rewrap.retire``
(a lease row, see ``cluster_lock``), so they happen once however many servers finish together.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...models import Account, User
from ...models.base import utcnow
from ...models.kms import ACTIVE, ARCHIVED, PREVIOUS, HsmProfile, KekVersion, KmsKey, WrappedKey
from ...observability import metrics
from ...providers import retry
from ...providers.base import KekNotFound, KmsError, ProfileConfig, UnwrapError, WrapContext, zero
from .. import events, settings
from . import profiles
from ...app_state import new_msid
from .cluster_lock import cluster_lock
from .deletion import PurgeTask
from .leases import Range, RangeLeases, retrying
from .runtime import KmsRuntime, runtime_of

log = logging.getLogger(__name__)
#: The lock under which a drained version is archived and its KEK deleted (once, cluster-wide).
RETIRE_LOCK = "kms.rewrap.retire"
SYSTEM_USER_ID = 1
#: Keys per provider call through the retry wrapper (each chunk gets the operation timeout), and
#: per write transaction: the next chunk's crypto runs while one chunk is written. Each write
#: costs a commit and five statements whatever its size; at 500 keys that overhead is small
#: (with several servers on one database, CPU per key is what bounds the drain).
CRYPTO_CHUNK = 500
#: Keys per chunk when the crypto runs in this process (the database provider): no latency to
#: hide behind a pipeline, so a chunk is a whole batch of up to this many, one write and commit.
INLINE_CHUNK = 2000
#: Rows per conditional UPDATE statement: the server evaluates ``CASE id`` branch by branch, so
#: bigger statements cost more per row; 250 rows also keep 4 KB blobs far below max_allowed_packet.
UPDATE_CHUNK = 250


@dataclass
class RunReport:
    rewrapped: int = 0
    failed: int = 0
    archived: int = 0
    #: Work was left that only other servers' leases covered (nothing could be claimed).
    locked_out: bool = False


def move_rows(session: Session, old_version_id: int, new_version_id: int, rows: list[tuple[int, bytes]]) -> int:
    """Give each row (id, new blob) its new blob and version, if it is still on the old version.

    One statement for all rows (``CASE id WHEN ... THEN ... END``) instead of one per row: on
    MySQL a row-by-row ``executemany`` costs a round trip per row. Written as driver SQL with the
    values inline: ids are integers and blobs hex literals (``X'..'``, read by SQLite and MySQL
    alike), so nothing needs quoting, and the driver's escaping of bound blobs (in Python, per
    value) and the server's parsing of them cost about a third of the whole update. Returns the
    number of rows moved (MySQL connections report matched rows: SQLAlchemy sets FOUND_ROWS).
    """
    table = WrappedKey.__table__.name
    cases = " ".join(f"WHEN {int(row_id)} THEN X'{bytes(blob).hex()}'" for row_id, blob in rows)
    ids = ",".join(str(int(row_id)) for row_id, _ in rows)
    sql = (f"UPDATE {table} SET wrapped_blob = CASE id {cases} END, kek_version_id = {int(new_version_id)} "
           f"WHERE id IN ({ids}) AND kek_version_id = {int(old_version_id)}")
    return session.connection().exec_driver_sql(sql).rowcount


@dataclass(frozen=True)
class _Actor:
    """What an event reads from its user and account: ids only, so that a write need not load them."""

    id: int
    domain_id: int | None = None


_SYSTEM = _Actor(SYSTEM_USER_ID)


class _Deferred:
    """A chunk's crypto run in the caller's thread when its result is asked for (and not at all
    if the batch stops first): the stand-in for the crypto thread's future."""

    def __init__(self, fn: Any, chunk: list) -> None:
        self.fn, self.chunk = fn, chunk

    def result(self) -> Any:
        return self.fn(self.chunk)


@dataclass
class _Job:
    """What rewrapping one version's keys needs, read once per run (no ORM objects)."""

    version_id: int
    new_id: int
    old_provider: Any
    new_provider: Any
    old_config: ProfileConfig
    new_config: ProfileConfig
    old_label: str
    new_label: str
    chunk_policy: Any
    key_uuid: str
    purpose: str
    key_id: int
    owner: _Actor
    old_number: int
    new_number: int


class Rewrapper:
    """One run of the worker (also callable directly by tools and tests).

    ``owner`` identifies this worker in the leases: the server's msid by default. Two workers
    that must not share work need distinct owners."""

    #: Shortest lease on a range; a slow provider gets three times its slowest chunk.
    min_lease_sec = 10.0
    #: How long a version's :class:`_Job` (labels, profiles and their opened details) is reused by
    #: back-to-back runs: a busy drain need not re-read them every batch, and a profile disabled or
    #: edited is honoured within this time, as settings are. Whether the target is still Active is
    #: checked in every write regardless.
    job_ttl_sec = 1.0

    def __init__(self, state: Any, owner: int | None = None) -> None:
        self.state = state
        self.db = state.db
        self.master_key = state.master_key
        self.runtime: KmsRuntime = runtime_of(state)
        self.owner = owner or getattr(state, "msid", None) or new_msid()
        self.leases = RangeLeases(self.db, self.owner)
        self._configs: dict[int, ProfileConfig] = {}
        self._jobs: dict[int, tuple[float, _Job | None]] = {}  # per version: (read at, job)
        self._after: dict[int, int] = {}  # per range: the last wrapped key id taken
        self._slowest_chunk = 0.0
        self._crypto: ThreadPoolExecutor | None = None

    @property
    def lease_sec(self) -> float:
        return max(self.min_lease_sec, 3 * self._slowest_chunk)

    def run_once(self) -> RunReport:
        report = RunReport()
        self._configs.clear()
        with self.db.transaction(readonly=True) as s:
            batch_size = settings.get_value(s, "kms.rewrap.batch.size")
            previous = list(s.scalars(select(KekVersion.id).where(KekVersion.status == PREVIOUS,
                                                                  KekVersion.removed.is_(None))
                                      .order_by(KekVersion.id)))
            pending_delete = list(s.scalars(select(KekVersion.id).where(KekVersion.status == ARCHIVED,
                                                                        KekVersion.removed.is_(None))))
        for version_id in [v for v in self._jobs if v not in previous]:
            del self._jobs[version_id]
        for version_id in previous:
            self._rewrap_version(version_id, batch_size, report)
        for version_id in pending_delete:
            self._retire(version_id, report)
        return report

    # ------------------------------------------------------------ one version
    def _config(self, session: Session, profile_id: int) -> ProfileConfig:
        config = self._configs.get(profile_id)
        if config is None:
            profile = session.get(HsmProfile, profile_id)
            config = self._configs[profile_id] = profiles.load_config(session, self.master_key, profile)
        return config

    def _job(self, version_id: int) -> _Job | None:
        read_at, job = self._jobs.get(version_id, (0.0, None))
        if time.monotonic() - read_at >= self.job_ttl_sec:
            job = self._prepare(version_id)
            self._jobs[version_id] = (time.monotonic(), job)
        return job

    def _prepare(self, version_id: int) -> _Job | None:
        """Everything the crypto needs (short transaction); None when the version must wait."""
        with self.db.transaction(readonly=True) as s:
            old = s.get(KekVersion, version_id)
            key = s.get(KmsKey, old.kms_key_id)
            active = s.scalars(select(KekVersion).where(KekVersion.kms_key_id == key.id, KekVersion.status == ACTIVE,
                                                        KekVersion.removed.is_(None))).first()
            old_profile = s.get(HsmProfile, old.hsm_profile_id)
            new_profile = s.get(HsmProfile, active.hsm_profile_id) if active else None
            if active is None or not old_profile.enabled or new_profile is None or not new_profile.enabled:
                log.warning("rewrap of KEK version %s skipped: profile disabled or no active version", old.uuid)
                return None
            old_config, new_config = self._config(s, old_profile.id), self._config(s, new_profile.id)
            # Bare providers: the chunks are timed and counted by crypto() below, not each call.
            old_provider = self.runtime.provider(old_config.protocol, timed=False)
            new_provider = self.runtime.provider(new_config.protocol, timed=False)
            owner = _Actor(key.account_id, s.get(Account, key.account_id).domain_id)
            return _Job(version_id, active.id, old_provider, new_provider, old_config, new_config, old.kek_label,
                        active.kek_label, self.runtime.policy_for(s, old_provider, new_provider, hot=True),
                        key.uuid, key.purpose, key.id, owner, old.version_number, active.version_number)

    def _rewrap_version(self, version_id: int, batch_size: int, report: RunReport) -> None:
        job = self._job(version_id)
        if job is None:
            return
        ranges = self.leases.ranges(version_id)
        if not ranges:
            if not self._has_keys(version_id):
                self._archive(version_id, report)
                return
            self.leases.plan(version_id, batch_size)  # False: another server planned first; same outcome
            ranges = self.leases.ranges(version_id)
        held: list[Range] = []
        try:
            rows = self._claim(version_id, ranges, batch_size, held)
            if not held and ranges:
                report.locked_out = True
            # The last write of the run settles the leases in its own transaction, when it gets there.
            finished = self._rewrap_rows(job, held, rows, report) if rows else None
        except BaseException:
            self._settle_quietly(version_id, held)
            raise
        if finished is None:
            finished = self.leases.settle(version_id, held)
        for range_id in finished:
            self._after.pop(range_id, None)
        # This run took the last keys (it finished every range there was): archive now, not a run later.
        if finished and len(finished) == len(ranges) and not self.leases.ranges(version_id) \
                and not self._has_keys(version_id):
            self._archive(version_id, report)

    def _claim(self, version_id: int, ranges: list[Range], batch_size: int, held: list[Range]) -> list:
        """Claim ranges until ``batch_size`` keys are read from them (a range with fewer keys
        left than asked makes room for the next); the claimed ones are added to ``held``."""
        rows: list = []
        for r in ranges:
            if len(rows) >= batch_size:
                break
            if not r.claimable:
                continue
            claimed, got = self.leases.claim(r.id, self.lease_sec,
                                             lambda s: self._read(s, version_id, r, batch_size - len(rows)))
            if claimed:
                held.append(r)
                rows.extend(got)
        return rows

    def _read(self, s: Session, version_id: int, r: Range, limit: int) -> list:
        """The range's next keys after those this worker saw last (keys that keep failing must not
        hold up the rest); from the range's start again once its end is reached."""
        def query(first: int) -> list:
            return s.execute(select(WrappedKey.id, WrappedKey.uuid, WrappedKey.wrapped_blob).where(
                WrappedKey.kek_version_id == version_id, WrappedKey.removed.is_(None),
                WrappedKey.id.between(first, r.last_id)).order_by(WrappedKey.id).limit(limit)).all()

        after = self._after.pop(r.id, None)
        rows = query(r.first_id if after is None else after + 1)
        if not rows and after is not None:
            rows = query(r.first_id)
        if rows:
            self._after[r.id] = rows[-1][0]
        return rows

    def _has_keys(self, version_id: int) -> bool:
        with self.db.transaction(readonly=True) as s:
            return s.scalar(select(WrappedKey.id).where(WrappedKey.kek_version_id == version_id,
                                                        WrappedKey.removed.is_(None)).limit(1)) is not None

    def _settle_quietly(self, version_id: int, held: list[Range]) -> None:
        try:
            self.leases.settle(version_id, held)
        except Exception:  # noqa: BLE001 - already failing; the leases expire by themselves
            log.warning("could not free rewrap ranges of KEK version %s", version_id, exc_info=True)

    def _rewrap_rows(self, job: _Job, held: list[Range], rows: list, report: RunReport) -> list[int] | None:
        """Rewrap ``rows``, chunk by chunk. Returns the ranges the last write found finished (it
        settles ``held``), or None when the run stopped before that write."""
        # 2. Unwrap + wrap in memory, outside any transaction, in chunks that each get the
        #    retry policy and its timeout (a whole large batch must not share one timeout).
        def crypto(chunk: list) -> tuple[list[tuple[int, bytes]], int]:
            out, failures = [], 0
            timer, clock = metrics.BulkTimer(), time.perf_counter
            old_uuid, new_uuid = job.old_config.uuid, job.new_config.uuid
            try:
                for row_id, row_uuid, blob in chunk:
                    context = WrapContext(wrapped_key_uuid=row_uuid, kms_key_uuid=job.key_uuid, purpose=job.purpose)
                    started = clock()
                    try:
                        plain = job.old_provider.unwrap(job.old_config, job.old_label, bytes(blob), context)
                    except Exception as exc:
                        timer.add(old_uuid, "unwrap", clock() - started, failed=True)
                        if not isinstance(exc, (UnwrapError, KekNotFound)):
                            raise
                        log.error("wrapped key %s cannot be unwrapped for rewrap: %s", row_uuid, exc.message)
                        failures += 1
                        continue
                    unwrapped = clock()
                    timer.add(old_uuid, "unwrap", unwrapped - started)
                    try:
                        out.append((row_id, job.new_provider.wrap(job.new_config, job.new_label, bytes(plain),
                                                                  context)))
                    except Exception:
                        timer.add(new_uuid, "wrap", clock() - unwrapped, failed=True)
                        raise
                    finally:
                        zero(plain)
                    timer.add(new_uuid, "wrap", clock() - unwrapped)
            finally:
                timer.record()
            return out, failures

        # With an HSM the chunks form a pipeline: while one chunk is written, the next one is
        # unwrapped and wrapped on the crypto thread (the HSM library and the database driver both
        # release the GIL), hiding the HSM's latency. Crypto that runs in this process (the
        # database provider: its policy is INLINE) has no latency to hide; handing it to another
        # thread only costs CPU, which is what several servers on one host run short of.
        pipelined = job.chunk_policy.mode is not retry.Mode.INLINE
        size = CRYPTO_CHUNK if pipelined else INLINE_CHUNK
        chunks = [rows[i:i + size] for i in range(0, len(rows), size)]

        def run(chunk: list) -> tuple[list[tuple[int, bytes]], int]:
            return retry.call(job.chunk_policy, "rewrap", lambda: crypto(chunk))

        def submit(chunk: list) -> Future | _Deferred:
            return self._crypto_thread().submit(run, chunk) if pipelined else _Deferred(run, chunk)

        range_ids = [r.id for r in held]
        started = time.monotonic()
        pending: Future | _Deferred | None = submit(chunks[0])
        try:
            for i in range(len(chunks)):
                try:
                    done, failures = pending.result()
                except KmsError as exc:
                    log.warning("rewrap batch of KEK version %s failed: %s", job.version_id, exc.message)
                    report.failed += sum(len(chunk) for chunk in chunks[i:])
                    return None  # what was written so far stays written
                finally:
                    pending = None
                if i + 1 < len(chunks):
                    pending = submit(chunks[i + 1])
                report.failed += failures
                # Each write renews the leases: they must outlive the next chunk too. A lease taken
                # over means its new holder is on these keys: this chunk is written all the same
                # (the conditional update moves only keys still on the old version), the rest is left.
                last = i + 1 == len(chunks)
                written = self._write(job, done, range_ids, report, settle=held if last else None)
                if written is None:
                    return None
                kept, finished = written
                if last:
                    return finished
                now = time.monotonic()
                self._slowest_chunk = max(now - started, self._slowest_chunk * 0.9)
                started = now
                if not kept:
                    log.info("rewrap range of KEK version %s taken over by another server; leaving it the rest",
                             job.version_id)
                    return None
            return None
        finally:
            if isinstance(pending, Future):  # leaving early: let the chunk in flight finish (it zeroes its plaintext)
                try:
                    pending.result()
                except Exception:  # noqa: BLE001 - its result is discarded anyway
                    pass

    def _write(self, job: _Job, updates: list[tuple[int, bytes]], range_ids: list[int], report: RunReport,
               settle: list[Range] | None = None) -> tuple[bool, list[int] | None] | None:
        """3. Write one chunk (short transaction): only rows still on the old version move, and only
        while the target is still the Active version. The shared lock on the target row orders this
        write with a rotation demoting it and with an archive of it, so no row can ever be moved to a
        version whose KEK is being deleted. The event counts the rows really moved. False when the
        target is no longer Active (the rest of the batch is dropped; the next run starts afresh).
        Run again on a write conflict: the conditional update makes a repeat move only what is left.
        Returns None when the batch must stop, else whether the leases on ``range_ids`` are still
        ours and, with ``settle`` (the last write of a run), the ranges :meth:`RangeLeases.settle_in`
        found finished, settled in the same transaction."""
        def write(s: Session) -> tuple[int, bool, list[int] | None] | None:
            target = s.execute(select(KekVersion.status, KekVersion.removed).where(KekVersion.id == job.new_id)
                               .with_for_update(read=True)).first()
            if target is None or target.status != ACTIVE or target.removed is not None:
                return None
            kept = self.leases.renew(s, range_ids, self.lease_sec)
            moved = sum(move_rows(s, job.version_id, job.new_id, updates[start:start + UPDATE_CHUNK])
                        for start in range(0, len(updates), UPDATE_CHUNK))
            if moved:
                events.record(s, event_type="KMS.KEY.WRAP", user=_SYSTEM, account=job.owner,
                              description=f"Rewrapped {moved} volume key(s) of KMS key {job.key_uuid} from KEK "
                                          f"version {job.old_number} to version {job.new_number}",
                              resource_id=job.key_id, resource_type="KmsKey", parameters=f"count={moved}")
            finished = self.leases.settle_in(s, job.version_id, settle) if settle else None
            return moved, kept, finished

        outcome = retrying(self.db, write)
        if outcome is None:
            log.info("rewrap batch of KEK version %s discarded: version %s is no longer active", job.version_id,
                     job.new_number)
            self._jobs.pop(job.version_id, None)  # read the new target next run
            return None
        moved, kept, finished = outcome
        report.rewrapped += moved  # counted once committed
        return kept, finished

    def _crypto_thread(self) -> ThreadPoolExecutor:
        if self._crypto is None:
            self._crypto = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kms-rewrap-crypto")
        return self._crypto

    def close(self) -> None:
        """Stop the crypto thread (after the last run)."""
        if self._crypto is not None:
            self._crypto.shutdown(wait=True)
            self._crypto = None

    # ------------------------------------------------------------ a drained version
    def _archive(self, version_id: int, report: RunReport) -> None:
        """Archive a version left without wrapped keys, then delete its KEK: once, under the lock."""
        def archive(s: Session) -> bool:
            version = s.scalars(select(KekVersion).where(KekVersion.id == version_id).with_for_update()).first()
            if version is None or version.status != PREVIOUS:
                return False
            # A locking read: sees (and waits for) wrapped keys written by transactions still open.
            remaining = s.scalars(select(WrappedKey.id).where(WrappedKey.kek_version_id == version_id,
                                                              WrappedKey.removed.is_(None))
                                  .limit(1).with_for_update()).first()
            if remaining is not None:
                return False  # a key arrived after all: the next run plans ranges again
            version.status = ARCHIVED
            return True

        with cluster_lock(self.db, RETIRE_LOCK, wait_sec=2.0) as held:
            if not held:
                return  # another server is retiring a version; the next run looks again
            if retrying(self.db, archive):
                report.archived += 1
                self.leases.forget(version_id)
            self._delete_archived_kek(version_id)

    def _retire(self, version_id: int, report: RunReport) -> None:
        with cluster_lock(self.db, RETIRE_LOCK, wait_sec=2.0) as held:
            if held:
                self._delete_archived_kek(version_id)

    def _delete_archived_kek(self, version_id: int) -> None:
        """Delete an Archived version's KEK from its backend; only then mark the version removed.
        Caller holds :data:`RETIRE_LOCK`. Repeating it is safe (deleting a KEK already gone is
        not an error), so a write conflict runs it again."""
        def delete_kek(s: Session) -> None:
            version = s.get(KekVersion, version_id)
            if version is None or version.status != ARCHIVED or version.removed is not None:
                return
            key = s.get(KmsKey, version.kms_key_id)
            owner = s.get(Account, key.account_id)
            config = self._config(s, version.hsm_profile_id)
            provider = self.runtime.provider(config.protocol)
            try:
                self.runtime.call(s, "delete KEK", lambda: provider.delete_kek(config, version.kek_label),
                                  provider)
            except KmsError as exc:
                events.record(s, event_type="KMS.KEY.DELETE", user=s.get(User, SYSTEM_USER_ID), account=owner,
                              level=events.WARN, description=f"Failed to delete archived KEK {version.kek_label} "
                              f"from provider: {exc.message}", resource_id=key.id, resource_type="KmsKey")
                return
            version.removed = utcnow()
            events.record(s, event_type="KMS.KEY.DELETE", user=s.get(User, SYSTEM_USER_ID), account=owner,
                          description=f"Deleted archived KEK {version.kek_label} from provider after all wrapped keys "
                                      "were rewrapped", resource_id=key.id, resource_type="KmsKey")

        retrying(self.db, delete_kek)


class RewrapWorker:
    """The thread running :class:`Rewrapper` every ``kms.rewrap.interval.ms`` (read live; ≤ 0 pauses it)."""

    TICK_SEC = 1.0

    def __init__(self, state: Any) -> None:
        self.state = state
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="kms-rewrap-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=30)

    def wake(self) -> None:
        self._wake.set()

    def _interval_sec(self) -> float:
        with self.state.db.transaction() as s:
            return settings.get_value(s, "kms.rewrap.interval.ms") / 1000.0

    def _loop(self) -> None:
        """Tick every second (or sooner when woken) so a changed interval applies without a restart."""
        rewrapper = Rewrapper(self.state)
        purge = PurgeTask(self.state)  # keys whose pending deletion has ended (deletion.py); not paused with rewrap
        last_run = time.monotonic()
        while not self._stop.is_set():
            purge.maybe_run()
            try:
                interval = self._interval_sec()
            except Exception:  # noqa: BLE001 - the database may be briefly away; try again
                log.exception("rewrap worker could not read its settings")
                interval = -1
            due = interval > 0 and time.monotonic() - last_run >= interval
            if not due:
                wait = self.TICK_SEC if interval <= 0 else min(self.TICK_SEC, interval - (time.monotonic() - last_run))
                self._wake.wait(max(wait, 0.01))
                self._wake.clear()
                continue
            last_run = time.monotonic()
            try:
                rewrapper.run_once()
            except Exception:  # noqa: BLE001 - one failed run must not end the worker
                log.exception("rewrap run failed")
        rewrapper.close()
