"""The background rewrap worker: moves wrapped keys from ``Previous`` KEK versions to the Active one.

Runs in every server process; a cluster lock lets one process work at a time. Each run
takes, per Previous version, up to ``kms.rewrap.batch.size`` wrapped keys:

1. read the batch (short transaction);
2. unwrap with the old version's provider and wrap with the Active version's provider,
   in memory, outside any transaction; plaintext is zeroed at once;
3. one transaction writes the new blobs with a conditional update — only rows that still
   point at the old version change — and a ``KMS.KEY.WRAP`` event with the count.

A crash at any point loses nothing: until step 3 commits, the old blob and the old KEK are
intact. A Previous version with no wrapped keys left becomes ``Archived`` in its own
transaction, and only after that commit is its KEK deleted from the backend (retried on
later runs until it succeeds; ``removed`` is set on the version once the KEK is gone).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from ...models import Account, User
from ...models.base import utcnow
from ...models.kms import ACTIVE, ARCHIVED, PREVIOUS, HsmProfile, KekVersion, KmsKey, WrappedKey
from ...providers.base import KekNotFound, KmsError, ProfileConfig, UnwrapError, WrapContext, zero
from .. import events, settings
from . import profiles
from .cluster_lock import cluster_lock
from .runtime import KmsRuntime, runtime_of

log = logging.getLogger(__name__)
LOCK_NAME = "kms.rewrap.worker"
SYSTEM_USER_ID = 1


@dataclass
class RunReport:
    rewrapped: int = 0
    failed: int = 0
    archived: int = 0
    locked_out: bool = False


class Rewrapper:
    """One run of the worker (also callable directly by tools and tests)."""

    def __init__(self, state: Any) -> None:
        self.state = state
        self.db = state.db
        self.master_key = state.master_key
        self.runtime: KmsRuntime = runtime_of(state)
        self._configs: dict[int, ProfileConfig] = {}

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
            rows = s.execute(select(WrappedKey.id, WrappedKey.uuid, WrappedKey.wrapped_blob).where(
                WrappedKey.kek_version_id == old.id, WrappedKey.removed.is_(None))
                .order_by(WrappedKey.id).limit(batch_size)).all()
            old_label, new_label, new_id = old.kek_label, active.kek_label, active.id
            key_uuid, purpose, key_id = key.uuid, key.purpose, key.id
            owner_id, old_number, new_number = key.account_id, old.version_number, active.version_number
        if not rows:
            self._archive(version_id, report)
            return
        old_provider = self.runtime.provider(old_config.protocol)
        new_provider = self.runtime.provider(new_config.protocol)

        def crypto() -> tuple[list[dict], int]:
            out, failures = [], 0
            for row_id, row_uuid, blob in rows:
                context = WrapContext(wrapped_key_uuid=row_uuid, kms_key_uuid=key_uuid, purpose=purpose)
                try:
                    plain = old_provider.unwrap(old_config, old_label, bytes(blob), context)
                except (UnwrapError, KekNotFound) as exc:
                    log.error("wrapped key %s cannot be unwrapped for rewrap: %s", row_uuid, exc.message)
                    failures += 1
                    continue
                try:
                    out.append({"wid": row_id, "blob": new_provider.wrap(new_config, new_label, bytes(plain),
                                                                         context)})
                finally:
                    zero(plain)
            return out, failures

        with self.db.transaction() as s:
            policy_session = s
            try:
                updates, failures = self.runtime.call(policy_session, "rewrap", crypto)
            except KmsError as exc:
                log.warning("rewrap batch of KEK version %s failed: %s", version_id, exc.message)
                report.failed += len(rows)
                return
            report.failed += failures
            if not updates:
                return
            table = WrappedKey.__table__
            # Conditional: a row that no longer points at the old version (moved meanwhile) is left alone.
            result = s.connection().execute(
                table.update().where(table.c.id == bindparam("wid"), table.c.kek_version_id == version_id)
                .values(wrapped_blob=bindparam("blob"), kek_version_id=new_id), updates)
            moved = result.rowcount if result.rowcount is not None and result.rowcount >= 0 else len(updates)
            if moved:
                owner = s.get(Account, owner_id)
                events.record(s, event_type="KMS.KEY.WRAP", user=s.get(User, SYSTEM_USER_ID), account=owner,
                              description=f"Rewrapped {moved} volume key(s) of KMS key {key_uuid} from KEK version "
                                          f"{old_number} to version {new_number}", resource_id=key_id,
                              resource_type="KmsKey", parameters=f"count={moved}")
            report.rewrapped += moved

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
                self.runtime.call(s, "delete KEK", lambda: provider.delete_kek(config, version.kek_label))
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
