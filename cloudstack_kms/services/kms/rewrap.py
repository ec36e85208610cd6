"""The background rewrap worker: moves wrapped keys from ``Previous`` KEK versions to the Active one.

Runs in every server process; a cluster lock lets one process work at a time. Each run
takes, per Previous version, up to ``kms.rewrap.batch.size`` wrapped keys:

1. read the batch (short transaction);
2. unwrap with the old version's provider and wrap with the Active version's provider,
   in memory, outside any transaction, in chunks of ``CRYPTO_CHUNK`` keys (each chunk one
   call through the retry wrapper, with its timeout); plaintext is zeroed at once;
3. per chunk, one short transaction writes the new blobs with a conditional update — only
   rows that still point at the old version change, and only while the target is still the
   Active version — and a ``KMS.KEY.WRAP`` event with the number of rows moved
   (``parameters`` = ``count=<n>``). The next chunk's crypto runs meanwhile.

A crash at any point loses nothing: until step 3 commits, the old blob and the old KEK are
intact. A Previous version with no wrapped keys left becomes ``Archived`` in its own
transaction, and only after that commit is its KEK deleted from the backend (retried on
later runs until it succeeds; ``removed`` is set on the version once the KEK is gone).
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
from ...providers import retry
from ...providers.base import KekNotFound, KmsError, ProfileConfig, UnwrapError, WrapContext, zero
from .. import events, settings
from . import profiles
from .cluster_lock import cluster_lock
from .runtime import KmsRuntime, runtime_of

log = logging.getLogger(__name__)
LOCK_NAME = "kms.rewrap.worker"
SYSTEM_USER_ID = 1
#: Keys per provider call through the retry wrapper (each chunk gets the operation timeout), and
#: per write transaction: the next chunk's crypto runs while one chunk is written.
CRYPTO_CHUNK = 250
#: Rows per conditional UPDATE statement (bound parameters stay well below SQLite's limit).
UPDATE_CHUNK = 500


@dataclass
class RunReport:
    rewrapped: int = 0
    failed: int = 0
    archived: int = 0
    locked_out: bool = False


def move_rows(session: Session, old_version_id: int, new_version_id: int, rows: list[tuple[int, bytes]]) -> int:
    """Give each row (id, new blob) its new blob and version, if it is still on the old version.

    One statement for all rows (``CASE id WHEN ... THEN ... END``) instead of one per row: on
    MySQL a row-by-row ``executemany`` costs a round trip per row. Written as driver SQL because
    building a 500-branch CASE as SQLAlchemy constructs costs more than running it. Returns the
    number of rows moved (MySQL connections report matched rows: SQLAlchemy sets FOUND_ROWS).
    """
    conn = session.connection()
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    table = WrappedKey.__table__.name
    sql = (f"UPDATE {table} SET wrapped_blob = CASE id {' '.join([f'WHEN {mark} THEN {mark}'] * len(rows))} END, "
           f"kek_version_id = {mark} WHERE id IN ({','.join([mark] * len(rows))}) AND kek_version_id = {mark}")
    params: list[Any] = [value for row in rows for value in row]
    params.append(new_version_id)
    params.extend(row_id for row_id, _ in rows)
    params.append(old_version_id)
    return conn.exec_driver_sql(sql, tuple(params)).rowcount


class Rewrapper:
    """One run of the worker (also callable directly by tools and tests)."""

    def __init__(self, state: Any) -> None:
        self.state = state
        self.db = state.db
        self.master_key = state.master_key
        self.runtime: KmsRuntime = runtime_of(state)
        self._configs: dict[int, ProfileConfig] = {}
        self._after: dict[int, int] = {}  # per Previous version: the last wrapped key id taken
        self._crypto: ThreadPoolExecutor | None = None

    def run_once(self) -> RunReport:
        report = RunReport()
        with cluster_lock(self.db, LOCK_NAME) as held:
            if not held:
                report.locked_out = True
                return report
            self._configs.clear()
            with self.db.transaction() as s:
                batch_size = settings.get_value(s, "kms.rewrap.batch.size")
                previous = list(s.scalars(select(KekVersion.id).where(KekVersion.status == PREVIOUS,
                                                                      KekVersion.removed.is_(None))
                                          .order_by(KekVersion.id)))
                pending_delete = list(s.scalars(select(KekVersion.id).where(KekVersion.status == ARCHIVED,
                                                                            KekVersion.removed.is_(None))))
            for version_id in previous:
                self._rewrap_version(version_id, batch_size, report)
            for version_id in pending_delete:
                self._delete_archived_kek(version_id)
        return report

    # ------------------------------------------------------------ one version
    def _config(self, session: Session, profile_id: int) -> ProfileConfig:
        config = self._configs.get(profile_id)
        if config is None:
            profile = session.get(HsmProfile, profile_id)
            config = self._configs[profile_id] = profiles.load_config(session, self.master_key, profile)
        return config

    def _rewrap_version(self, version_id: int, batch_size: int, report: RunReport) -> None:
        # 1. Read the batch and everything the crypto needs (short transaction).
        with self.db.transaction() as s:
            old = s.get(KekVersion, version_id)
            key = s.get(KmsKey, old.kms_key_id)
            active = s.scalars(select(KekVersion).where(KekVersion.kms_key_id == key.id, KekVersion.status == ACTIVE,
                                                        KekVersion.removed.is_(None))).first()
            old_profile = s.get(HsmProfile, old.hsm_profile_id)
            new_profile = s.get(HsmProfile, active.hsm_profile_id) if active else None
            if active is None or not old_profile.enabled or new_profile is None or not new_profile.enabled:
                log.warning("rewrap of KEK version %s skipped: profile disabled or no active version", old.uuid)
                return
            old_config, new_config = self._config(s, old_profile.id), self._config(s, new_profile.id)
            old_provider = self.runtime.provider(old_config.protocol)
            new_provider = self.runtime.provider(new_config.protocol)
            chunk_policy = self.runtime.policy_for(s, old_provider, new_provider, hot=True)
            rows = self._batch(s, version_id, batch_size)
            old_label, new_label, new_id = old.kek_label, active.kek_label, active.id
            key_uuid, purpose, key_id = key.uuid, key.purpose, key.id
            owner_id, old_number, new_number = key.account_id, old.version_number, active.version_number
        if not rows:
            self._archive(version_id, report)
            return
        self._after[version_id] = rows[-1][0]
        # 2. Unwrap + wrap in memory, outside any transaction, in chunks that each get the
        #    retry policy and its timeout (a whole large batch must not share one timeout).
        def crypto(chunk: list) -> tuple[list[tuple[int, bytes]], int]:
            out, failures = [], 0
            for row_id, row_uuid, blob in chunk:
                context = WrapContext(wrapped_key_uuid=row_uuid, kms_key_uuid=key_uuid, purpose=purpose)
                try:
                    plain = old_provider.unwrap(old_config, old_label, bytes(blob), context)
                except (UnwrapError, KekNotFound) as exc:
                    log.error("wrapped key %s cannot be unwrapped for rewrap: %s", row_uuid, exc.message)
                    failures += 1
                    continue
                try:
                    out.append((row_id, new_provider.wrap(new_config, new_label, bytes(plain), context)))
                finally:
                    zero(plain)
            return out, failures

        # The chunks form a pipeline: while one chunk is written, the next one is unwrapped and
        # wrapped on the crypto thread (the provider and the database driver both release the GIL).
        chunks = [rows[i:i + CRYPTO_CHUNK] for i in range(0, len(rows), CRYPTO_CHUNK)]

        def run(chunk: list) -> tuple[list[tuple[int, bytes]], int]:
            return retry.call(chunk_policy, "rewrap", lambda: crypto(chunk))

        pending: Future | None = self._crypto_thread().submit(run, chunks[0])
        try:
            for i in range(len(chunks)):
                try:
                    done, failures = pending.result()
                except KmsError as exc:
                    log.warning("rewrap batch of KEK version %s failed: %s", version_id, exc.message)
                    report.failed += sum(len(chunk) for chunk in chunks[i:])
                    return  # what was written so far stays written
                finally:
                    pending = None
                if i + 1 < len(chunks):
                    pending = self._crypto_thread().submit(run, chunks[i + 1])
                report.failed += failures
                if done and not self._write(version_id, new_id, done, report, owner_id=owner_id, key_id=key_id,
                                            key_uuid=key_uuid, old_number=old_number, new_number=new_number):
                    return
        finally:
            if pending is not None:  # leaving early: let the chunk in flight finish (it zeroes its plaintext)
                try:
                    pending.result()
                except Exception:  # noqa: BLE001 - its result is discarded anyway
                    pass

    def _write(self, version_id: int, new_id: int, updates: list[tuple[int, bytes]], report: RunReport, *,
               owner_id: int, key_id: int, key_uuid: str, old_number: int, new_number: int) -> bool:
        """3. Write one chunk (short transaction): only rows still on the old version move, and only
        while the target is still the Active version. The shared lock on the target row orders this
        write with a rotation demoting it and with an archive of it, so no row can ever be moved to a
        version whose KEK is being deleted. The event counts the rows really moved. False when the
        target is no longer Active (the rest of the batch is dropped; the next run starts afresh)."""
        with self.db.transaction() as s:
            target = s.scalars(select(KekVersion).where(KekVersion.id == new_id)
                               .with_for_update(read=True)).first()
            if target is None or target.status != ACTIVE or target.removed is not None:
                log.info("rewrap batch of KEK version %s discarded: version %s is no longer active", version_id,
                         new_number)
                return False
            moved = sum(move_rows(s, version_id, new_id, updates[start:start + UPDATE_CHUNK])
                        for start in range(0, len(updates), UPDATE_CHUNK))
            if moved:
                owner = s.get(Account, owner_id)
                events.record(s, event_type="KMS.KEY.WRAP", user=s.get(User, SYSTEM_USER_ID), account=owner,
                              description=f"Rewrapped {moved} volume key(s) of KMS key {key_uuid} from KEK version "
                                          f"{old_number} to version {new_number}", resource_id=key_id,
                              resource_type="KmsKey", parameters=f"count={moved}")
            report.rewrapped += moved
        return True

    def _crypto_thread(self) -> ThreadPoolExecutor:
        if self._crypto is None:
            self._crypto = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kms-rewrap-crypto")
        return self._crypto

    def close(self) -> None:
        """Stop the crypto thread (after the last run)."""
        if self._crypto is not None:
            self._crypto.shutdown(wait=True)
            self._crypto = None

    def _batch(self, session: Session, version_id: int, batch_size: int) -> list:
        """The next wrapped keys of the version, after those this worker saw last (keys that keep
        failing must not hold up the rest); from the start again once the end is reached."""
        def query(after: int) -> list:
            return session.execute(select(WrappedKey.id, WrappedKey.uuid, WrappedKey.wrapped_blob).where(
                WrappedKey.kek_version_id == version_id, WrappedKey.removed.is_(None), WrappedKey.id > after)
                .order_by(WrappedKey.id).limit(batch_size)).all()

        after = self._after.get(version_id, 0)
        rows = query(after)
        if not rows and after:
            self._after.pop(version_id, None)
            rows = query(0)
        return rows

    def _archive(self, version_id: int, report: RunReport) -> None:
        with self.db.transaction() as s:
            version = s.scalars(select(KekVersion).where(KekVersion.id == version_id).with_for_update()).first()
            if version is None or version.status != PREVIOUS:
                return
            # A locking read: sees (and waits for) wrapped keys written by transactions still open.
            remaining = s.scalars(select(WrappedKey.id).where(WrappedKey.kek_version_id == version_id,
                                                              WrappedKey.removed.is_(None))
                                  .limit(1).with_for_update()).first()
            if remaining is not None:
                return
            version.status = ARCHIVED
            report.archived += 1
        self._after.pop(version_id, None)
        self._delete_archived_kek(version_id)

    def _delete_archived_kek(self, version_id: int) -> None:
        """Delete an Archived version's KEK from its backend; only then mark the version removed."""
        with self.db.transaction() as s:
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
        last_run = time.monotonic()
        while not self._stop.is_set():
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
