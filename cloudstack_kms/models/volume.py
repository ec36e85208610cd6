"""Volumes on primary storage, their disk offerings, the storage pools, and legacy passphrases."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKeyConstraint, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import ID, REF, TINYBOOL, Base, new_uuid, utcnow

VOLUME_ALLOCATED, VOLUME_CREATING, VOLUME_READY, VOLUME_EXPUNGED = "Allocated", "Creating", "Ready", "Expunged"
#: Destroyed but recoverable (destroyVolume without expunge; recoverVolume brings it back).
VOLUME_DESTROY = "Destroy"
ENCRYPT_LUKS = "LUKS"


class Passphrase(Base):
    """A legacy volume secret (since 4.18): 48 random bytes as Base64 text, sealed with the master key."""

    __tablename__ = "passphrase"

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    passphrase: Mapped[str | None] = mapped_column(String(255))


class DiskOffering(Base):
    __tablename__ = "disk_offering"
    __table_args__ = (
        UniqueConstraint("uuid", name="uc_disk_offering__uuid"),
        Index("i_disk_offering__removed", "removed"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    uuid: Mapped[str | None] = mapped_column(String(40), default=new_uuid)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    display_text: Mapped[str | None] = mapped_column(String(4096))
    disk_size: Mapped[int] = mapped_column(REF, nullable=False, default=0)  # bytes
    tags: Mapped[str | None] = mapped_column(String(4096))
    customized: Mapped[bool] = mapped_column(TINYBOOL, nullable=False, default=False)
    use_local_storage: Mapped[bool] = mapped_column(TINYBOOL, nullable=False, default=False)
    provisioning_type: Mapped[str] = mapped_column(String(32), nullable=False, default="thin")
    state: Mapped[str] = mapped_column(String(40), nullable=False, default="Active")
    display_offering: Mapped[bool] = mapped_column(TINYBOOL, nullable=False, default=True)
    encrypt: Mapped[bool | None] = mapped_column(TINYBOOL, default=False)
    # The hypervisor's write cache for the disk: none, writeback or writethrough (since 4.14).
    cache_mode: Mapped[str | None] = mapped_column(String(18), default="none")
    # True: disks of this offering may not be resized (since 4.16).
    disk_size_strictness: Mapped[bool] = mapped_column(TINYBOOL, nullable=False, default=False)
    created: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow)
    removed: Mapped[datetime | None] = mapped_column(DateTime)


class DiskOfferingDetail(Base):
    """Key/value details of a disk offering. As upstream, the zones and domains an offering is
    limited to are details named ``zoneid`` and ``domainid`` holding internal ids, here one row per
    id (no such row: every zone, or a public offering)."""

    __tablename__ = "disk_offering_details"
    __table_args__ = (
        Index("i_disk_offering_details__offering_id", "offering_id"),
        ForeignKeyConstraint(["offering_id"], ["disk_offering.id"], name="fk_disk_offering_details__offering_id",
                             ondelete="CASCADE"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    offering_id: Mapped[int] = mapped_column(REF, nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    value: Mapped[str] = mapped_column(String(4096), nullable=False)
    display: Mapped[bool] = mapped_column(TINYBOOL, nullable=False, default=True)


class StoragePool(Base):
    """A directory-backed primary storage (one per zone is enough here)."""

    __tablename__ = "storage_pool"
    __table_args__ = (
        UniqueConstraint("uuid", name="uc_storage_pool__uuid"),
        Index("i_storage_pool__data_center_id", "data_center_id"),
        ForeignKeyConstraint(["data_center_id"], ["data_center.id"], name="fk_storage_pool__data_center_id"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    name: Mapped[str | None] = mapped_column(String(255))
    uuid: Mapped[str | None] = mapped_column(String(255), default=new_uuid)
    pool_type: Mapped[str] = mapped_column(String(32), nullable=False, default="Filesystem")
    port: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    data_center_id: Mapped[int] = mapped_column(REF, nullable=False)
    used_bytes: Mapped[int | None] = mapped_column(REF)
    capacity_bytes: Mapped[int | None] = mapped_column(REF)
    host_address: Mapped[str] = mapped_column(String(255), nullable=False, default="localhost")
    path: Mapped[str] = mapped_column(String(255), nullable=False)
    status: Mapped[str | None] = mapped_column(String(32), default="Up")
    scope: Mapped[str | None] = mapped_column(String(255), default="ZONE")
    storage_provider_name: Mapped[str] = mapped_column(String(255), nullable=False, default="DefaultPrimary")
    created: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow)
    removed: Mapped[datetime | None] = mapped_column(DateTime)


class Volume(Base):
    __tablename__ = "volumes"
    __table_args__ = (
        UniqueConstraint("uuid", name="uc_volumes__uuid"),
        Index("i_volumes__account_id", "account_id"),
        Index("i_volumes__data_center_id", "data_center_id"),
        Index("i_volumes__pool_id", "pool_id"),
        Index("i_volumes__removed", "removed"),
        Index("i_volumes__state", "state"),
        Index("i_volumes__kms_key_id", "kms_key_id"),
        Index("i_volumes__kms_wrapped_key_id", "kms_wrapped_key_id"),
        Index("i_volumes__passphrase_id", "passphrase_id"),
        ForeignKeyConstraint(["account_id"], ["account.id"], name="fk_volumes__account_id"),
        ForeignKeyConstraint(["pool_id"], ["storage_pool.id"], name="fk_volumes__pool_id"),
        ForeignKeyConstraint(["passphrase_id"], ["passphrase.id"], name="fk_passphrase_id"),
        ForeignKeyConstraint(["kms_key_id"], ["kms_keys.id"], name="fk_volumes__kms_key_id"),
        ForeignKeyConstraint(["kms_wrapped_key_id"], ["kms_wrapped_key.id"], name="fk_volumes__kms_wrapped_key_id"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    uuid: Mapped[str | None] = mapped_column(String(40), default=new_uuid)
    name: Mapped[str | None] = mapped_column(String(255))
    account_id: Mapped[int] = mapped_column(REF, nullable=False)
    domain_id: Mapped[int] = mapped_column(REF, nullable=False)
    pool_id: Mapped[int | None] = mapped_column(REF)
    size: Mapped[int] = mapped_column(REF, nullable=False)  # bytes
    path: Mapped[str | None] = mapped_column(String(255))
    data_center_id: Mapped[int] = mapped_column(REF, nullable=False)
    volume_type: Mapped[str] = mapped_column(String(64), nullable=False, default="DATADISK")
    disk_offering_id: Mapped[int] = mapped_column(REF, nullable=False)
    format: Mapped[str | None] = mapped_column(String(255))
    state: Mapped[str | None] = mapped_column(String(32))
    provisioning_type: Mapped[str] = mapped_column(String(32), nullable=False, default="thin")
    display_volume: Mapped[bool] = mapped_column(TINYBOOL, nullable=False, default=True)
    passphrase_id: Mapped[int | None] = mapped_column(REF)
    encrypt_format: Mapped[str | None] = mapped_column(String(64))
    kms_key_id: Mapped[int | None] = mapped_column(REF)
    kms_wrapped_key_id: Mapped[int | None] = mapped_column(REF)
    # qemu-img check output of the last checkVolume, as JSON text.
    check_result: Mapped[str | None] = mapped_column(String(4096))
    created: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow)
    updated: Mapped[datetime | None] = mapped_column(DateTime)
    removed: Mapped[datetime | None] = mapped_column(DateTime)
