"""KMS tables: HSM profiles, KMS keys, their KEK versions, wrapped keys, and the database
provider's private KEK store. Layout and constraint names follow upstream 4.23.

Two tables are this server's own (not upstream), for several servers sharing the work:
``kms_rewrap_lease`` (ranges of a Previous version's wrapped keys and who rewraps them now) and
``kms_lock`` (named locks that hold across a Galera cluster, where ``GET_LOCK`` does not)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (BigInteger, Boolean, DateTime, ForeignKeyConstraint, Index, Integer, LargeBinary, String, Text,
                        UniqueConstraint)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from .base import ID, REF, Base, id_column, new_uuid, utcnow

VARBINARY_4096 = LargeBinary().with_variant(mysql.VARBINARY(4096), "mysql")
VARBINARY_512 = LargeBinary().with_variant(mysql.VARBINARY(512), "mysql")
VARBINARY_64 = LargeBinary().with_variant(mysql.VARBINARY(64), "mysql")

# kms_kek_versions.status
ACTIVE, PREVIOUS, ARCHIVED = "Active", "Previous", "Archived"
PURPOSE_VOLUME = "VOLUME_ENCRYPTION"
ALGORITHM = "AES/GCM/NoPadding"


def _uuid() -> Mapped[str]:
    return mapped_column(String(40), nullable=False, default=new_uuid)


class HsmProfile(Base):
    __tablename__ = "kms_hsm_profiles"
    __table_args__ = (
        UniqueConstraint("uuid", name="uk_uuid"),
        UniqueConstraint("account_id", "name", "removed", name="uk_account_name"),
        Index("idx_protocol_enabled", "protocol", "enabled", "removed"),
        Index("idx_scoping", "account_id", "domain_id", "zone_id", "removed"),
        ForeignKeyConstraint(["account_id"], ["account.id"], name="fk_kms_hsm_profiles__account_id",
                             ondelete="CASCADE"),
        ForeignKeyConstraint(["domain_id"], ["domain.id"], name="fk_kms_hsm_profiles__domain_id",
                             ondelete="CASCADE"),
        ForeignKeyConstraint(["zone_id"], ["data_center.id"], name="fk_kms_hsm_profiles__zone_id",
                             ondelete="CASCADE"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = _uuid()
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    protocol: Mapped[str] = mapped_column(String(32), nullable=False)
    account_id: Mapped[int | None] = mapped_column(REF)
    domain_id: Mapped[int | None] = mapped_column(REF)
    zone_id: Mapped[int | None] = mapped_column(REF)
    vendor_name: Mapped[str | None] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    is_public: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    removed: Mapped[datetime | None] = mapped_column(DateTime)


class HsmProfileDetail(Base):
    __tablename__ = "kms_hsm_profile_details"
    __table_args__ = (
        UniqueConstraint("profile_id", "name", name="uk_profile_name"),
        ForeignKeyConstraint(["profile_id"], ["kms_hsm_profiles.id"], name="fk_kms_hsm_profile_details__profile_id",
                             ondelete="CASCADE"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    profile_id: Mapped[int] = mapped_column(REF, nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    # Sealed with the master key when the name is sensitive (pin, password, *secret*, private_key).
    value: Mapped[str] = mapped_column(Text, nullable=False)


class KmsKey(Base):
    __tablename__ = "kms_keys"
    __table_args__ = (
        UniqueConstraint("uuid", name="uk_uuid"),
        Index("idx_account_purpose", "account_id", "purpose", "enabled"),
        Index("idx_domain_purpose", "domain_id", "purpose", "enabled"),
        Index("idx_zone_enabled", "zone_id", "enabled"),
        Index("idx_deletion_date", "deletion_date", "removed"),
        ForeignKeyConstraint(["account_id"], ["account.id"], name="fk_kms_keys__account_id", ondelete="CASCADE"),
        ForeignKeyConstraint(["domain_id"], ["domain.id"], name="fk_kms_keys__domain_id", ondelete="CASCADE"),
        ForeignKeyConstraint(["zone_id"], ["data_center.id"], name="fk_kms_keys__zone_id", ondelete="CASCADE"),
        ForeignKeyConstraint(["hsm_profile_id"], ["kms_hsm_profiles.id"], name="fk_kms_keys__hsm_profile_id",
                             ondelete="CASCADE"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = _uuid()
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    description: Mapped[str | None] = mapped_column(String(1024))
    kek_label: Mapped[str] = mapped_column(String(255), nullable=False)
    purpose: Mapped[str] = mapped_column(String(32), nullable=False, default=PURPOSE_VOLUME)
    account_id: Mapped[int] = mapped_column(REF, nullable=False)
    domain_id: Mapped[int] = mapped_column(REF, nullable=False)
    zone_id: Mapped[int] = mapped_column(REF, nullable=False)
    algorithm: Mapped[str] = mapped_column(String(64), nullable=False, default=ALGORITHM)
    key_bits: Mapped[int] = mapped_column(Integer, nullable=False, default=256)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    hsm_profile_id: Mapped[int] = mapped_column(REF, nullable=False)
    created: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    removed: Mapped[datetime | None] = mapped_column(DateTime)
    # Not upstream (deletion safety net, services/kms/deletion.py): set while deleteKMSKey's waiting
    # period runs, UTC, fixed when the deletion was scheduled; the key is purged once it has passed.
    # Meanwhile ``enabled`` is false (so every check of the flag refuses the key) and
    # ``enabled_before_deletion`` keeps the flag that cancelKMSKeyDeletion restores.
    deletion_date: Mapped[datetime | None] = mapped_column(DateTime)
    enabled_before_deletion: Mapped[bool | None] = mapped_column(Boolean)


class KekVersion(Base):
    __tablename__ = "kms_kek_versions"
    __table_args__ = (
        UniqueConstraint("uuid", name="uk_uuid"),
        UniqueConstraint("kms_key_id", "version_number", "removed", name="uk_kms_key_version"),
        Index("idx_kms_key_status", "kms_key_id", "status", "removed"),
        Index("idx_kek_label", "kek_label"),
        ForeignKeyConstraint(["kms_key_id"], ["kms_keys.id"], name="fk_kms_kek_versions__kms_key_id",
                             ondelete="CASCADE"),
        ForeignKeyConstraint(["hsm_profile_id"], ["kms_hsm_profiles.id"],
                             name="fk_kms_kek_versions__hsm_profile_id", ondelete="CASCADE"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = _uuid()
    kms_key_id: Mapped[int] = mapped_column(REF, nullable=False)
    version_number: Mapped[int] = mapped_column(Integer, nullable=False)
    kek_label: Mapped[str] = mapped_column(String(255), nullable=False)
    status: Mapped[str] = mapped_column(String(32), nullable=False, default=ACTIVE)
    hsm_profile_id: Mapped[int | None] = mapped_column(REF)
    created: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    removed: Mapped[datetime | None] = mapped_column(DateTime)


class WrappedKey(Base):
    __tablename__ = "kms_wrapped_key"
    __table_args__ = (
        UniqueConstraint("uuid", name="uk_uuid"),
        Index("i_kms_wrapped_key__kms_key_id__removed", "kms_key_id", "removed"),
        Index("i_kms_wrapped_key__kek_version_id__removed", "kek_version_id", "removed"),
        Index("i_kms_wrapped_key__zone_id__removed", "zone_id", "removed"),
        ForeignKeyConstraint(["kms_key_id"], ["kms_keys.id"], name="fk_kms_wrapped_key__kms_key_id",
                             ondelete="CASCADE"),
        ForeignKeyConstraint(["kek_version_id"], ["kms_kek_versions.id"],
                             name="fk_kms_wrapped_key__kek_version_id", ondelete="CASCADE"),
        ForeignKeyConstraint(["zone_id"], ["data_center.id"], name="fk_kms_wrapped_key__zone_id",
                             ondelete="CASCADE"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = _uuid()
    kms_key_id: Mapped[int | None] = mapped_column(REF)
    kek_version_id: Mapped[int | None] = mapped_column(REF)
    zone_id: Mapped[int] = mapped_column(REF, nullable=False)
    # Provider blob: format header, then the authenticated ciphertext (see providers/base.py).
    wrapped_blob: Mapped[bytes] = mapped_column(VARBINARY_4096, nullable=False)
    created: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    removed: Mapped[datetime | None] = mapped_column(DateTime)


class DatabaseKekObject(Base):
    """The database provider's KEK store (PKCS#11-like attributes, material sealed by the master key)."""

    __tablename__ = "kms_database_kek_objects"
    __table_args__ = (
        UniqueConstraint("uuid", name="uk_uuid"),
        UniqueConstraint("label", "removed", name="uk_label_removed"),
        Index("idx_purpose_removed", "purpose", "removed"),
        Index("idx_key_type_removed", "key_type", "removed"),
        Index("idx_object_class_removed", "object_class", "removed"),
        Index("idx_created", "created"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = _uuid()
    object_class: Mapped[str] = mapped_column(String(32), nullable=False, default="CKO_SECRET_KEY")
    label: Mapped[str] = mapped_column(String(255), nullable=False)
    object_id: Mapped[bytes | None] = mapped_column(VARBINARY_64)
    key_type: Mapped[str] = mapped_column(String(32), nullable=False, default="CKK_AES")
    key_material: Mapped[bytes] = mapped_column(VARBINARY_512, nullable=False)
    is_sensitive: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    is_extractable: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    is_token: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    is_private: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    is_modifiable: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    is_copyable: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    is_destroyable: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    always_sensitive: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    never_extractable: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    purpose: Mapped[str] = mapped_column(String(32), nullable=False, default=PURPOSE_VOLUME)
    key_bits: Mapped[int] = mapped_column(Integer, nullable=False)
    algorithm: Mapped[str] = mapped_column(String(64), nullable=False, default=ALGORITHM)
    start_date: Mapped[datetime | None] = mapped_column(DateTime)
    end_date: Mapped[datetime | None] = mapped_column(DateTime)
    created: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    last_used: Mapped[datetime | None] = mapped_column(DateTime)
    removed: Mapped[datetime | None] = mapped_column(DateTime)


class RewrapLease(Base):
    """One range of a Previous KEK version's wrapped keys (``first_id`` <= id <= ``last_id``) and
    the server rewrapping it now: ``owner_msid`` until ``expires_ms``, milliseconds since the epoch
    by the database's clock (one clock for every server). A free range has no owner; a range found
    empty is deleted. See ``services/kms/leases.py``."""

    __tablename__ = "kms_rewrap_lease"
    __table_args__ = (
        UniqueConstraint("kek_version_id", "first_id", name="uc_kms_rewrap_lease__kek_version_id__first_id"),
        ForeignKeyConstraint(["kek_version_id"], ["kms_kek_versions.id"],
                             name="fk_kms_rewrap_lease__kek_version_id", ondelete="CASCADE"),
    )

    id: Mapped[int] = id_column()
    kek_version_id: Mapped[int] = mapped_column(REF, nullable=False)
    first_id: Mapped[int] = mapped_column(REF, nullable=False)
    last_id: Mapped[int] = mapped_column(REF, nullable=False)
    owner_msid: Mapped[int | None] = mapped_column(BigInteger)
    expires_ms: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


class ClusterLock(Base):
    """A named lock for work that must run on one server at a time: held by ``owner`` (a token
    of one acquisition) until ``expires_ms`` (database clock), renewed while held. ``holder``
    (host and pid) is for operators only. See ``services/kms/cluster_lock.py``."""

    __tablename__ = "kms_lock"
    __table_args__ = (UniqueConstraint("name", name="uc_kms_lock__name"),)

    id: Mapped[int] = id_column()
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    owner: Mapped[int | None] = mapped_column(BigInteger)
    holder: Mapped[str | None] = mapped_column(String(255))
    expires_ms: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
