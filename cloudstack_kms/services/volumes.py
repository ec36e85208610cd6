"""Volumes: the part of CloudStack that uses KMS keys.

Three kinds, chosen by the disk offering and ``kmskeyid``:

* **KMS** (encrypting offering + key): a DEK of ``kms.dek.size.bits`` from the key's Active
  version, stored wrapped; the LUKS secret is the DEK's Base64 text.
* **Legacy** (encrypting offering, no key): 48 random bytes as Base64 text (64 characters),
  sealed with the master key in ``passphrase``; that text is the LUKS secret, as upstream.
* **Plain**: an unencrypted image.

Secrets live in memory only for the qemu call and are zeroed afterwards.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, event, func, select
from sqlalchemy.orm import Session

from ..db import cache_of
from ..errors import CloudRuntimeError, InvalidParameterValue, PermissionDenied
from ..models import Account, DataCenter, Domain
from ..models.base import new_uuid, utcnow
from ..models.kms import PURPOSE_VOLUME, KekVersion, KmsKey, WrappedKey
from ..models.volume import (ENCRYPT_LUKS, VOLUME_ALLOCATED, VOLUME_DESTROY, VOLUME_EXPUNGED, VOLUME_READY,
                             DiskOffering, Passphrase, StoragePool, Volume)
from ..providers.base import random_buffer, zero
from ..security.masterkey import MasterKey
from ..storage import pools, qemu
from . import settings
from .kms import envelope
from .kms.keys import lock_key, note_share_locked, pending_deletion_error
from .kms.runtime import KmsRuntime

log = logging.getLogger(__name__)
GIB = 1024 ** 3
PASSPHRASE_BYTES = 48
MAX_DEK_BYTES = 32  # kms.dek.size.bits is at most 256


# ------------------------------------------------------------------ checks (spec §2.14)
def check_kms_key(session: Session, key: KmsKey, owner: Account, zone: DataCenter) -> None:
    if key.account_id != owner.id:
        raise PermissionDenied("KMS key does not belong to the volume owner account")
    if key.zone_id != zone.id:
        key_zone = session.get(DataCenter, key.zone_id)
        raise InvalidParameterValue(f"KMS key belongs to zone {key_zone.uuid if key_zone else key.zone_id} but the "
                                    f"target resource is in zone {zone.uuid}")
    if key.deletion_date is not None:
        raise pending_deletion_error(key)
    if not key.enabled:
        raise InvalidParameterValue(f"KMS key is not enabled and cannot be used for volume encryption: {key.uuid}")
    if key.purpose != PURPOSE_VOLUME:
        raise InvalidParameterValue(f"KMS key purpose must be volume encryption; key has purpose: {key.purpose}")


def volume_size(offering: DiskOffering, size_gb: int | None) -> int:
    if offering.customized:
        if not size_gb or size_gb <= 0:
            raise InvalidParameterValue("Disk offering is customized, so a size (in GB) must be specified")
        return size_gb * GIB
    if size_gb is not None and offering.disk_size and size_gb * GIB != offering.disk_size:
        raise InvalidParameterValue("Disk size can't be specified with a disk offering of fixed size")
    return offering.disk_size


def allocate(session: Session, *, owner: Account, zone: DataCenter, offering: DiskOffering, size_gb: int | None,
             name: str | None, key: KmsKey | None, key_locked: bool = False, insert: bool = True) -> Volume:
    """The create phase: validate and insert the row (state Allocated). Nothing else is written.

    ``key_locked``: the caller read ``key`` with a shared lock (``with_for_update(read=True)``) in
    this transaction, and found it not removed. ``insert`` False: :func:`provision` follows in
    this transaction and inserts the row once, finished; it is not added to the session here."""
    if offering.state != "Active" or offering.removed is not None:
        raise InvalidParameterValue(f"Disk offering {offering.uuid} is not active")
    if key is not None:
        if not offering.encrypt:
            raise InvalidParameterValue("A KMS key can only be used with a disk offering that has encryption "
                                        "enabled")
        check_kms_key(session, key, owner, zone)
        # Shared lock on the key row until commit: a concurrent deleteKMSKey either waits and then
        # sees this volume, or commits first and the key is found removed here.
        if not key_locked:
            lock_key(session, key)
        note_share_locked(session, key)
    uuid = new_uuid()
    volume = Volume(uuid=uuid, name=name or f"vol-{uuid[:8]}", account_id=owner.id, domain_id=owner.domain_id,
                    size=volume_size(offering, size_gb),
                    data_center_id=zone.id, disk_offering_id=offering.id, state=VOLUME_ALLOCATED,
                    provisioning_type=offering.provisioning_type, format="QCOW2",
                    kms_key_id=key.id if key is not None else None,
                    encrypt_format=ENCRYPT_LUKS if offering.encrypt else None)
    session.info.setdefault("volumes.provisioned", []).extend(row for row in (volume, key) if row is not None)
    if not insert:
        return volume
    session.add(volume)
    session.flush()
    # The new row is this transaction's until it commits (InnoDB locks inserted rows; SQLite has one
    # writer), so a job phase run in the same transaction need not lock it again (``provision``);
    # the rows are held (volumes.provisioned) as the session keeps them weakly.
    session.info.setdefault("volumes.locked", set()).add(volume.id)
    return volume


def new_passphrase(session: Session, master_key: MasterKey) -> tuple[Passphrase, bytearray]:
    raw = random_buffer(PASSPHRASE_BYTES)
    try:
        secret = b64_buffer(raw)
    finally:
        zero(raw)
    row = Passphrase()
    session.add(row)
    session.flush()
    row.passphrase = master_key.seal(secret, f"passphrase:{row.id}")  # type: ignore[arg-type] - bytes-like
    return row, secret


def open_passphrase(master_key: MasterKey, row: Passphrase) -> bytearray:
    return bytearray(master_key.open(row.passphrase or "", f"passphrase:{row.id}"))


_LOCK_VOLUMES = (select(Volume).where(Volume.id.in_(bindparam("ids", expanding=True))).order_by(Volume.id)
                 .with_for_update().execution_options(populate_existing=True))


def lock_for_provision(session: Session, volume_ids: list[int]) -> list[Volume]:
    """Load and lock (``SELECT ... FOR UPDATE``, in id order) the volumes that :func:`provision` is
    about to provision in this transaction, in one query; :func:`provision` then does not read them
    again. Their rows are held until the transaction ends."""
    if not volume_ids:
        return []
    rows = list(session.scalars(_LOCK_VOLUMES, {"ids": sorted(volume_ids)}))
    session.info.setdefault("volumes.locked", set()).update(row.id for row in rows)
    session.info.setdefault("volumes.provisioned", []).extend(rows)
    return rows


#: Zones, their pools and disk offerings hardly ever change, and every volume job shows them:
#: detached copies are kept this long per process (this process's own changes clear them at once).
PLACEMENT_TTL_SEC = 5.0


def _placement(session: Session, volume: Volume) -> tuple[DataCenter, StoragePool, DiskOffering | None]:
    """The volume's zone, pool and offering, attached to ``session`` (and held by it until the
    transaction ends), without a query when they were read recently."""
    memo = session.info.setdefault("volumes.placement", {})
    key = (volume.data_center_id, volume.disk_offering_id)
    found = memo.get(key)
    if found is not None:
        return found
    db = session.info.get("database")
    cache = cache_of(session, "volumes.placement", PLACEMENT_TTL_SEC, (DataCenter, StoragePool, DiskOffering),
                     max_entries=256)
    cached = cache.get_or_load(key, lambda: _load_placement(db, *key)) if cache is not None else None
    if cached is not None and cached[1] is not None:
        zone, pool, offering = (session.merge(row, load=False) if row is not None else None for row in cached)
    else:  # not cached, or the zone has no pool yet: made here, in this transaction
        zone = session.get(DataCenter, volume.data_center_id)
        pool = pools.pool_for_zone(session, zone)
        offering = session.get(DiskOffering, volume.disk_offering_id)
    found = memo[key] = (zone, pool, offering)
    return found


def _load_placement(db, zone_id: int, offering_id: int) -> tuple:  # noqa: ANN001 - Database
    """Detached rows, read in a short read-only transaction of their own (pool None: none yet;
    :func:`pools.pool_for_zone` then makes one in the caller's transaction)."""
    with db.transaction(readonly=True) as s:
        pool = s.scalars(select(StoragePool).where(StoragePool.data_center_id == zone_id,
                                                   StoragePool.removed.is_(None)).order_by(StoragePool.id)).first()
        return s.get(DataCenter, zone_id), pool, s.get(DiskOffering, offering_id)


def provision(session: Session, runtime: KmsRuntime, master_key: MasterKey, volume: Volume) -> None:
    """The job phase: make the volume's secret and, unless metadata-only, its LUKS image.

    The image is made before the transaction commits; if it then rolls back (the job failed or
    was lost), the image is removed again, so no image is ever left without its volume row.
    """
    # Lock the row first (SELECT ... FOR UPDATE on MySQL; SQLite runs one writer at a time). A
    # deleteVolume that committed while the job was queued is seen here, and the job fails, as
    # upstream's does for a volume that is gone, before making a key or an image; one that comes
    # later waits for this transaction and then removes what it made. A volume allocated without
    # insert is not in the database yet: nobody else can see it, and it is inserted at the end.
    new_row = volume.id is None
    if not new_row and volume.id not in session.info.get("volumes.locked", ()):
        session.refresh(volume, with_for_update=True)
    if volume.removed is not None:
        raise CloudRuntimeError(f"Failed to create a volume: volume {volume.uuid} was deleted before it could be "
                                "created")
    if volume.state != VOLUME_ALLOCATED:
        raise CloudRuntimeError(f"Failed to create a volume: volume {volume.uuid} is {volume.state}, not Allocated")
    secret: bytearray | None = None
    dek: bytearray | None = None
    try:
        images, bits, iter_time_ms = settings.get_values(session, "storage.volume.images", "kms.dek.size.bits",
                                               "storage.luks.iter.time.ms")
        zone, pool, offering = _placement(session, volume)
        keep = [zone, pool, offering]
        if volume.kms_key_id is not None:
            key = session.get(KmsKey, volume.kms_key_id)
            if key is None or key.removed is not None:
                raise InvalidParameterValue(f"KMS key not found: {volume.kms_key_id}")
            new = envelope.wrap_new_dek(session, runtime, master_key, key, bits)
            dek = new.plaintext
            keep += [key, new.wrapped_key]
            volume.kms_wrapped_key_id = new.wrapped_key.id
            if images:
                secret = luks_secret(dek)
        elif volume.encrypt_format:
            row, secret = new_passphrase(session, master_key)
            volume.passphrase_id = row.id
        volume.pool_id = pool.id
        if images:
            path = pools.image_path(pool, volume.uuid)
            try:
                qemu.create(str(path), volume.size, secret, iter_time_ms)
            except qemu.QemuError as exc:
                _remove_image(path)
                log.warning("creating the image of volume %s failed: %s", volume.uuid, exc.message)
                raise CloudRuntimeError(f"Failed to create volume image: {exc.message}") from None
            _when_transaction_ends(session, on_rollback=lambda: _remove_image(path))
            volume.path = path.name
        volume.state = VOLUME_READY
        volume.updated = utcnow()
        if new_row:
            session.add(volume)
            session.flush()
        # The session's identity map holds rows weakly: keep the ones the volume's view shows
        # until the transaction ends, so the view reads them without querying them again.
        session.info.setdefault("volumes.provisioned", []).extend(keep)
    finally:
        zero(dek)
        zero(secret)


def volume_secret(session: Session, runtime: KmsRuntime, master_key: MasterKey, volume: Volume) -> bytearray | None:
    """The LUKS secret of a volume (caller zeroes it), or None for a plain volume."""
    if volume.kms_wrapped_key_id is not None:
        wrapped = session.get(WrappedKey, volume.kms_wrapped_key_id)
        if wrapped is None or wrapped.removed is not None:
            raise CloudRuntimeError(f"Wrapped key of volume {volume.uuid} is missing")
        dek = envelope.unwrap(session, runtime, master_key, wrapped)
        try:
            return luks_secret(dek)
        finally:
            zero(dek)
    if volume.passphrase_id is not None:
        row = session.get(Passphrase, volume.passphrase_id)
        if row is None:
            raise CloudRuntimeError(f"Passphrase of volume {volume.uuid} is missing")
        return open_passphrase(master_key, row)
    return None


def luks_secret(dek: bytearray) -> bytearray:
    """The LUKS secret held by a DEK.

    A generated DEK (16–32 random bytes) is used as its Base64 text. A DEK that came from
    ``migrateVolumesToKMS`` *is* the legacy passphrase (64 characters of Base64 text) and is
    used as it is, so migrated images open with the secret they were made with.
    """
    if len(dek) > MAX_DEK_BYTES:
        return bytearray(dek)
    return b64_buffer(dek)


_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def b64_buffer(data: bytes | bytearray) -> bytearray:
    """Standard Base64 (with padding) written into a new ``bytearray``.

    ``base64.b64encode`` returns immutable ``bytes`` that cannot be zeroed; a secret's text is
    built here directly in a buffer the caller zeroes.
    """
    out = bytearray(4 * ((len(data) + 2) // 3))
    full = len(data) - len(data) % 3
    j = 0
    for i in range(0, full, 3):
        out[j] = _B64_ALPHABET[data[i] >> 2]
        out[j + 1] = _B64_ALPHABET[((data[i] & 3) << 4) | (data[i + 1] >> 4)]
        out[j + 2] = _B64_ALPHABET[((data[i + 1] & 15) << 2) | (data[i + 2] >> 6)]
        out[j + 3] = _B64_ALPHABET[data[i + 2] & 63]
        j += 4
    rest = len(data) - full
    if rest:
        second = data[full + 1] if rest == 2 else 0
        out[j] = _B64_ALPHABET[data[full] >> 2]
        out[j + 1] = _B64_ALPHABET[((data[full] & 3) << 4) | (second >> 4)]
        out[j + 2] = _B64_ALPHABET[(second & 15) << 2] if rest == 2 else 0x3D
        out[j + 3] = 0x3D
    return out


def image_file(session: Session, volume: Volume) -> Path | None:
    if not volume.path or volume.pool_id is None:
        return None
    pool = session.get(StoragePool, volume.pool_id)
    return Path(pool.path) / volume.path if pool else None


def check(session: Session, runtime: KmsRuntime, master_key: MasterKey, volume: Volume) -> dict[str, str]:
    """Open the image with its key through qemu; the ``volumecheckresult`` map."""
    if volume.state != VOLUME_READY:
        raise InvalidParameterValue(f"Volume: {volume.name} is not in Ready state")
    path = image_file(session, volume)
    if path is None or not path.exists():
        raise InvalidParameterValue(f"Volume: {volume.name} has no image on primary storage")
    secret = volume_secret(session, runtime, master_key, volume)
    try:
        luks = qemu.is_luks(str(path))
        result = qemu.check(str(path), secret if luks else None)
    except qemu.QemuError as exc:
        raise CloudRuntimeError(f"Failed to check volume {volume.uuid}: {exc.message}") from None
    finally:
        zero(secret)
    report = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in result.report.items()}
    report["encryption"] = "luks" if luks else "none"
    report["unlocked"] = "true" if (luks and result.unlocked) else "false"
    if result.error:
        report["error"] = result.error
    volume.check_result = json.dumps(report)[:4096]
    return report


def _remove_image(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:  # an orphan file is logged, never a reason to fail the transaction
        log.warning("could not remove volume image %s: %s", path, exc.strerror)


def _when_transaction_ends(session: Session, on_commit=None, on_rollback=None) -> None:  # noqa: ANN001
    """Run a file-system action once the session's transaction has committed or rolled back."""
    done = False

    def committed(_session: Session) -> None:
        nonlocal done
        if not done:
            done = True
            if on_commit is not None:
                on_commit()

    def rolled_back(_session: Session) -> None:
        nonlocal done
        if not done:
            done = True
            if on_rollback is not None:
                on_rollback()

    event.listen(session, "after_commit", committed)
    event.listen(session, "after_rollback", rolled_back)


def delete(session: Session, volume: Volume) -> bool:
    """Expunge: the image, the volume's wrapped key (unless shared) and its passphrase go too.
    False (and nothing done) if the volume was removed meanwhile.

    The row is locked and read again first: a createVolume job still provisioning the volume holds
    that lock, so this waits for it and then sees (and removes) the key and image it made.
    The image is removed once the transaction has committed: a rolled-back delete keeps it."""
    session.refresh(volume, with_for_update=True)
    if volume.removed is not None:
        return False
    path = image_file(session, volume)
    if volume.kms_wrapped_key_id is not None:
        shared = session.scalar(select(func.count()).select_from(Volume).where(
            Volume.kms_wrapped_key_id == volume.kms_wrapped_key_id, Volume.id != volume.id,
            Volume.removed.is_(None))) or 0
        wrapped = session.get(WrappedKey, volume.kms_wrapped_key_id)
        if not shared and wrapped is not None:
            wrapped.removed = utcnow()
    if volume.passphrase_id is not None:
        row = session.get(Passphrase, volume.passphrase_id)
        volume.passphrase_id = None
        if row is not None:
            session.flush()
            session.delete(row)
    volume.state = VOLUME_EXPUNGED
    volume.removed = utcnow()
    session.flush()
    if path is not None:
        _when_transaction_ends(session, on_commit=lambda: _remove_image(path))
    return True


def volume_usage_check(session: Session, key: KmsKey) -> bool:
    return bool(session.scalar(select(Volume.id).where(Volume.kms_key_id == key.id, Volume.removed.is_(None))
                               .limit(1)))


# ------------------------------------------------------------------ view
def volume_view(session: Session, volume: Volume, admin: bool, caller: Account | None = None) -> dict[str, Any]:
    """The VolumeResponse fields. ``caller``: the calling account as the request holds it; a
    volume it owns does not read it (and its domain) again."""
    if caller is not None and caller.id == volume.account_id:
        owner = caller
    else:
        owner = session.get(Account, volume.account_id)
    domain = owner.domain if owner is not None and owner.domain_id == volume.domain_id else \
        session.get(Domain, volume.domain_id)
    zone = session.get(DataCenter, volume.data_center_id)
    offering = session.get(DiskOffering, volume.disk_offering_id)
    pool = session.get(StoragePool, volume.pool_id) if volume.pool_id else None
    key = session.get(KmsKey, volume.kms_key_id) if volume.kms_key_id else None
    version = None
    if volume.kms_wrapped_key_id:
        wrapped = session.get(WrappedKey, volume.kms_wrapped_key_id)  # rows a job just wrote: no query
        kek_version = session.get(KekVersion, wrapped.kek_version_id) if wrapped and wrapped.kek_version_id else None
        version = kek_version.version_number if kek_version else None
    return {
        "id": volume.uuid, "name": volume.name, "zoneid": zone.uuid if zone else None,
        "zonename": zone.name if zone else None, "type": volume.volume_type, "size": volume.size,
        "created": volume.created, "state": volume.state,
        "account": owner.account_name if owner else None, "accountid": owner.uuid if owner else None,
        "domainid": domain.uuid if domain else None, "domain": domain.name if domain else None,
        "domainpath": domain.display_path if domain else None,
        "storagetype": "shared", "hypervisor": "KVM", "provisioningtype": volume.provisioning_type,
        "diskofferingid": offering.uuid if offering else None,
        "diskofferingname": offering.name if offering else None,
        "diskofferingdisplaytext": offering.display_text if offering else None,
        "storage": pool.name if (pool and admin) else None, "storageid": pool.uuid if (pool and admin) else None,
        "path": volume.path if admin else None, "encryptformat": volume.encrypt_format,
        "kmskeyid": key.uuid if key else None, "kmskey": key.name if key else None, "kmskeyversion": version,
        "volumecheckresult": json.loads(volume.check_result) if volume.check_result else None,
        "destroyed": volume.state == VOLUME_DESTROY, "isextractable": True,
        "displayvolume": bool(volume.display_volume) if admin else None,
    }
