"""HSM profiles: storage of details (sensitive ones sealed), scoping rules, and loading for providers."""
from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ...errors import InvalidParameterValue, PermissionDenied
from ...models import Account, DataCenter, Domain
from ...models.base import utcnow
from ...models.kms import HsmProfile, HsmProfileDetail, KekVersion, KmsKey, WrappedKey
from ...providers.base import ProfileConfig, is_sensitive_detail
from ...security.masterkey import MasterKey
from ..tenancy import SYSTEM_ACCOUNT_ID

MASK = "*****"
DEFAULT_DATABASE_PROFILE = "HSM Database Provider"


def seal_context(profile: HsmProfile, name: str) -> str:
    return f"kms_hsm_profile_details:{profile.uuid}:{name}"


def store_details(session: Session, master_key: MasterKey, profile: HsmProfile, details: dict[str, str]) -> None:
    for name, value in details.items():
        stored = master_key.seal_text(value, seal_context(profile, name)) if is_sensitive_detail(name) else value
        session.add(HsmProfileDetail(profile_id=profile.id, name=name, value=stored))


def detail_rows(session: Session, profile: HsmProfile) -> list[HsmProfileDetail]:
    return list(session.scalars(select(HsmProfileDetail).where(HsmProfileDetail.profile_id == profile.id)
                                .order_by(HsmProfileDetail.id)))


def masked_details(session: Session, profile: HsmProfile) -> dict[str, str]:
    """Details for responses: every sensitive value is the fixed mask, never plaintext or ciphertext."""
    return {d.name: MASK if is_sensitive_detail(d.name) else d.value for d in detail_rows(session, profile)}


def load_config(session: Session, master_key: MasterKey, profile: HsmProfile) -> ProfileConfig:
    """The profile as a provider needs it, sensitive details opened (in memory only)."""
    rows = detail_rows(session, profile)
    details = {row.name: (master_key.open_text(row.value, seal_context(profile, row.name))
                          if is_sensitive_detail(row.name) else row.value) for row in rows}
    # The revision changes when details or the name change, so providers drop stale connections.
    revision = hashlib.sha256(repr(sorted((r.name, r.value) for r in rows)).encode()
                              + profile.name.encode()).hexdigest()[:16]
    return ProfileConfig(id=profile.id, uuid=profile.uuid, name=profile.name, protocol=profile.protocol,
                         details=details, revision=revision)


# ------------------------------------------------------------------ scoping (spec §7.2)
def is_domain_scoped(profile: HsmProfile) -> bool:
    return profile.account_id is None and profile.domain_id is not None and not profile.is_public


def check_usable_by_caller(session: Session, caller: Account, profile: HsmProfile) -> None:
    """May the caller use (create or rotate keys with) this profile?"""
    if profile.is_public or caller.role_type == "Admin":
        return
    if is_domain_scoped(profile):
        if caller.domain_id != profile.domain_id:
            raise PermissionDenied("Access denied to HSM profile")
        return
    owner = session.get(Account, profile.account_id) if profile.account_id else None
    if owner is None or not _can_access(caller, owner):
        raise PermissionDenied(f"Account {caller.account_name} does not have permission to use HSM profile "
                               f"{profile.name}")


def check_fits_owner(profile: HsmProfile, owner: Account) -> None:
    """Does the profile's scope fit the key's owner? (Applies to root admins too.)"""
    if profile.is_public:
        return
    if is_domain_scoped(profile):
        if owner.domain_id != profile.domain_id:
            raise InvalidParameterValue(f"HSM profile '{profile.name}' is domain-scoped and can only be used by "
                                        "accounts in its domain")
        return
    if profile.account_id is not None and profile.account_id != owner.id:
        raise InvalidParameterValue(f"HSM profile '{profile.name}' is owned by another account and cannot be used "
                                    "for this key's owner")


def check_modifiable(caller: Account, profile: HsmProfile) -> None:
    if caller.role_type == "Admin":
        return
    if profile.is_public:
        raise PermissionDenied("Only root admins can modify system HSM profiles")
    if is_domain_scoped(profile):
        raise PermissionDenied("Only root admins can modify domain-scoped HSM profiles")


def _can_access(caller: Account, owner: Account) -> bool:
    if caller.role_type == "Admin":
        return True
    if caller.role_type in ("DomainAdmin", "ResourceAdmin"):
        return owner.domain.path.startswith(caller.domain.path)
    return caller.id == owner.id


# ------------------------------------------------------------------ usage
def is_default_database_profile(profile: HsmProfile) -> bool:
    """The seeded profile: protocol ``database``, owned by the system account.

    Known by its owner, not its name: ``updateHSMProfile`` may rename it, and a root admin
    may give one of their own profiles the same name.
    """
    return profile.protocol == "database" and profile.account_id == SYSTEM_ACCOUNT_ID


def key_count(session: Session, profile: HsmProfile) -> int:
    return session.scalar(select(func.count()).select_from(KmsKey).where(
        KmsKey.hsm_profile_id == profile.id, KmsKey.removed.is_(None))) or 0


def wrapped_key_count(session: Session, profile: HsmProfile) -> int:
    return session.scalar(select(func.count()).select_from(WrappedKey).join(
        KekVersion, WrappedKey.kek_version_id == KekVersion.id).where(
        KekVersion.hsm_profile_id == profile.id, WrappedKey.removed.is_(None))) or 0


def soft_delete(session: Session, profile: HsmProfile) -> None:
    for row in detail_rows(session, profile):
        session.delete(row)
    profile.removed = utcnow()


# ------------------------------------------------------------------ views
def profile_view(session: Session, profile: HsmProfile, caller: Account) -> dict[str, Any]:
    owner = session.get(Account, profile.account_id) if profile.account_id else None
    domain = session.get(Domain, profile.domain_id) if profile.domain_id else None
    zone = session.get(DataCenter, profile.zone_id) if profile.zone_id else None
    limited = profile.is_public and caller.role_type != "Admin" and (owner is None or owner.id != caller.id)
    return {
        "id": profile.uuid, "name": profile.name, "protocol": profile.protocol,
        "account": owner.account_name if owner else None, "accountid": owner.uuid if owner else None,
        "domainid": domain.uuid if domain else None, "domain": domain.name if domain else None,
        "domainpath": domain.display_path if domain else None,
        "zoneid": zone.uuid if zone else None, "zonename": zone.name if zone else None,
        "vendor": profile.vendor_name, "enabled": bool(profile.enabled), "ispublic": bool(profile.is_public),
        "created": profile.created,
        "details": None if limited else masked_details(session, profile),
    }


def seed_database_profile(session: Session, **_: Any) -> list[str]:
    """The public ``database`` profile, created once at ``db init`` (enabled, unlike upstream's
    start-up seeding which left it disabled and made every first user enable it by hand)."""
    # Found by owner, not name (it may have been renamed); removed rows count, as upstream.
    exists = session.scalar(select(HsmProfile.id).where(HsmProfile.protocol == "database",
                                                        HsmProfile.account_id == SYSTEM_ACCOUNT_ID))
    if exists:
        return []
    session.add(HsmProfile(name=DEFAULT_DATABASE_PROFILE, protocol="database", account_id=SYSTEM_ACCOUNT_ID,
                           domain_id=1, zone_id=None, vendor_name="CloudStack", enabled=True, is_public=True))
    return [f"HSM profile {DEFAULT_DATABASE_PROFILE}"]
