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

import base64
import json
import os
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..api.errors import CloudRuntimeError, InvalidParameterValue, PermissionDenied
from ..models import Account, DataCenter, Domain
from ..models.base import utcnow
from ..models.kms import HsmProfile, KekVersion, KmsKey, WrappedKey
from ..models.volume import (ENCRYPT_LUKS, VOLUME_ALLOCATED, VOLUME_EXPUNGED, VOLUME_READY, DiskOffering, Passphrase,
                             StoragePool, Volume)
from ..providers.base import zero
from ..security.masterkey import MasterKey
from ..storage import pools, qemu
from . import settings
from .kms import envelope
from .kms.runtime import KmsRuntime

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
    if not key.enabled:
        raise InvalidParameterValue(f"KMS key is not enabled and cannot be used for volume encryption: {key.uuid}")


def volume_size(offering: DiskOffering, size_gb: int | None) -> int:
    if offering.customized:
        if not size_gb or size_gb <= 0:
            raise InvalidParameterValue("Disk offering is customized, so a size (in GB) must be specified")
        return size_gb * GIB
    if size_gb is not None and offering.disk_size and size_gb * GIB != offering.disk_size:
        raise InvalidParameterValue("Disk size can't be specified with a disk offering of fixed size")
    return offering.disk_size


def allocate(session: Session, *, owner: Account, zone: DataCenter, offering: DiskOffering, size_gb: int | None,
             name: str | None, key: KmsKey | None) -> Volume:
    """The create phase: validate and insert the row (state Allocated). Nothing else is written."""
    if offering.state != "Active" or offering.removed is not None:
        raise InvalidParameterValue(f"Disk offering {offering.uuid} is not active")
    if key is not None:
        if not offering.encrypt:
            raise InvalidParameterValue("A KMS key can only be used with a disk offering that has encryption "
                                        "enabled")
        check_kms_key(session, key, owner, zone)
    volume = Volume(name=name, account_id=owner.id, domain_id=owner.domain_id, size=volume_size(offering, size_gb),
                    data_center_id=zone.id, disk_offering_id=offering.id, state=VOLUME_ALLOCATED,
                    provisioning_type=offering.provisioning_type, format="QCOW2",
                    kms_key_id=key.id if key is not None else None,
                    encrypt_format=ENCRYPT_LUKS if offering.encrypt else None)
    session.add(volume)
    session.flush()
    if not volume.name:
        volume.name = f"vol-{volume.uuid[:8]}"
    return volume


def new_passphrase(session: Session, master_key: MasterKey) -> tuple[Passphrase, bytearray]:
    secret = bytearray(base64.b64encode(os.urandom(PASSPHRASE_BYTES)))
    row = Passphrase()
    session.add(row)
    session.flush()
    row.passphrase = master_key.seal(bytes(secret), f"passphrase:{row.id}")
    return row, secret


def open_passphrase(master_key: MasterKey, row: Passphrase) -> bytearray:
    return bytearray(master_key.open(row.passphrase or "", f"passphrase:{row.id}"))


def provision(session: Session, runtime: KmsRuntime, master_key: MasterKey, volume: Volume) -> None:
    """The job phase: make the volume's secret and, unless metadata-only, its LUKS image."""
    secret: bytearray | None = None
    dek: bytearray | None = None
    try:
        if volume.kms_key_id is not None:
            key = session.get(KmsKey, volume.kms_key_id)
            if key is None or key.removed is not None:
                raise InvalidParameterValue(f"KMS key not found: {volume.kms_key_id}")
            bits = settings.get_value(session, "kms.dek.size.bits")
            new = envelope.wrap_new_dek(session, runtime, master_key, key, bits)
            dek = new.plaintext
            volume.kms_wrapped_key_id = new.wrapped_key.id
            secret = luks_secret(dek)
        elif volume.encrypt_format:
            row, secret = new_passphrase(session, master_key)
            volume.passphrase_id = row.id
        zone = session.get(DataCenter, volume.data_center_id)
        pool = pools.pool_for_zone(session, zone)
        volume.pool_id = pool.id
        if settings.get_value(session, "storage.volume.images"):
            path = pools.image_path(pool, volume.uuid)
            try:
                qemu.create(str(path), volume.size, secret,
                            settings.get_value(session, "storage.luks.iter.time.ms"))
            except qemu.QemuError as exc:
                _remove_image(path)
                raise CloudRuntimeError(f"Failed to create volume image: {exc.message}") from None
            volume.path = path.name
        volume.state = VOLUME_READY
        volume.updated = utcnow()
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
    return bytearray(base64.b64encode(bytes(dek)))


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


def delete(session: Session, volume: Volume) -> None:
    """Expunge: the image, the volume's wrapped key (unless shared) and its passphrase go too."""
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
        _remove_image(path)


def volume_usage_check(session: Session, key: KmsKey) -> bool:
    return bool(session.scalar(select(Volume.id).where(Volume.kms_key_id == key.id, Volume.removed.is_(None))
                               .limit(1)))


# ------------------------------------------------------------------ view
def volume_view(session: Session, volume: Volume, admin: bool) -> dict[str, Any]:
    owner = session.get(Account, volume.account_id)
    domain = session.get(Domain, volume.domain_id)
    zone = session.get(DataCenter, volume.data_center_id)
    offering = session.get(DiskOffering, volume.disk_offering_id)
    pool = session.get(StoragePool, volume.pool_id) if volume.pool_id else None
    key = session.get(KmsKey, volume.kms_key_id) if volume.kms_key_id else None
    version = None
    if volume.kms_wrapped_key_id:
        version = session.scalar(select(KekVersion.version_number).join(
            WrappedKey, WrappedKey.kek_version_id == KekVersion.id).where(WrappedKey.id == volume.kms_wrapped_key_id))
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
        "destroyed": False, "isextractable": True, "displayvolume": bool(volume.display_volume) if admin else None,
    }
