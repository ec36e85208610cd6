"""Moving legacy passphrase volumes under a KMS key, batch by batch, resumable.

The passphrase (the Base64 text that is the LUKS secret) becomes the volume's DEK, wrapped
by the key's Active version. In the same transaction the volume gets ``kms_key_id`` and
``kms_wrapped_key_id``, ``passphrase_id`` is cleared and the ``passphrase`` row deleted,
so no copy stays under the legacy key. The image is not touched: its secret is unchanged.
A volume already migrated is skipped, so a rerun or a resumed job carries on safely.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...api.errors import ApiError, CloudRuntimeError, InvalidParameterValue
from ...db import Database
from ...models import Account, Domain
from ...models.kms import KmsKey
from ...models.volume import Passphrase, Volume
from ...providers.base import zero
from ...security.masterkey import MasterKey
from .. import events, settings
from ..volumes import open_passphrase
from . import envelope
from .runtime import KmsRuntime

log = logging.getLogger(__name__)
BATCH = 200


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
        stmt = stmt.where(Volume.domain_id.in_(select(Domain.id).where(Domain.path.startswith(domain.path))))
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
                  report: MigrationReport, user_id: int) -> None:
    """One transaction; each volume in a savepoint so one failure does not undo the others."""
    with db.transaction() as session:
        key = session.get(KmsKey, key_id)
        bits = settings.get_value(session, "kms.dek.size.bits")
        for volume_id in volume_ids:
            volume = session.scalars(select(Volume).where(Volume.id == volume_id).with_for_update()).first()
            if volume is None or volume.removed is not None or volume.passphrase_id is None \
                    or volume.kms_key_id is not None:
                report.already += 1
                continue
            secret = None
            try:
                with session.begin_nested():
                    passphrase = session.get(Passphrase, volume.passphrase_id)
                    secret = open_passphrase(master_key, passphrase)
                    new = envelope.wrap_new_dek(session, runtime, master_key, key, bits, plaintext=bytes(secret))
                    zero(new.plaintext)
                    new.wrapped_key.zone_id = volume.data_center_id
                    volume.kms_key_id = key.id
                    volume.kms_wrapped_key_id = new.wrapped_key.id
                    volume.passphrase_id = None
                    session.flush()
                    session.delete(passphrase)
                    session.flush()
                report.migrated += 1
            except ApiError as exc:
                report.failures.append({"volumeid": volume.uuid, "reason": exc.text})
            except Exception:  # noqa: BLE001 - one volume's failure is reported, the rest go on
                log.exception("migration of volume %s failed", volume.uuid)
                report.failures.append({"volumeid": volume.uuid, "reason": "internal error, see the server log"})
            finally:
                zero(secret)
        if volume_ids:
            owner = session.get(Account, key.account_id)
            from ...models import User
            events.record(session, event_type="VOLUME.MIGRATE.TO.KMS", user=session.get(User, user_id),
                          account=owner, description=f"Migrated volume encryption keys to KMS key {key.uuid}: "
                          f"{report.migrated} so far", resource_id=key.id, resource_type="KmsKey")


def check_key_usable(session: Session, key: KmsKey) -> None:
    from ...models.kms import HsmProfile
    if not key.enabled:
        raise InvalidParameterValue(f"KMS key is not enabled: {key.uuid}")
    if key.purpose != "VOLUME_ENCRYPTION":
        raise InvalidParameterValue("KMS key purpose must be VOLUME_ENCRYPTION")
    profile = session.get(HsmProfile, key.hsm_profile_id)
    if profile is None or not profile.enabled:
        raise CloudRuntimeError(f"Failed to migrate volumes to KMS: HSM profile of KMS key {key.uuid} is not enabled")
