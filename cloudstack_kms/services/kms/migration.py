"""Moving legacy passphrase volumes under a KMS key, batch by batch, resumable.

The passphrase (the Base64 text that is the LUKS secret) becomes the volume's DEK, wrapped
by the key's Active version. In the same transaction the volume gets ``kms_key_id`` and
``kms_wrapped_key_id``, ``passphrase_id`` is cleared and the ``passphrase`` row deleted,
so no copy stays under the legacy key. The image is not touched: its secret is unchanged.
A volume already migrated is skipped, so a rerun or a resumed job carries on safely.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from ...errors import CloudRuntimeError, InvalidParameterValue
from ...db import Database
from ...models import Account, Domain, User
from ...models.base import new_uuid, utcnow
from ...models.kms import HsmProfile, KmsKey, WrappedKey
from ...models.volume import Passphrase, Volume
from ...observability import metrics
from ...providers import retry
from ...providers.base import KmsError, zero
from ...security.masterkey import MasterKey, MasterKeyError
from .. import events
from ..volumes import open_passphrase
from . import envelope, profiles
from .keys import active_version, lock_key
from .runtime import KmsRuntime

log = logging.getLogger(__name__)
#: Volumes per transaction (and per progress update of the job).
BATCH = 1000
#: Passphrases per provider call through the retry wrapper (each chunk gets the operation timeout).
CRYPTO_CHUNK = 100
#: Rows per set-based statement.
WRITE_CHUNK = 500


@dataclass
class MigrationReport:
    migrated: int = 0
    already: int = 0
    skipped: list[dict] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)

    def as_result(self) -> dict:
        return {"migrated": self.migrated, "skipped": len(self.skipped) + self.already,
                "failed": len(self.failures), "alreadymigrated": self.already,
                "skippedvolumes": self.skipped, "failures": self.failures}


def legacy_filter(stmt):  # noqa: ANN001, ANN201
    return stmt.where(Volume.removed.is_(None), Volume.passphrase_id.is_not(None), Volume.kms_key_id.is_(None))


def candidates_by_scope(session: Session, key: KmsKey, *, zone_id: int | None, domain: Domain | None,
                        account: Account | None, report: MigrationReport) -> list[int]:
    """Legacy volumes in the scope; those of accounts other than the key's owner are skipped and reported."""
    stmt = legacy_filter(select(Volume.id, Volume.uuid, Volume.account_id))
    if zone_id is not None:
        stmt = stmt.where(Volume.data_center_id == zone_id)
    if account is not None:
        stmt = stmt.where(Volume.account_id == account.id)
    elif domain is not None:
        stmt = stmt.where(Volume.domain_id.in_(select(Domain.id).where(
            Domain.path.startswith(domain.path, autoescape=True))))
    ids = []
    for volume_id, uuid, account_id in session.execute(stmt.order_by(Volume.id)):
        if account_id != key.account_id:
            report.skipped.append({"volumeid": uuid, "reason": "volume belongs to another account than the KMS key"})
        else:
            ids.append(volume_id)
    return ids


def check_volume_ids(session: Session, key: KmsKey, volumes: list[Volume]) -> list[int]:
    """Upstream's all-or-nothing rule: every listed volume must belong to the key owner's account."""
    foreign = [v.uuid for v in volumes if v.account_id != key.account_id]
    if foreign:
        raise InvalidParameterValue("The following volumes do not belong to the same account as the KMS key: "
                                    + ", ".join(foreign))
    return [v.id for v in volumes]


def migrate_batch(db: Database, runtime: KmsRuntime, master_key: MasterKey, key_id: int, volume_ids: list[int],
                  report: MigrationReport, user_id: int, session: Session | None = None) -> None:
    """Migrate one batch in one transaction (``session``'s, or a new one committed at the end):
    all of the batch commits, or (crash, database error) none of it.

    The volume rows are locked first, so two migrations of the same volumes cannot both wrap
    them; the key's Active version is held with a shared lock until commit, so a rotation cannot
    demote it meanwhile. A volume whose passphrase cannot be opened or wrapped is reported as a
    failure and left as it is; the others go on. The writes are set-based (one INSERT of the
    wrapped keys, one UPDATE of the volumes, one DELETE of the passphrases): a statement per
    volume would cost a database round trip per volume.
    """
    if not volume_ids:
        return
    if session is None:
        with db.transaction() as own:
            _migrate_batch(own, runtime, master_key, key_id, volume_ids, report, user_id)
    else:
        _migrate_batch(session, runtime, master_key, key_id, volume_ids, report, user_id)


def _migrate_batch(session: Session, runtime: KmsRuntime, master_key: MasterKey, key_id: int, volume_ids: list[int],
                   report: MigrationReport, user_id: int) -> None:
    key = session.get(KmsKey, key_id)
    if key is None or key.removed is not None or not key.enabled:
        raise InvalidParameterValue(f"KMS key is not enabled: {key.uuid if key else key_id}")
    # Shared key-row lock before the volumes, in the order deleteKMSKey takes its locks: a delete
    # waits for this batch and then sees the keys it wrapped (and refuses), or the batch waits for
    # the delete and then finds the key gone.
    lock_key(session, key)
    volumes = session.execute(select(Volume.id, Volume.uuid, Volume.passphrase_id, Volume.data_center_id)
                              .where(Volume.id.in_(volume_ids), Volume.removed.is_(None),
                                     Volume.passphrase_id.is_not(None), Volume.kms_key_id.is_(None))
                              .order_by(Volume.id).with_for_update()).all()
    report.already += len(set(volume_ids)) - len(volumes)
    if not volumes:
        return
    version = active_version(session, key, lock=True)
    profile = session.get(HsmProfile, version.hsm_profile_id)
    if profile is None or profile.removed is not None or not profile.enabled:
        raise CloudRuntimeError(f"Failed to migrate volumes to KMS: HSM profile of KMS key {key.uuid} is not "
                                "enabled")
    config = profiles.load_config(session, master_key, profile)
    provider = runtime.provider(profile.protocol, timed=False)  # chunks are timed by wrap() below
    policy = runtime.policy_for(session, provider, hot=True)
    phrases = dict(session.execute(select(Passphrase.id, Passphrase.passphrase).where(
        Passphrase.id.in_([v.passphrase_id for v in volumes]))).all())

    def wrap(chunk: list) -> tuple[list[tuple[Any, str, bytes]], list[dict]]:
        done, failed = [], []
        timer = metrics.BulkTimer()
        try:
            for volume in chunk:
                secret = None
                try:
                    secret = open_passphrase(master_key, Passphrase(id=volume.passphrase_id,
                                                                    passphrase=phrases.get(volume.passphrase_id)))
                    wrapped_uuid = new_uuid()
                    started = time.perf_counter()
                    try:
                        blob = provider.wrap(config, version.kek_label, bytes(secret),
                                             envelope.context_for(key, wrapped_uuid))
                    except Exception:
                        timer.add(config.uuid, "wrap", time.perf_counter() - started, failed=True)
                        raise
                    timer.add(config.uuid, "wrap", time.perf_counter() - started)
                    done.append((volume, wrapped_uuid, blob))
                except MasterKeyError:  # this volume only; a provider error stops the chunk (below)
                    failed.append({"volumeid": volume.uuid, "reason": "the volume's passphrase cannot be opened"})
                finally:
                    zero(secret)
        finally:
            timer.record()
        return done, failed

    wrapped: list[tuple[Any, str, bytes]] = []
    for start in range(0, len(volumes), CRYPTO_CHUNK):
        chunk = volumes[start:start + CRYPTO_CHUNK]
        try:
            done, failed = retry.call(policy, "wrap", lambda chunk=chunk: wrap(chunk))
        except KmsError as exc:  # the provider is failing: report the rest of the batch, write what is done
            report.failures.extend({"volumeid": v.uuid, "reason": f"Failed to wrap key: {exc.message}"}
                                   for v in volumes[start:])
            break
        wrapped.extend(done)
        report.failures.extend(failed)
    if not wrapped:
        return
    now = utcnow()
    session.execute(insert(WrappedKey.__table__), [
        {"uuid": wrapped_uuid, "kms_key_id": key.id, "kek_version_id": version.id,
         "zone_id": volume.data_center_id, "wrapped_blob": blob, "created": now}
        for volume, wrapped_uuid, blob in wrapped])
    ids = dict(session.execute(select(WrappedKey.uuid, WrappedKey.id).where(
        WrappedKey.uuid.in_([wrapped_uuid for _, wrapped_uuid, _ in wrapped]))).all())
    pairs = [(volume.id, ids[wrapped_uuid]) for volume, wrapped_uuid, _ in wrapped]
    moved = sum(_point_volumes(session, key.id, pairs[i:i + WRITE_CHUNK])
                for i in range(0, len(pairs), WRITE_CHUNK))
    if moved != len(pairs):  # the rows are locked: nothing else can have changed them
        raise CloudRuntimeError(f"Failed to migrate volumes to KMS: {len(pairs) - moved} volume(s) changed "
                                "during the migration")
    passphrase_ids = [volume.passphrase_id for volume, _, _ in wrapped]
    for i in range(0, len(passphrase_ids), WRITE_CHUNK):
        session.execute(delete(Passphrase).where(Passphrase.id.in_(passphrase_ids[i:i + WRITE_CHUNK]))
                        .execution_options(synchronize_session=False))
    report.migrated += len(wrapped)
    owner = session.get(Account, key.account_id)
    events.record(session, event_type="VOLUME.MIGRATE.TO.KMS", user=session.get(User, user_id),
                  account=owner, description=f"Migrated volume encryption keys to KMS key {key.uuid} "
                  f"(v{version.version_number}): {len(wrapped)} in this batch, {report.migrated} so far",
                  resource_id=key.id, resource_type="KmsKey", parameters=f"count={len(wrapped)}")


def _point_volumes(session: Session, key_id: int, pairs: list[tuple[int, int]]) -> int:
    """Volumes (id, wrapped key id) now use the KMS key; their passphrase reference is cleared."""
    conn = session.connection()
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = (f"UPDATE {Volume.__table__.name} SET kms_wrapped_key_id = CASE id "
           f"{' '.join([f'WHEN {mark} THEN {mark}'] * len(pairs))} END, kms_key_id = {mark}, passphrase_id = NULL "
           f"WHERE id IN ({','.join([mark] * len(pairs))}) AND kms_key_id IS NULL")
    params: list[Any] = [value for pair in pairs for value in pair]
    params.append(key_id)
    params.extend(volume_id for volume_id, _ in pairs)
    return conn.exec_driver_sql(sql, tuple(params)).rowcount


def check_key_usable(session: Session, key: KmsKey) -> None:
    if not key.enabled:
        raise InvalidParameterValue(f"KMS key is not enabled: {key.uuid}")
    if key.purpose != "VOLUME_ENCRYPTION":
        raise InvalidParameterValue("KMS key purpose must be VOLUME_ENCRYPTION")
    profile = session.get(HsmProfile, key.hsm_profile_id)
    if profile is None or not profile.enabled:
        raise CloudRuntimeError(f"Failed to migrate volumes to KMS: HSM profile of KMS key {key.uuid} is not enabled")
