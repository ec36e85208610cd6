"""Envelope encryption through the KMS service on a real database: ``keys.create_key``, then
``envelope.wrap_new_dek`` and ``envelope.unwrap``, with the seeded database profile and a
pkcs11 profile on SoftHSM2 stored like the API stores it (``profiles.store_details``).
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Iterator

import pytest
from sqlalchemy import select, text

import cloudstack_kms.extensions  # noqa: F401 - registers the KMS seed (the database profile)
from cloudstack_kms.errors import CloudRuntimeError
from cloudstack_kms.db import Database
from cloudstack_kms.models import Account, DataCenter
from cloudstack_kms.models.kms import HsmProfile, HsmProfileDetail, KmsKey, WrappedKey
from cloudstack_kms.providers.base import is_sensitive_detail
from cloudstack_kms.providers.context import ProviderContext
from cloudstack_kms.security.masterkey import MasterKey, MasterKeyError
from cloudstack_kms.services.bootstrap import seed
from cloudstack_kms.services.kms import envelope, keys, profiles
from cloudstack_kms.services.kms.runtime import KmsRuntime

HSM_PIN = "envelope-pin-7d41c9e2"  # distinctive, so it can be searched for in the table


@dataclass
class Kms:
    db: Database
    master_key: MasterKey
    runtime: KmsRuntime
    profiles: dict[str, int]  # protocol -> HSM profile id


@pytest.fixture(scope="module")
def kms(database_factory, tmp_path_factory, softhsm, request) -> Iterator[Kms]:
    db = Database(database_factory("envelope"))
    db.create_schema()
    master_key = MasterKey.create(tmp_path_factory.mktemp("envelope-mk") / "master.key")
    with db.transaction() as session:
        seed(session)
    token = f"env-{secrets.token_hex(6)}"
    softhsm.init_token(token, pin=HSM_PIN)
    with db.transaction() as session:
        database_profile = session.scalars(select(HsmProfile).where(
            HsmProfile.name == profiles.DEFAULT_DATABASE_PROFILE)).one()
        assert database_profile.protocol == "database" and database_profile.enabled
        hsm_profile = HsmProfile(name="SoftHSM2 envelope", protocol="pkcs11", account_id=1, domain_id=1,
                                 vendor_name="SoftHSM", enabled=True, is_public=True)
        session.add(hsm_profile)
        session.flush()
        profiles.store_details(session, master_key, hsm_profile, softhsm.details(token, pin=HSM_PIN))
        ids = {"database": database_profile.id, "pkcs11": hsm_profile.id}
    runtime = KmsRuntime.create(ProviderContext(db=db, master_key=master_key))
    yield Kms(db, master_key, runtime, ids)
    runtime.providers.close()
    db.dispose()


def make_key(kms: Kms, protocol: str, name: str | None = None) -> str:
    with kms.db.transaction() as session:
        key = keys.create_key(session, kms.runtime, kms.master_key, owner=session.get(Account, 2),
                              name=name or f"key-{secrets.token_hex(4)}", description=None,
                              zone=session.scalars(select(DataCenter)).first(),
                              profile=session.get(HsmProfile, kms.profiles[protocol]), key_bits=256)
        return key.uuid


def new_dek(kms: Kms, key_uuid: str, **kwargs) -> tuple[str, bytes]:
    with kms.db.transaction() as session:
        key = session.scalars(select(KmsKey).where(KmsKey.uuid == key_uuid)).one()
        made = envelope.wrap_new_dek(session, kms.runtime, kms.master_key, key, 256, **kwargs)
        return made.wrapped_key.uuid, bytes(made.plaintext)


def unwrap(kms: Kms, wrapped_uuid: str) -> bytearray:
    with kms.db.transaction() as session:
        row = session.scalars(select(WrappedKey).where(WrappedKey.uuid == wrapped_uuid)).one()
        return envelope.unwrap(session, kms.runtime, kms.master_key, row)


PROTOCOLS = ["database", "pkcs11"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_round_trip(kms: Kms, protocol: str):
    key_uuid = make_key(kms, protocol)
    wrapped_uuid, dek = new_dek(kms, key_uuid)
    assert len(dek) == 32
    assert unwrap(kms, wrapped_uuid) == dek
    with kms.db.transaction() as session:
        row = session.scalars(select(WrappedKey).where(WrappedKey.uuid == wrapped_uuid)).one()
        assert bytes(row.wrapped_blob[:4]) == b"CKMS"
        assert dek not in bytes(row.wrapped_blob)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_round_trip_of_a_given_passphrase(kms: Kms, protocol: str):
    """Migration of legacy volumes wraps the old passphrase bytes as the DEK."""
    passphrase = b"legacy-volume-passphrase-".ljust(64, b"x")
    wrapped_uuid, dek = new_dek(kms, make_key(kms, protocol), plaintext=passphrase)
    assert dek == passphrase
    assert unwrap(kms, wrapped_uuid) == passphrase


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("same_key", [True, False], ids=["same-kms-key", "other-kms-key"])
def test_swapped_blobs_fail_and_never_give_a_wrong_key(kms: Kms, protocol: str, same_key: bool):
    first_key = make_key(kms, protocol)
    second_key = first_key if same_key else make_key(kms, protocol)
    first, first_dek = new_dek(kms, first_key)
    second, second_dek = new_dek(kms, second_key)

    with kms.db.transaction() as session:
        rows = {r.uuid: r for r in session.scalars(select(WrappedKey).where(WrappedKey.uuid.in_([first, second])))}
        rows[first].wrapped_blob, rows[second].wrapped_blob = (bytes(rows[second].wrapped_blob),
                                                               bytes(rows[first].wrapped_blob))

    for wrapped_uuid in (first, second):
        with pytest.raises(CloudRuntimeError) as info:
            unwrap(kms, wrapped_uuid)
        message = str(info.value)
        assert f"Failed to unwrap key {wrapped_uuid}" in message
        assert "Wrap/unwrap operation failed" in message
        for secret in (first_dek, second_dek):
            assert secret.hex() not in message

    # Swapped back, both open again: nothing was damaged.
    with kms.db.transaction() as session:
        rows = {r.uuid: r for r in session.scalars(select(WrappedKey).where(WrappedKey.uuid.in_([first, second])))}
        rows[first].wrapped_blob, rows[second].wrapped_blob = (bytes(rows[second].wrapped_blob),
                                                               bytes(rows[first].wrapped_blob))
    assert unwrap(kms, first) == first_dek
    assert unwrap(kms, second) == second_dek


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_tampered_blob_fails_with_the_wrapped_key_named(kms: Kms, protocol: str):
    wrapped_uuid, _ = new_dek(kms, make_key(kms, protocol))
    with kms.db.transaction() as session:
        row = session.scalars(select(WrappedKey).where(WrappedKey.uuid == wrapped_uuid)).one()
        blob = bytearray(row.wrapped_blob)
        blob[-1] ^= 0x80
        row.wrapped_blob = bytes(blob)
    with pytest.raises(CloudRuntimeError, match=f"Failed to unwrap key {wrapped_uuid}: Wrap/unwrap operation failed"):
        unwrap(kms, wrapped_uuid)


def test_pin_is_stored_sealed(kms: Kms):
    with kms.db.transaction() as session:
        profile = session.get(HsmProfile, kms.profiles["pkcs11"])
        details = {d.name: d.value for d in session.scalars(select(HsmProfileDetail).where(
            HsmProfileDetail.profile_id == profile.id))}
        assert set(details) == {"library", "token_label", "pin"}
        assert is_sensitive_detail("pin") and not is_sensitive_detail("library")
        assert details["pin"] != HSM_PIN and details["pin"].startswith(f"mk2:{kms.master_key.sealing_key_id}:")
        assert kms.master_key.open_text(details["pin"], profiles.seal_context(profile, "pin")) == HSM_PIN
        assert details["library"].endswith("libsofthsm2.so")  # not sensitive: stored as is
        # Bound to its row and name: the sealed PIN does not open as another detail or profile's.
        with pytest.raises(MasterKeyError):
            kms.master_key.open_text(details["pin"], profiles.seal_context(profile, "password"))
        assert profiles.load_config(session, kms.master_key, profile).details["pin"] == HSM_PIN
        assert profiles.masked_details(session, profile)["pin"] == profiles.MASK
        # Nowhere in the table, whatever the column.
        raw = session.execute(text("SELECT name, value FROM kms_hsm_profile_details")).all()
        assert raw and all(HSM_PIN not in str(value) for _, value in raw)
