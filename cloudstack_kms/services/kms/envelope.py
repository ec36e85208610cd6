"""Envelope encryption: new DEKs wrapped by a key's Active KEK version, and unwrapping.

Unwrap uses exactly the version recorded on the wrapped key — never a trial of other
versions, which with unauthenticated modes can return a wrong key. Plaintext DEKs are
returned as ``bytearray`` for the caller to zero once used.

Within one transaction, what every call would otherwise read again — a
profile's opened details, the key's locked Active version — is read once and kept in the
session (``Session.info``, gone with the transaction's session): bulk callers (a job making
many DEKs, a check of many volumes) then pay one provider call per key and no extra queries.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from ...db import cache_of
from ...errors import CloudRuntimeError, InvalidParameterValue
from ...models.base import new_uuid
from ...models.kms import ACTIVE, ARCHIVED, HsmProfile, HsmProfileDetail, KekVersion, KmsKey, WrappedKey
from ...providers.base import KekNotFound, KmsError, ProfileConfig, WrapContext
from ...security.masterkey import MasterKey
from . import profiles
from .keys import active_version, holds_share_lock, lock_key, note_share_locked, pending_deletion_error
from .runtime import KmsRuntime

@dataclass
class NewDek:
    wrapped_key: WrappedKey
    plaintext: bytearray


def context_for(key: KmsKey, wrapped_key_uuid: str) -> WrapContext:
    return WrapContext(wrapped_key_uuid=wrapped_key_uuid, kms_key_uuid=key.uuid, purpose=key.purpose)


def _profile(session: Session, version: KekVersion, wrapped_key_uuid: str) -> HsmProfile:
    profile = session.get(HsmProfile, version.hsm_profile_id)
    if profile is None or profile.removed is not None or not profile.enabled:
        raise CloudRuntimeError("KMS provider not initialized: HSM profile is not enabled for wrapped key: "
                                f"{wrapped_key_uuid}")
    return profile


def _memo(session: Session, name: tuple, make):  # noqa: ANN001, ANN202
    value = session.info.get(name)
    if value is None:
        value = session.info[name] = make()
    return value


def _config(session: Session, master_key: MasterKey, profile: HsmProfile) -> ProfileConfig:
    return _memo(session, ("kms.envelope.config", profile.id),
                 lambda: profiles.load_config(session, master_key, profile))


#: An enabled profile's opened configuration is kept this long per process: every wrap and unwrap
#: needs it, and reading it costs two queries and the opening of its sealed details. A profile
#: disabled, removed or changed through another server is honoured within this time (through this
#: process: at once, see ``Database.watch``).
PROFILE_CONFIG_TTL_SEC = 1.0


def _usable_config(session: Session, master_key: MasterKey, version: KekVersion, wrapped_key_uuid: str) -> ProfileConfig:
    """The configuration of the version's profile, which must be enabled. From the process's cache
    when it has it; otherwise (or when the cache saw no usable profile: it may be this very
    transaction's) read in this transaction."""
    def read() -> ProfileConfig:
        return _config(session, master_key, _profile(session, version, wrapped_key_uuid))

    db = session.info.get("database")
    cache = cache_of(session, "kms.profile.config", PROFILE_CONFIG_TTL_SEC, (HsmProfile, HsmProfileDetail),
                     max_entries=256)
    if cache is None:
        return read()
    cached = cache.get_or_load(version.hsm_profile_id, lambda: _load_usable_config(db, master_key,
                                                                                   version.hsm_profile_id))
    return cached if cached is not None else read()


def _load_usable_config(db, master_key: MasterKey, profile_id: int) -> ProfileConfig | None:  # noqa: ANN001
    """The committed profile's configuration, read in a short read-only transaction of its own;
    None if it is not usable there."""
    with db.transaction(readonly=True) as s:
        profile = s.get(HsmProfile, profile_id)
        if profile is None or profile.removed is not None or not profile.enabled:
            return None
        return profiles.load_config(s, master_key, profile)


def _active_slot(key: KmsKey) -> tuple[str, int]:
    """Where this transaction keeps ``key``'s Active version once it holds it locked."""
    return ("kms.envelope.active", key.id)


def note_active_version_locked(session: Session, key: KmsKey, version: KekVersion) -> None:
    """The caller read ``key``'s Active version with a shared lock in this transaction (together
    with the key, in one statement): wrapping with the key uses it without reading it again."""
    session.info[_active_slot(key)] = version


def _active_version(session: Session, key: KmsKey) -> KekVersion:
    """The Active version, locked (shared) on first use in this transaction; the lock keeps it Active
    until commit, so later calls reuse it (unless this very transaction changed it)."""
    name = _active_slot(key)
    version = session.info.get(name)
    if version is None or version.status != ACTIVE or version.removed is not None:
        version = session.info[name] = active_version(session, key, lock=True)
    return version


def wrap_new_dek(session: Session, runtime: KmsRuntime, master_key: MasterKey, key: KmsKey, key_bits: int,
                 plaintext: bytes | None = None) -> NewDek:
    """Generate a DEK (or take ``plaintext``, for migrations) and store it wrapped by the Active version."""
    if key.deletion_date is not None:  # (also disabled meanwhile; this names the reason)
        raise pending_deletion_error(key)
    if not key.enabled:
        raise InvalidParameterValue(f"Invalid parameter: KMS key is not enabled: {key.uuid}")
    # The key row first (shared, once per transaction), then its Active version: deleteKMSKey locks
    # them in the same order, so it waits for this transaction to commit and then counts this wrapped
    # key, or this waits for the delete and then finds the key removed (or pending deletion).
    if not holds_share_lock(session, key):
        lock_key(session, key)
        note_share_locked(session, key)
    version = _active_version(session, key)
    wrapped_uuid = new_uuid()
    config = _usable_config(session, master_key, version, wrapped_uuid)
    provider = runtime.provider(config.protocol)
    context = context_for(key, wrapped_uuid)
    try:
        if plaintext is None:
            dek, blob = runtime.call(session, "generate DEK",
                              lambda: provider.generate_and_wrap(config, version.kek_label, key_bits, context),
                              provider, hot=True)
        else:
            dek = bytearray(plaintext)
            blob = runtime.call(session, "wrap", lambda: provider.wrap(config, version.kek_label, plaintext, context),
                         provider, hot=True)
    except KmsError as exc:
        raise CloudRuntimeError(f"Failed to wrap key: {exc.message}") from None
    row = WrappedKey(uuid=wrapped_uuid, kms_key_id=key.id, kek_version_id=version.id, zone_id=key.zone_id,
                     wrapped_blob=blob)
    session.add(row)
    session.flush()
    return NewDek(row, dek)


def unwrap(session: Session, runtime: KmsRuntime, master_key: MasterKey, wrapped: WrappedKey) -> bytearray:
    """The DEK of a wrapped key, using the KEK version recorded on it.

    If that version's KEK is gone (the version was Archived, or the provider no longer has the
    KEK) the row is read again once: the rewrap worker may have moved it to a newer version and
    archived the old one after this transaction first read it. The blob is then opened with the
    version now recorded on the row, never with a guessed one.
    """
    try:
        return _unwrap_recorded(session, runtime, master_key, wrapped)
    except _KekGone as gone:
        recorded = wrapped.kek_version_id
        session.refresh(wrapped)
        if wrapped.kek_version_id == recorded:
            raise gone.error from None
        try:
            return _unwrap_recorded(session, runtime, master_key, wrapped)
        except _KekGone as again:
            raise again.error from None


class _KekGone(Exception):
    """The recorded version cannot be used any more (Archived, or its KEK is missing)."""

    def __init__(self, error: CloudRuntimeError) -> None:
        super().__init__(error.text)
        self.error = error


def _unwrap_recorded(session: Session, runtime: KmsRuntime, master_key: MasterKey, wrapped: WrappedKey) -> bytearray:
    key = session.get(KmsKey, wrapped.kms_key_id)
    version = session.get(KekVersion, wrapped.kek_version_id)
    if key is None or version is None or version.status == ARCHIVED:
        error = CloudRuntimeError(f"Wrap/unwrap operation failed: Failed to unwrap key: no available KEK version "
                                  f"for wrapped key {wrapped.uuid}")
        if key is not None and version is not None:
            raise _KekGone(error)
        raise error
    if key.deletion_date is not None:  # cannot hold wrapped keys (deleteKMSKey refuses then); never used meanwhile
        raise pending_deletion_error(key)
    config = _usable_config(session, master_key, version, wrapped.uuid)
    provider = runtime.provider(config.protocol)
    context = context_for(key, wrapped.uuid)
    try:
        return runtime.call(session, "unwrap",
                     lambda: provider.unwrap(config, version.kek_label, bytes(wrapped.wrapped_blob), context), provider,
                     hot=True)
    except KekNotFound as exc:
        raise _KekGone(CloudRuntimeError(f"Failed to unwrap key {wrapped.uuid}: {exc.message}")) from None
    except KmsError as exc:
        raise CloudRuntimeError(f"Failed to unwrap key {wrapped.uuid}: {exc.message}") from None
