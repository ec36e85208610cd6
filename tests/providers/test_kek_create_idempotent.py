"""KEK creation survives a timed-out attempt: the retry adopts the KEK the abandoned attempt made.

The retry wrapper (``providers/retry.py``) abandons an attempt that times out; its thread keeps
running and may still make the KEK. ``create_kek(..., adopt=True)`` then uses a KEK already under
the caller's own label, if it is exactly what ``create_kek`` makes (checked for real on SoftHSM2:
keys made directly on the token, proper or not). createKMSKey passes ``adopt=True`` (its label holds
the new key's fresh uuid) and removes a KEK that an attempt finishes after the call has failed.

A hung HSM cannot be caused for real: the service tests wrap the real provider so that its first
``create_kek`` returns (or starts) late, and let the live retry settings time it out.
"""
from __future__ import annotations

import threading
import time
import uuid
from contextlib import contextmanager

import pkcs11
import pytest
from sqlalchemy import select, text

from cloudstack_kms.errors import CloudRuntimeError
from cloudstack_kms.db import Database
from cloudstack_kms.models import Account, DataCenter
from cloudstack_kms.models.kms import HsmProfile, KmsKey
from cloudstack_kms.providers.base import MECH_AES_GCM, KeyAlreadyExists, WrapContext, zero
from cloudstack_kms.providers.context import ProviderContext
from cloudstack_kms.providers.pkcs11 import Pkcs11Provider, library
from cloudstack_kms.security.masterkey import MasterKey
from cloudstack_kms.services.kms import envelope, keys, profiles
from cloudstack_kms.services.kms.runtime import KmsRuntime
from tests.providers.conftest import new_label, pkcs11_profile_for
from tests.support.kmsrig import token_key_labels, wait_until
from tests.support.softhsm import MODULE

A = pkcs11.Attribute
CAPABILITIES = pkcs11.MechanismFlag.ENCRYPT | pkcs11.MechanismFlag.DECRYPT | pkcs11.MechanismFlag.WRAP \
    | pkcs11.MechanismFlag.UNWRAP
KEK_FLAGS = {A.SENSITIVE: True, A.EXTRACTABLE: False, A.TOKEN: True, A.PRIVATE: True}


def context() -> WrapContext:
    return WrapContext(wrapped_key_uuid=str(uuid.uuid4()), kms_key_uuid=str(uuid.uuid4()))


@contextmanager
def raw_session(token_label: str):
    """A read-write python-pkcs11 session of our own, under the provider's library lock. The
    provider must have logged in first (the login is per process and token)."""
    with library(MODULE).lock:
        session = pkcs11.lib(MODULE).get_token(token_label=token_label).open(rw=True)
        try:
            yield session
        finally:
            session.close()


def make_on_token(token_label: str, label: str, bits: int = 256, capabilities=CAPABILITIES,  # noqa: ANN001
                  flags: dict | None = None) -> None:
    """An AES key generated directly on the token (not through the provider); ``flags`` change the template."""
    template = {**KEK_FLAGS, **(flags or {})}
    with raw_session(token_label) as session:
        session.generate_key(pkcs11.KeyType.AES, bits, label=label, store=True, capabilities=capabilities,
                             template=template)


# ------------------------------------------------------------------ the providers
def test_pkcs11_adopts_a_proper_kek_already_under_the_label(softhsm, pkcs11_provider, hsm_token):
    profile = pkcs11_profile_for(softhsm, hsm_token)
    assert pkcs11_provider.health_check(profile)  # logs in
    label = new_label()
    make_on_token(hsm_token.label, label)

    with pytest.raises(KeyAlreadyExists):  # without adopt: the contract is unchanged
        pkcs11_provider.create_kek(profile, label, 256)
    assert pkcs11_provider.create_kek(profile, label, 256, adopt=True) == label
    assert token_key_labels(hsm_token.label).count(label) == 1

    # Usable, and really the key made on the token: it opens what the provider sealed with it.
    ctx = context()
    blob = pkcs11_provider.wrap(profile, label, b"d" * 32, ctx)
    assert pkcs11_provider.unwrap(profile, label, blob, ctx) == b"d" * 32
    with raw_session(hsm_token.label) as session:
        key = session.get_key(object_class=pkcs11.ObjectClass.SECRET_KEY, label=label)
        assert blob[5] == MECH_AES_GCM  # SoftHSM2 does GCM: header (6) | nonce (12) | ciphertext and tag
        payload = blob[6:]
        plain = key.decrypt(payload[12:], mechanism=pkcs11.Mechanism.AES_GCM,
                            mechanism_param=pkcs11.GCMParams(payload[:12], ctx.aad(), 128))
    assert plain == b"d" * 32


@pytest.mark.parametrize("made", [
    {"bits": 128},                                                      # not the size asked for
    {"flags": {A.SENSITIVE: False, A.EXTRACTABLE: True}},                # its value can be read out
    {"capabilities": pkcs11.MechanismFlag.ENCRYPT | pkcs11.MechanismFlag.DECRYPT},  # cannot wrap/unwrap
    {"imported": True},                                                 # its value is known outside the token
], ids=["wrong-size", "extractable", "no-wrap", "imported"])
def test_pkcs11_refuses_to_adopt_anything_else(softhsm, pkcs11_provider, hsm_token, made):
    profile = pkcs11_profile_for(softhsm, hsm_token)
    assert pkcs11_provider.health_check(profile)
    label = new_label()
    if made.get("imported"):
        with raw_session(hsm_token.label) as session:
            session.create_object({A.CLASS: pkcs11.ObjectClass.SECRET_KEY, A.KEY_TYPE: pkcs11.KeyType.AES,
                                   A.VALUE: bytes(32), A.LABEL: label, A.ENCRYPT: True, A.DECRYPT: True,
                                   A.WRAP: True, A.UNWRAP: True, **KEK_FLAGS})
    else:
        make_on_token(hsm_token.label, label, bits=made.get("bits", 256),
                      capabilities=made.get("capabilities", CAPABILITIES), flags=made.get("flags"))
    with pytest.raises(KeyAlreadyExists, match=f"^Key already exists: Key with label '{label}' already exists in HSM$"):
        pkcs11_provider.create_kek(profile, label, 256, adopt=True)
    assert token_key_labels(hsm_token.label).count(label) == 1  # left alone, not replaced


def test_database_provider_adopts_its_own_label(database_provider, database_profile):
    label = new_label()
    assert database_provider.create_kek(database_profile, label, 256) == label
    with pytest.raises(KeyAlreadyExists):
        database_provider.create_kek(database_profile, label, 256)
    assert database_provider.create_kek(database_profile, label, 256, adopt=True) == label
    with pytest.raises(KeyAlreadyExists):  # a different size is not the same KEK
        database_provider.create_kek(database_profile, label, 128, adopt=True)
    ctx = context()
    blob = database_provider.wrap(database_profile, label, b"e" * 32, ctx)
    assert database_provider.unwrap(database_profile, label, blob, ctx) == b"e" * 32


# ------------------------------------------------------------------ createKMSKey after a timeout
class LateCreate(Pkcs11Provider):
    """The real provider, except that its first ``create_kek`` is slow: ``after`` makes the KEK and
    then hangs (the HSM answered late), ``before`` hangs and then makes it."""

    def __init__(self, context: ProviderContext, hang: float, when: str) -> None:
        super().__init__(context)
        self.hang, self.when = hang, when
        self.labels: list[str] = []
        self.first_done = threading.Event()

    def create_kek(self, profile, label, key_bits, **kwargs):  # noqa: ANN001, ANN201
        first = not self.labels
        self.labels.append(label)
        if not first:
            return super().create_kek(profile, label, key_bits, **kwargs)
        try:
            if self.when == "before":
                time.sleep(self.hang)
            made = super().create_kek(profile, label, key_bits, **kwargs)
            if self.when == "after":
                time.sleep(self.hang)
            return made
        finally:
            self.first_done.set()


class World:
    def __init__(self, kms, softhsm, token_label: str, provider_factory) -> None:
        self.db = Database(kms.db_url)
        self.master_key = MasterKey.load(kms.data_dir / "master.key")
        self.runtime = KmsRuntime.create(ProviderContext(db=self.db, master_key=self.master_key))
        self.provider = provider_factory(self.runtime.providers.context)
        self.runtime.providers._instances["pkcs11"] = self.provider  # the wrapper serves pkcs11 profiles
        self.token = token_label
        with self.db.transaction() as s:
            profile = HsmProfile(name=f"p11-{token_label}", protocol="pkcs11", is_public=True, enabled=True)
            s.add(profile)
            s.flush()
            profiles.store_details(s, self.master_key, profile, softhsm.details(token_label))
            self.profile_id = profile.id

    def retry_settings(self, count: int, timeout_sec: int, delay_ms: int = 0) -> None:
        with self.db.engine.begin() as conn:
            for name, value in (("kms.retry.count", count), ("kms.operation.timeout.sec", timeout_sec),
                                ("kms.retry.delay.ms", delay_ms)):
                conn.execute(text("UPDATE configuration SET value = :v WHERE name = :n"), {"v": str(value), "n": name})

    def create_key(self, name: str, then_fail: bool = False) -> str:
        with self.db.transaction() as s:
            key = keys.create_key(s, self.runtime, self.master_key, owner=s.get(Account, 2), name=name,
                                  description=None, zone=s.scalars(select(DataCenter)).first(),
                                  profile=s.get(HsmProfile, self.profile_id), key_bits=256)
            if then_fail:  # what createKMSKey does after create_key (the response, the commit) fails
                raise RuntimeError("the rest of the request failed")
            return key.uuid

    def close(self) -> None:
        self.runtime.providers.close()
        self.db.dispose()


@pytest.fixture()
def late_world(env_factory, softhsm, token_factory, request):
    token = token_factory("late")
    hang, when = request.param
    world = World(env_factory("kekidem"), softhsm, token.label, lambda ctx: LateCreate(ctx, hang, when))
    yield world
    world.provider.first_done.wait(30)
    world.close()


@pytest.mark.parametrize("late_world", [(3.0, "after")], indirect=True)
def test_create_kms_key_retry_adopts_the_kek_of_the_timed_out_attempt(late_world):
    """Attempt 1 makes the KEK and answers after the 1 s timeout; attempt 2 finds it there."""
    world = late_world
    world.retry_settings(count=2, timeout_sec=1)
    key_uuid = world.create_key("late-after")  # before: "Failed to create KMS key: Key already exists: ..."

    label = world.provider.labels[0]
    assert world.provider.labels == [label, label]  # two attempts at the one label
    assert world.provider.first_done.wait(30)
    assert token_key_labels(world.token).count(label) == 1
    with world.db.transaction() as s:
        key = s.scalars(select(KmsKey).where(KmsKey.uuid == key_uuid)).one()
        assert key.kek_label == label
        new = envelope.wrap_new_dek(s, world.runtime, world.master_key, key, 256)
        dek = envelope.unwrap(s, world.runtime, world.master_key, new.wrapped_key)
        assert dek == new.plaintext
        zero(dek)
        zero(new.plaintext)


@pytest.mark.parametrize("late_world", [(2.5, "before")], indirect=True)
def test_kek_made_after_create_kms_key_gave_up_is_removed(late_world):
    """No retries: createKMSKey fails on the timeout; the attempt then makes its KEK anyway, and
    removes it, since the call that wanted it is over."""
    world = late_world
    world.retry_settings(count=0, timeout_sec=1)
    with pytest.raises(CloudRuntimeError, match=r"^Failed to create KMS key: Transient error: KMS operation "
                                                r"timed out after 1s$"):
        world.create_key("late-before")
    [label] = world.provider.labels
    assert world.provider.first_done.wait(30)
    wait_until(lambda: label not in token_key_labels(world.token), timeout=15, interval=0.5,
               what=f"the late KEK {label} to be removed")
    with world.db.transaction() as s:
        assert s.scalars(select(KmsKey).where(KmsKey.name == "late-before")).first() is None


@pytest.mark.parametrize("late_world", [(0.0, "after")], indirect=True)
def test_kek_of_a_create_kms_key_whose_transaction_fails_later_is_removed(late_world):
    """create_key succeeded, then the request's transaction rolled back: no row refers to the KEK."""
    world = late_world
    world.retry_settings(count=0, timeout_sec=30)
    with pytest.raises(RuntimeError, match="^the rest of the request failed$"):
        world.create_key("rolled-back", then_fail=True)
    [label] = world.provider.labels
    assert label not in token_key_labels(world.token)
