"""Rotation: a new KEK version becomes Active; the rewrap worker moves wrapped keys to it later."""
from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ...errors import InvalidParameterValue
from ...models import Account, User
from ...models.kms import ACTIVE, PREVIOUS, HsmProfile, KekVersion, KmsKey
from ...providers.base import KeyAlreadyExists, KmsError
from ...security.masterkey import MasterKey
from .. import events
from . import profiles
from .keys import active_version, kek_label, provider_failure
from .runtime import KmsRuntime

log = logging.getLogger(__name__)


def rotate(session: Session, runtime: KmsRuntime, master_key: MasterKey, key: KmsKey, caller: Account, user: User,
           target: HsmProfile | None, key_bits: int | None) -> KekVersion:
    """Create the next KEK in the target profile, then switch versions in this transaction.

    The key row is locked first so two rotations of one key cannot pick the same number.
    If the database step fails, the new KEK is destroyed again.
    """
    session.refresh(key, with_for_update=True)
    if not key.enabled:
        raise InvalidParameterValue(f"KMS key is not enabled: {key.uuid}")
    profile = target or session.get(HsmProfile, key.hsm_profile_id)
    owner = session.get(Account, key.account_id)
    profiles.check_usable_by_caller(session, caller, profile)
    profiles.check_fits_owner(profile, owner)
    if not profile.enabled:
        raise InvalidParameterValue(f"HSM profile is not enabled: {profile.name}")
    bits = key_bits or key.key_bits
    if bits not in (128, 192, 256):
        raise InvalidParameterValue("Key bits must be 128, 192, or 256")
    old = active_version(session, key)
    number = (session.scalar(select(func.max(KekVersion.version_number)).where(KekVersion.kms_key_id == key.id))
              or 0) + 1
    config = profiles.load_config(session, master_key, profile)
    provider = runtime.provider(profile.protocol)
    label = kek_label(key, number)
    try:
        try:
            label = runtime.call(session, "create KEK", lambda: provider.create_kek(config, label, bits), provider)
        except KeyAlreadyExists:
            _remove_orphan(session, runtime, provider, config, label)
            label = runtime.call(session, "create KEK", lambda: provider.create_kek(config, label, bits), provider)
    except KmsError as exc:
        raise provider_failure("Failed to rotate KMS key: ", exc) from None
    try:
        old.status = PREVIOUS
        version = KekVersion(kms_key_id=key.id, version_number=number, kek_label=label, status=ACTIVE,
                             hsm_profile_id=profile.id)
        session.add(version)
        key.kek_label = label
        key.hsm_profile_id = profile.id
        session.flush()
    except Exception:
        try:
            provider.delete_kek(config, label)
        except Exception:  # noqa: BLE001 - report the original failure; the orphan is recorded
            log.warning("could not remove KEK %s after a failed rotation", label)
            events.record(session, event_type="KMS.KEY.ROTATE", user=user, account=owner, level=events.WARN,
                          description=f"Failed to clean up orphaned KEK {label} after a failed rotation",
                          resource_id=key.id, resource_type="KmsKey")
        raise
    events.record(session, event_type="KMS.KEY.ROTATE", user=user, account=owner,
                  description=f"Rotated KMS key: {key.name} (uuid: {key.uuid}) from version {old.version_number} "
                              f"to {number}", resource_id=key.id, resource_type="KmsKey")
    return version


def _remove_orphan(session: Session, runtime: KmsRuntime, provider, config, label: str) -> None:  # noqa: ANN001
    """A KEK already holds the new version's label: left by a rotation that created it and then
    never committed (a crash, a failed transaction). Version numbers are never reused and the
    key row is locked, so no version row can refer to it — unless one does, which is refused."""
    if session.scalar(select(KekVersion.id).where(KekVersion.kek_label == label).limit(1)) is not None:
        raise KeyAlreadyExists(f"KEK {label} already exists and is in use")
    log.warning("removing KEK %s left by an interrupted rotation", label)
    runtime.call(session, "delete KEK", lambda: provider.delete_kek(config, label), provider)
