"""The provider contract of ``providers/base.py``, run against every provider for real.

One class, parametrised over the database provider (on the backend under test), the pkcs11
provider on a fresh SoftHSM2 token with AES-GCM, and the same with RFC 5649 key wrap forced
(``wrap_mechanism=kwp``). Plus a known-answer test pinning the database provider's blob layout.
"""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select

from cloudstack_kms.providers.base import (HEADER, MAGIC, MECH_AES_GCM, MECH_AES_KWP, InvalidProviderParameter,
                                           KekNotFound, KeyAlreadyExists, KmsProvider, ProfileConfig, UnwrapError,
                                           WrapContext)
from cloudstack_kms.providers.context import ProviderContext
from cloudstack_kms.providers.database import DatabaseProvider
from cloudstack_kms.models.kms import DatabaseKekObject
from tests.providers.conftest import new_label, pkcs11_profile_for

PASSPHRASE = b"correct horse battery staple; 64 bytes of ASCII passphrase! ok!!"
assert len(PASSPHRASE) == 64
PAYLOADS = {
    "16-byte": os.urandom(16),
    "24-byte": os.urandom(24),
    "32-byte": os.urandom(32),
    "64-byte-passphrase": PASSPHRASE,
}
AUTH_FAILURE = UnwrapError().message  # one message whatever made authentication fail


def new_context(**changes: str) -> WrapContext:
    fields = {"wrapped_key_uuid": str(uuid.uuid4()), "kms_key_uuid": str(uuid.uuid4()), **changes}
    return WrapContext(**fields)


@dataclass
class Subject:
    provider: KmsProvider
    profile: ProfileConfig
    mechanism: int  # the mechanism id its blobs must carry

    def kek(self, bits: int = 256) -> str:
        label = new_label()
        assert self.provider.create_kek(self.profile, label, bits) == label
        return label


@pytest.fixture(params=["database", "pkcs11-gcm", "pkcs11-kwp"])
def subject(request) -> Subject:
    if request.param == "database":
        return Subject(request.getfixturevalue("database_provider"), request.getfixturevalue("database_profile"),
                       MECH_AES_GCM)
    softhsm = request.getfixturevalue("softhsm")
    provider = request.getfixturevalue("pkcs11_provider")
    token = request.getfixturevalue("token_factory")()
    if request.param == "pkcs11-gcm":
        return Subject(provider, pkcs11_profile_for(softhsm, token), MECH_AES_GCM)
    return Subject(provider, pkcs11_profile_for(softhsm, token, wrap_mechanism="kwp"), MECH_AES_KWP)


def flip(blob: bytes, index: int) -> bytes:
    changed = bytearray(blob)
    changed[index] ^= 0x01
    return bytes(changed)


class TestProviderContract:
    # ------------------------------------------------------------ KEKs
    def test_create_kek_makes_it_available(self, subject: Subject):
        label = subject.kek()
        assert subject.provider.kek_available(subject.profile, label) is True
        assert subject.provider.kek_available(subject.profile, new_label("never-made")) is False

    @pytest.mark.parametrize("bits", [128, 192, 256])
    def test_every_valid_key_size_wraps(self, subject: Subject, bits: int):
        label = subject.kek(bits)
        context = new_context()
        blob = subject.provider.wrap(subject.profile, label, PAYLOADS["32-byte"], context)
        assert subject.provider.unwrap(subject.profile, label, blob, context) == PAYLOADS["32-byte"]

    def test_duplicate_label_is_key_already_exists(self, subject: Subject):
        label = subject.kek()
        with pytest.raises(KeyAlreadyExists) as info:
            subject.provider.create_kek(subject.profile, label, 256)
        assert info.value.message.startswith("Key already exists: ")
        assert label in info.value.message
        assert subject.provider.kek_available(subject.profile, label)

    @pytest.mark.parametrize("bits", [0, 64, 127, 255, 384, 512, -256])
    def test_bad_key_sizes_are_invalid_parameters(self, subject: Subject, bits: int):
        label = new_label()
        with pytest.raises(InvalidProviderParameter,
                           match="^Invalid parameter: Key size must be 128, 192, or 256 bits$"):
            subject.provider.create_kek(subject.profile, label, bits)
        assert not subject.provider.kek_available(subject.profile, label)
        existing = subject.kek()
        with pytest.raises(InvalidProviderParameter, match="Key size must be 128, 192, or 256 bits"):
            subject.provider.generate_and_wrap(subject.profile, existing, bits, new_context())

    def test_delete_kek(self, subject: Subject):
        label = subject.kek()
        context = new_context()
        blob = subject.provider.wrap(subject.profile, label, PAYLOADS["32-byte"], context)
        subject.provider.delete_kek(subject.profile, label)
        assert subject.provider.kek_available(subject.profile, label) is False
        with pytest.raises(KekNotFound, match="^KEK not found: "):
            subject.provider.unwrap(subject.profile, label, blob, context)
        with pytest.raises(KekNotFound):
            subject.provider.wrap(subject.profile, label, PAYLOADS["32-byte"], context)
        # Deleting what is already gone, or was never made, is not an error (deletion is retried).
        subject.provider.delete_kek(subject.profile, label)
        subject.provider.delete_kek(subject.profile, new_label("never-made"))

    def test_delete_leaves_other_keks_alone(self, subject: Subject):
        doomed, kept = subject.kek(), subject.kek()
        context = new_context()
        blob = subject.provider.wrap(subject.profile, kept, PAYLOADS["24-byte"], context)
        subject.provider.delete_kek(subject.profile, doomed)
        assert subject.provider.kek_available(subject.profile, kept)
        assert subject.provider.unwrap(subject.profile, kept, blob, context) == PAYLOADS["24-byte"]

    def test_health_check(self, subject: Subject):
        assert subject.provider.health_check(subject.profile) is True

    # ------------------------------------------------------------ wrapping
    @pytest.mark.parametrize("payload", list(PAYLOADS), ids=list(PAYLOADS))
    def test_wrap_unwrap_round_trip(self, subject: Subject, payload: str):
        label = subject.kek()
        context = new_context()
        plain = PAYLOADS[payload]
        blob = subject.provider.wrap(subject.profile, label, plain, context)
        assert isinstance(blob, bytes)
        magic, version, mechanism = HEADER.unpack_from(blob)
        assert (magic, version, mechanism) == (MAGIC, 1, subject.mechanism)
        assert plain not in blob
        opened = subject.provider.unwrap(subject.profile, label, blob, context)
        assert isinstance(opened, bytearray), "plaintext must come back in a buffer the caller can zero"
        assert opened == plain
        # The blob does not depend on anything but the KEK and context: it opens again.
        assert subject.provider.unwrap(subject.profile, label, bytes(blob), context) == plain

    def test_wrap_accepts_a_bytearray(self, subject: Subject):
        label = subject.kek()
        context = new_context()
        plain = bytearray(PAYLOADS["32-byte"])
        blob = subject.provider.wrap(subject.profile, label, plain, context)
        assert subject.provider.unwrap(subject.profile, label, blob, context) == plain

    def test_blob_randomisation(self, subject: Subject):
        """GCM blobs carry a fresh nonce each time; RFC 5649 key wrap is deterministic by design
        (no nonce to reuse), so the same DEK and context give the same blob."""
        label = subject.kek()
        context = new_context()
        first = subject.provider.wrap(subject.profile, label, PAYLOADS["32-byte"], context)
        second = subject.provider.wrap(subject.profile, label, PAYLOADS["32-byte"], context)
        if subject.mechanism == MECH_AES_GCM:
            assert first != second
            assert first[HEADER.size:HEADER.size + 12] != second[HEADER.size:HEADER.size + 12]
        else:
            assert first == second

    @pytest.mark.parametrize("bits", [128, 192, 256])
    def test_generate_and_wrap(self, subject: Subject, bits: int):
        label = subject.kek()
        context = new_context()
        dek, blob = subject.provider.generate_and_wrap(subject.profile, label, bits, context)
        assert isinstance(dek, bytearray) and len(dek) == bits // 8
        assert subject.provider.unwrap(subject.profile, label, blob, context) == dek
        other, _ = subject.provider.generate_and_wrap(subject.profile, label, bits, new_context())
        assert other != dek

    def test_rewrap_to_another_kek(self, subject: Subject):
        old, new = subject.kek(), subject.kek()
        old_context = new_context()
        new_context_ = new_context(kms_key_uuid=old_context.kms_key_uuid)
        blob = subject.provider.wrap(subject.profile, old, PAYLOADS["64-byte-passphrase"], old_context)
        moved = subject.provider.rewrap(subject.profile, old, blob, old_context,
                                        subject.profile, new, new_context_)
        assert moved != blob
        assert subject.provider.unwrap(subject.profile, new, moved, new_context_) == PAYLOADS["64-byte-passphrase"]
        # The new blob belongs to the new KEK and context only; the old one still opens as before.
        for label, context in ((old, new_context_), (new, old_context)):
            with pytest.raises(UnwrapError):
                subject.provider.unwrap(subject.profile, label, moved, context)
        assert subject.provider.unwrap(subject.profile, old, blob, old_context) == PAYLOADS["64-byte-passphrase"]

    # ------------------------------------------------------------ never a wrong key
    @pytest.mark.parametrize("field", ["wrapped_key_uuid", "kms_key_uuid", "purpose"])
    def test_wrong_context_fails(self, subject: Subject, field: str):
        label = subject.kek()
        context = new_context()
        blob = subject.provider.wrap(subject.profile, label, PAYLOADS["32-byte"], context)
        changed = {"wrapped_key_uuid": str(uuid.uuid4()), "kms_key_uuid": str(uuid.uuid4()),
                   "purpose": "SOMETHING_ELSE"}[field]
        other = WrapContext(**{**context.__dict__, field: changed})
        with pytest.raises(UnwrapError) as info:
            subject.provider.unwrap(subject.profile, label, blob, other)
        assert info.value.message == AUTH_FAILURE

    def test_blob_of_another_row_fails(self, subject: Subject):
        """Two wrapped keys of the same KMS key: each blob opens only for its own row."""
        label = subject.kek()
        kms_key = str(uuid.uuid4())
        first, second = new_context(kms_key_uuid=kms_key), new_context(kms_key_uuid=kms_key)
        blob_first = subject.provider.wrap(subject.profile, label, PAYLOADS["32-byte"], first)
        blob_second = subject.provider.wrap(subject.profile, label, PAYLOADS["16-byte"], second)
        for blob, context in ((blob_first, second), (blob_second, first)):
            with pytest.raises(UnwrapError):
                subject.provider.unwrap(subject.profile, label, blob, context)

    def test_another_kek_never_returns_bytes(self, subject: Subject):
        right, wrong = subject.kek(), subject.kek()
        for _ in range(25):
            context = new_context()
            blob = subject.provider.wrap(subject.profile, right, os.urandom(32), context)
            with pytest.raises(UnwrapError) as info:
                subject.provider.unwrap(subject.profile, wrong, blob, context)
            assert info.value.message == AUTH_FAILURE

    def test_every_flipped_byte_fails(self, subject: Subject):
        label = subject.kek()
        context = new_context()
        blob = subject.provider.wrap(subject.profile, label, PAYLOADS["32-byte"], context)
        for index in range(len(blob)):
            with pytest.raises(UnwrapError):
                subject.provider.unwrap(subject.profile, label, flip(blob, index), context)
        # ... and the token/provider is still fine afterwards.
        assert subject.provider.unwrap(subject.profile, label, blob, context) == PAYLOADS["32-byte"]

    def test_truncated_or_extended_blob_fails(self, subject: Subject):
        label = subject.kek()
        context = new_context()
        blob = subject.provider.wrap(subject.profile, label, PAYLOADS["32-byte"], context)
        for cut in (0, 3, HEADER.size, HEADER.size + 8, HEADER.size + 12, HEADER.size + 27, len(blob) - 16,
                    len(blob) - 8, len(blob) - 1):
            with pytest.raises(UnwrapError):
                subject.provider.unwrap(subject.profile, label, blob[:cut], context)
        for extra in (b"\x00", os.urandom(8)):
            with pytest.raises(UnwrapError):
                subject.provider.unwrap(subject.profile, label, blob + extra, context)

    def test_foreign_format_blobs_fail(self, subject: Subject):
        label = subject.kek()
        context = new_context()
        blob = subject.provider.wrap(subject.profile, label, PAYLOADS["32-byte"], context)
        payload = blob[HEADER.size:]
        foreign = [
            payload,                                    # upstream's layout: IV | ciphertext, no header
            b"XKMS" + blob[4:],                         # another magic
            MAGIC + bytes([2]) + blob[5:],              # a future format version
            MAGIC + bytes([1, 99]) + payload,           # an unknown mechanism
            MAGIC + bytes([1, 0]) + payload,
            os.urandom(len(blob)),
            b"\x00" * len(blob),
            b"mk1:" + os.urandom(48),                   # a master-key sealed value
        ]
        other = MECH_AES_KWP if subject.mechanism == MECH_AES_GCM else MECH_AES_GCM
        foreign.append(MAGIC + bytes([1, other]) + payload)  # the right bytes under the other mechanism
        for candidate in foreign:
            with pytest.raises(UnwrapError):
                subject.provider.unwrap(subject.profile, label, candidate, context)


# ---------------------------------------------------------------- database provider specifics
def test_database_blob_layout_known_answer(database_provider, database_profile, provider_db, master_key):
    """Pin the stored format: ``CKMS`` | 1 | 1 | 12-byte nonce | AES-GCM ciphertext | 16-byte tag,
    AAD = the context, KEK = the row's material sealed by the master key."""
    label = new_label("kat")
    database_provider.create_kek(database_profile, label, 256)
    context = WrapContext(wrapped_key_uuid="11111111-2222-3333-4444-555555555555",
                          kms_key_uuid="66666666-7777-8888-9999-000000000000")
    assert context.aad() == (b"cloudstack-kms/v1|VOLUME_ENCRYPTION|66666666-7777-8888-9999-000000000000|"
                             b"11111111-2222-3333-4444-555555555555")
    plain = PAYLOADS["32-byte"]
    blob = database_provider.wrap(database_profile, label, plain, context)

    assert blob[:4] == b"CKMS"
    assert blob[4] == 1  # format version
    assert blob[5] == 1  # AES-GCM
    nonce, sealed = blob[6:18], blob[18:]
    assert len(blob) == 4 + 1 + 1 + 12 + len(plain) + 16

    with provider_db.transaction() as session:
        row = session.scalars(select(DatabaseKekObject).where(DatabaseKekObject.label == label)).one()
        sealed_material = row.key_material.decode("ascii")
        assert row.key_bits == 256 and row.is_sensitive and not row.is_extractable
    assert sealed_material.startswith(f"mk2:{master_key.sealing_key_id}:")
    material = master_key.open(sealed_material, f"kms_database_kek_objects:{label}")
    assert len(material) == 32
    assert AESGCM(material).decrypt(nonce, sealed, context.aad()) == plain

    # The other way round: a blob built by hand in that layout opens through the provider.
    nonce = os.urandom(12)
    handmade = b"CKMS\x01\x01" + nonce + AESGCM(material).encrypt(nonce, PASSPHRASE, context.aad())
    assert database_provider.unwrap(database_profile, label, handmade, context) == PASSPHRASE
    # Upstream's empty AAD is not accepted.
    empty_aad = b"CKMS\x01\x01" + nonce + AESGCM(material).encrypt(nonce, PASSPHRASE, None)
    with pytest.raises(UnwrapError):
        database_provider.unwrap(database_profile, label, empty_aad, context)


def test_database_kek_material_is_sealed_per_label(database_provider, database_profile, provider_db):
    """A KEK row's material copied to another label does not open (the seal names the label)."""
    first, second = new_label(), new_label()
    database_provider.create_kek(database_profile, first, 256)
    database_provider.create_kek(database_profile, second, 256)
    with provider_db.transaction() as session:
        rows = {r.label: r for r in session.scalars(select(DatabaseKekObject).where(
            DatabaseKekObject.label.in_([first, second])))}
        rows[second].key_material = rows[first].key_material
    fresh = DatabaseProvider(ProviderContext(db=database_provider.db, master_key=database_provider.master_key))
    with pytest.raises(KekNotFound, match="does not open with this server's master key"):
        fresh.wrap(database_profile, second, PAYLOADS["32-byte"], new_context())


def test_database_kek_joins_the_callers_transaction(database_provider, database_profile, provider_db):
    """Inside a server transaction the KEK row commits or rolls back with the caller's rows."""
    label = new_label("tx")

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with provider_db.transaction():
            database_provider.create_kek(database_profile, label, 256)
            assert database_provider.kek_available(database_profile, label)
            raise Boom
    assert not database_provider.kek_available(database_profile, label)
    with provider_db.transaction():
        database_provider.create_kek(database_profile, label, 256)
    assert database_provider.kek_available(database_profile, label)
