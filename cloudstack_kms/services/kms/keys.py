"""KMS keys: creation (KEK version 1 in the provider), updates, deletion, and their views."""
from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import bindparam, event, func, select
from sqlalchemy.orm import Session

from ...errors import CloudRuntimeError, InvalidParameterValue
from ...models import Account, DataCenter, Domain, User
from ...models.base import new_uuid, utcnow
from ...models.kms import (
    ACTIVE,
    ARCHIVED,
    PURPOSE_VOLUME,
    HsmProfile,
    KekVersion,
    KmsKey,
    WrappedKey,
)
from ...providers.base import KmsError
from ...security.masterkey import MasterKey
from ...wire import format_date
from .. import events
from . import profiles
from .runtime import KmsRuntime

log = logging.getLogger(__name__)
PURPOSE_SHORT = {PURPOSE_VOLUME: "volume"}


def kek_label(key: KmsKey, version: int) -> str:
    """Upstream's label: ``volume-kek-<domain id>-<account id>-<uuid without dashes>-v<n>``."""
    return f"{PURPOSE_SHORT.get(key.purpose, 'volume')}-kek-{key.domain_id}-{key.account_id}-" \
           f"{key.uuid.replace('-', '')}-v{version}"


def provider_failure(prefix: str, exc: KmsError) -> CloudRuntimeError:
    return CloudRuntimeError(f"{prefix}{exc.message}")


def create_key(session: Session, runtime: KmsRuntime, master_key: MasterKey, *, owner: Account, name: str,
               description: str | None, zone: DataCenter, profile: HsmProfile, key_bits: int) -> KmsKey:
    """Create the KEK (version 1) in the profile's provider, then the key rows.

    The provider call comes first so no row points at a KEK that does not exist; if the rows
    then fail, the new KEK is destroyed again.
    """
    if key_bits not in (128, 192, 256):
        raise InvalidParameterValue("Key bits must be 128, 192, or 256")
    if not profile.enabled:
        raise InvalidParameterValue(f"HSM profile is not enabled: {profile.name}")
    duplicate = session.scalar(select(KmsKey.id).where(KmsKey.account_id == owner.id, KmsKey.name == name,
                                                       KmsKey.removed.is_(None)))
    if duplicate:
        raise InvalidParameterValue(f"A KMS key with name {name} already exists in this account")
    key = KmsKey(uuid=new_uuid(), name=name, description=description, purpose=PURPOSE_VOLUME,
                 account_id=owner.id, domain_id=owner.domain_id, zone_id=zone.id, key_bits=key_bits, enabled=True,
                 hsm_profile_id=profile.id)
    label = kek_label(key, 1)
    config = profiles.load_config(session, master_key, profile)
    provider = runtime.provider(profile.protocol)
    creation = _KekCreation(runtime, session, provider, config, label, key_bits)
    if not provider.runs_inline:  # (the database provider's KEK row rolls back with the transaction)
        # However the transaction fails (here, in the response, at commit), no row will refer to the KEK.
        event.listen(session, "after_rollback", lambda _session: creation.abandon())
    try:
        label = runtime.call(session, "create KEK", creation.attempt, provider)
    except KmsError as exc:
        creation.abandon()
        raise provider_failure("Failed to create KMS key: ", exc) from None
    try:
        key.kek_label = label
        session.add(key)
        session.flush()
        session.add(KekVersion(kms_key_id=key.id, version_number=1, kek_label=label, status=ACTIVE,
                               hsm_profile_id=profile.id))
        session.flush()
    except Exception:
        creation.abandon()
        raise
    return key


class _KekCreation:
    """The KEK of one createKMSKey, however many attempts the retry wrapper makes.

    An attempt that times out is abandoned, not stopped (``providers/retry.py``): its thread may
    still make the KEK, before the next attempt or after createKMSKey has given up. The label holds
    the new key's fresh uuid, so a KEK under it can only be this call's: attempts adopt one that is
    already there (``adopt=True``; the provider checks it is a proper KEK) instead of failing with
    "key already exists"; and once the call has failed (or its transaction rolled back), the KEK is
    destroyed — now if an attempt made it, or by the late attempt itself when it finishes. What
    remains: an attempt that never returns at all (the HSM hangs for good), or a destroy that fails,
    leaves the KEK on the token (logged) for an operator.
    """

    def __init__(self, runtime: KmsRuntime, session: Session, provider, config, label: str,  # noqa: ANN001
                 key_bits: int) -> None:
        self.runtime, self.session, self.provider, self.config = runtime, session, provider, config
        self.label, self.key_bits = label, key_bits
        self._lock = threading.Lock()
        self._made = False
        self._abandoned = False

    def attempt(self) -> str:
        label = self.provider.create_kek(self.config, self.label, self.key_bits, adopt=True)
        with self._lock:
            self._made = True
            late = self._abandoned
        if late:  # the call failed while this attempt ran: nothing will ever use the KEK
            _destroy_quietly(self.runtime, self.session, self.provider, self.config, self.label)
        return label

    def abandon(self) -> None:
        with self._lock:
            if self._abandoned:
                return
            self._abandoned = True
            made = self._made
        if made:
            _destroy_quietly(self.runtime, self.session, self.provider, self.config, self.label)


def _destroy_quietly(runtime: KmsRuntime, session: Session, provider, config, label: str) -> None:  # noqa: ANN001
    try:
        provider.delete_kek(config, label)
    except Exception:  # noqa: BLE001 - the original failure matters more; the orphan is logged
        log.warning("could not remove KEK %s after a failed key creation", label)


def _active_version_statement(lock: bool):  # noqa: ANN202
    stmt = select(KekVersion).where(KekVersion.kms_key_id == bindparam("key_id"), KekVersion.status == ACTIVE,
                                    KekVersion.removed.is_(None))
    return stmt.with_for_update(read=True) if lock else stmt


#: Built once (every new DEK runs one): building a statement and its cache key costs more than running it.
_ACTIVE_VERSION = {lock: _active_version_statement(lock) for lock in (False, True)}


def active_version(session: Session, key: KmsKey, lock: bool = False) -> KekVersion:
    """The key's Active version. ``lock`` takes a shared row lock (MySQL) so that a rotation cannot
    demote the version, and the rewrap worker cannot archive it, before this transaction commits."""
    version = session.scalars(_ACTIVE_VERSION[lock], {"key_id": key.id}).first()
    if version is None:
        raise CloudRuntimeError(f"KMS key {key.uuid} has no active KEK version")
    return version


def wrapped_key_count(session: Session, key: KmsKey) -> int:
    return session.scalar(select(func.count()).select_from(WrappedKey).where(
        WrappedKey.kms_key_id == key.id, WrappedKey.removed.is_(None))) or 0


#: Callables ``(session, key) -> bool`` telling whether a volume still uses the key (issue 4 registers one).
VOLUME_USAGE_CHECKS: list = []


#: ``state`` of a key in listKMSKeys (not upstream: its final response has only ``enabled``).
ENABLED, DISABLED, PENDING_DELETION = "Enabled", "Disabled", "PendingDeletion"


def key_state(key: KmsKey) -> str:
    if key.deletion_date is not None:
        return PENDING_DELETION
    return ENABLED if key.enabled else DISABLED


def pending_deletion_error(key: KmsKey) -> InvalidParameterValue:
    """What any use of a key pending deletion gets (only listKMSKeys and cancelKMSKeyDeletion act on it)."""
    when = format_date(key.deletion_date) if key.deletion_date is not None else "unknown"
    return InvalidParameterValue(f"KMS key is pending deletion: {key.uuid} (deletion date {when}); cancel the "
                                 "deletion with cancelKMSKeyDeletion to use it again")


def note_share_locked(session: Session, key: KmsKey) -> None:
    """Record that this transaction holds ``key``'s row locked (shared at least) and found it usable,
    so wrapping with it (:func:`envelope.wrap_new_dek`) does not lock and read it again."""
    session.info[("kms.key.share_locked", key.id)] = True


def holds_share_lock(session: Session, key: KmsKey) -> bool:
    return ("kms.key.share_locked", key.id) in session.info


def lock_key(session: Session, key: KmsKey, exclusive: bool = False, allow_pending: bool = False) -> None:
    """Lock the key's row until the transaction ends (MySQL; SQLite runs one writer at a time), and
    fail if the key is gone, or (unless ``allow_pending``) pending deletion. Whatever wraps with
    the key or makes a volume that uses it holds a shared lock, :func:`delete_key` an exclusive
    one: a delete waits for those transactions and then sees what they wrote, and they wait for a
    delete and then see the key removed or pending deletion."""
    stmt = select(KmsKey.removed, KmsKey.deletion_date).where(KmsKey.id == key.id).with_for_update(read=not exclusive)
    row = session.execute(stmt).first()
    if row is None or row.removed is not None:
        raise InvalidParameterValue(f"KMS key not found: {key.uuid}")
    if row.deletion_date is not None and not allow_pending:
        raise pending_deletion_error(key)


def delete_key(session: Session, runtime: KmsRuntime, master_key: MasterKey, key: KmsKey, user: User) -> None:
    """Refuse while anything references the key; otherwise delete its KEKs, then the key.

    The key row, then its live versions, are locked before anything is counted (see
    :func:`lock_key`): wrappers hold the key row and the Active version shared until they commit
    (the volume migration only the version), so no wrapped key or volume can appear between the
    count and the KEKs' destruction. A key pending deletion is deleted too (the purge of
    ``deletion.py`` calls this once its date has passed).
    """
    versions = lock_for_deletion(session, key)
    destroy_key(session, runtime, master_key, key, versions, user)


def lock_for_deletion(session: Session, key: KmsKey) -> list[KekVersion]:
    """Lock the key and its live versions (exclusive), then refuse while wrapped keys or volumes
    reference the key (upstream's texts). Returns the versions, locked until the transaction ends."""
    lock_key(session, key, exclusive=True, allow_pending=True)
    versions = list(session.scalars(select(KekVersion).where(KekVersion.kms_key_id == key.id,
                                                             KekVersion.removed.is_(None))
                                    .order_by(KekVersion.id).with_for_update()))
    count = wrapped_key_count(session, key)
    if count:
        raise InvalidParameterValue(f"Cannot delete KMS key: {key.uuid}. {count} wrapped key(s) still reference "
                                    "this key")
    if any(check(session, key) for check in VOLUME_USAGE_CHECKS):
        raise InvalidParameterValue(f"Cannot delete KMS key: {key.uuid}. There are Volumes which still reference "
                                    "this key")
    return versions


def destroy_key(session: Session, runtime: KmsRuntime, master_key: MasterKey, key: KmsKey,
                versions: list[KekVersion], user: User) -> None:
    """Delete the KEKs of ``versions`` (locked by :func:`lock_for_deletion`) in their providers,
    then mark them and the key removed. A KEK the provider fails to delete is a WARN event, not a
    failure: the key goes all the same, as upstream."""
    owner = session.get(Account, key.account_id)
    for version in versions:
        if version.status != ARCHIVED:
            profile = session.get(HsmProfile, version.hsm_profile_id)
            try:
                config = profiles.load_config(session, master_key, profile)
                provider = runtime.provider(profile.protocol)
                label = version.kek_label
                runtime.call(session, "delete KEK", lambda p=provider, c=config, k=label: p.delete_kek(c, k), provider)
            except KmsError:
                log.warning("failed to delete KEK %s during KMS key deletion", version.kek_label)
                events.record(session, event_type="KMS.KEY.DELETE", user=user, account=owner, level=events.WARN,
                              description=f"Failed to delete KEK {version.kek_label} from provider during KMS key "
                                          "deletion", resource_id=key.id, resource_type="KmsKey")
        version.removed = utcnow()
    key.removed = utcnow()


def key_view(session: Session, key: KmsKey) -> dict[str, Any]:
    owner = session.get(Account, key.account_id)
    domain = session.get(Domain, key.domain_id)
    zone = session.get(DataCenter, key.zone_id)
    profile = session.get(HsmProfile, key.hsm_profile_id)
    version = session.scalar(select(KekVersion.version_number).where(
        KekVersion.kms_key_id == key.id, KekVersion.status == ACTIVE, KekVersion.removed.is_(None)))
    return {
        "id": key.uuid, "name": key.name, "description": key.description,
        "account": owner.account_name if owner else None, "accountid": owner.uuid if owner else None,
        "domainid": domain.uuid if domain else None, "domain": domain.name if domain else None,
        "domainpath": domain.display_path if domain else None,
        "zoneid": zone.uuid if zone else None, "zonename": zone.name if zone else None,
        "hsmprofileid": profile.uuid if profile else None, "hsmprofile": profile.name if profile else None,
        "algorithm": key.algorithm, "keybits": key.key_bits, "version": version, "enabled": bool(key.enabled),
        "state": key_state(key), "deletiondate": key.deletion_date,
        "created": key.created, "keklabel": key.kek_label, "versions": versions_view(session, key),
    }


def versions_view(session: Session, key: KmsKey) -> list[dict[str, Any]]:
    """Each version with its status, profile and how many wrapped keys it still holds."""
    counts = dict(session.execute(
        select(WrappedKey.kek_version_id, func.count()).where(WrappedKey.kms_key_id == key.id,
                                                              WrappedKey.removed.is_(None))
        .group_by(WrappedKey.kek_version_id)).all())
    out = []
    for version in session.scalars(select(KekVersion).where(KekVersion.kms_key_id == key.id)
                                   .order_by(KekVersion.version_number)):
        profile = session.get(HsmProfile, version.hsm_profile_id) if version.hsm_profile_id else None
        out.append({"id": version.uuid, "version": version.version_number, "status": version.status,
                    "hsmprofileid": profile.uuid if profile else None, "hsmprofile": profile.name if profile else None,
                    "keklabel": version.kek_label, "wrappedkeys": counts.get(version.id, 0),
                    "created": format_date(version.created)})
    return out
