"""The pkcs11 provider against SoftHSM2: KEK attributes, PINs, profile validation, slot
selection, a token that vanishes and comes back, threads, the session pool, invalidation.

Faults are caused for real (a wrong PIN, the token's directory moved away); nothing here
mocks python-pkcs11. The provider serialises every call into the library with one lock per
module, so raw python-pkcs11 calls made here take the same lock.
"""
from __future__ import annotations

import os
import threading
import time
import uuid
from contextlib import contextmanager

import pkcs11
import pytest

from cloudstack_kms.providers import retry
from cloudstack_kms.providers.base import (MECH_AES_GCM, MECH_AES_KWP, AuthenticationFailed, ConnectionFailed,
                                           InvalidProviderParameter, KekNotFound, KmsError, TransientError,
                                           WrapContext)
from cloudstack_kms.providers.pkcs11 import SESSION_ACQUIRE_TIMEOUT_SEC, Pkcs11Provider, library
from tests.providers.conftest import new_label, pkcs11_profile_for
from tests.support.softhsm import MODULE

#: How long the thread test hammers the provider. Shorten locally (e.g. 2.0) when iterating;
#: the committed value is 10 s.
THREAD_TEST_SECONDS = 10.0
THREADS = 8


def context() -> WrapContext:
    return WrapContext(wrapped_key_uuid=str(uuid.uuid4()), kms_key_uuid=str(uuid.uuid4()))


@contextmanager
def raw_session(token_label: str):
    """A python-pkcs11 session of our own on the token, under the provider's library lock.

    Opened without a PIN: the provider has logged in already, and a second login in the same
    process fails with UserAlreadyLoggedIn (the login state is per process and token).
    """
    lock = library(MODULE).lock
    with lock:
        session = pkcs11.lib(MODULE).get_token(token_label=token_label).open()
        try:
            yield session
        finally:
            session.close()


# ---------------------------------------------------------------- the KEK in the token
@pytest.mark.parametrize("bits", [128, 256])
def test_kek_is_sensitive_not_extractable_and_persistent(pkcs11_provider, pkcs11_profile, hsm_token, bits):
    label = new_label()
    pkcs11_provider.create_kek(pkcs11_profile, label, bits)

    attributes = pkcs11_provider.kek_attributes(pkcs11_profile, label)
    assert attributes["EXTRACTABLE"] is False
    assert attributes["SENSITIVE"] is True
    assert attributes["TOKEN"] is True
    assert attributes["NEVER_EXTRACTABLE"] is True
    assert attributes["VALUE_LEN"] == bits // 8

    # Independently, through a session the provider does not own.
    attr = pkcs11.Attribute
    with raw_session(hsm_token.label) as session:
        keys = list(session.get_objects({attr.CLASS: pkcs11.ObjectClass.SECRET_KEY, attr.LABEL: label}))
        assert len(keys) == 1
        key = keys[0]
        assert key[attr.EXTRACTABLE] is False
        assert key[attr.SENSITIVE] is True
        assert key[attr.TOKEN] is True
        assert key[attr.PRIVATE] is True
        assert key[attr.NEVER_EXTRACTABLE] is True
        assert key[attr.ALWAYS_SENSITIVE] is True
        assert key[attr.KEY_TYPE] == pkcs11.KeyType.AES
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            key[attr.VALUE]
        # The key cannot be wrapped out of the token either.
        exporter = session.generate_key(pkcs11.KeyType.AES, 256, store=False,
                                        template={attr.WRAP: True, attr.TOKEN: False})
        try:
            with pytest.raises(pkcs11.exceptions.KeyUnextractable):
                exporter.wrap_key(key, mechanism=pkcs11.Mechanism.AES_KEY_WRAP_PAD)
        finally:
            exporter.destroy()


def test_kek_survives_a_new_provider_and_login(provider_context, softhsm, hsm_token):
    """Persistent token object: another provider instance (a restarted server) finds it."""
    profile = pkcs11_profile_for(softhsm, hsm_token)
    label = new_label()
    first = Pkcs11Provider(provider_context)
    first.create_kek(profile, label, 256)
    blob = first.wrap(profile, label, b"k" * 32, ctx := context())
    first.close()
    second = Pkcs11Provider(provider_context)
    try:
        assert second.unwrap(pkcs11_profile_for(softhsm, hsm_token), label, blob, ctx) == b"k" * 32
    finally:
        second.close()


def test_probe_picks_gcm_on_softhsm(pkcs11_provider, pkcs11_profile):
    label = new_label()
    pkcs11_provider.create_kek(pkcs11_profile, label, 256)
    blob = pkcs11_provider.wrap(pkcs11_profile, label, b"d" * 32, context())
    assert blob[5] == MECH_AES_GCM


# ---------------------------------------------------------------- PINs
def test_wrong_pin_is_authentication_failed_and_not_retried(pkcs11_provider, softhsm, hsm_token):
    profile = pkcs11_profile_for(softhsm, hsm_token, pin="0000")
    with pytest.raises(AuthenticationFailed) as info:
        pkcs11_provider.kek_available(profile, "anything")
    assert info.value.message == "Incorrect PIN for HSM authentication"
    assert "0000" not in str(info.value)
    assert pkcs11_provider.health_check(profile) is False

    attempts: list[int] = []
    sleeps: list[float] = []

    def operation() -> bool:
        attempts.append(1)
        return pkcs11_provider.kek_available(profile, "anything")

    with pytest.raises(AuthenticationFailed, match="^Incorrect PIN for HSM authentication$"):
        retry.call(retry.RetryPolicy(retries=3, delay_ms=1000, timeout_sec=30), "check KEK", operation,
                   sleep=sleeps.append)
    assert len(attempts) == 1, "a wrong PIN must not be retried (it would only lock the token)"
    assert sleeps == []


def test_wrong_pin_cannot_borrow_another_profiles_login(pkcs11_provider, softhsm, hsm_token):
    """Logins are per process and token: a second profile on the same token must present the
    right PIN even though the token is already logged in."""
    good = pkcs11_profile_for(softhsm, hsm_token)
    bad = pkcs11_profile_for(softhsm, hsm_token, pin="9999")
    label = new_label()
    pkcs11_provider.create_kek(good, label, 256)
    with pytest.raises(AuthenticationFailed, match="^Incorrect PIN for HSM authentication$"):
        pkcs11_provider.kek_available(bad, label)
    with pytest.raises(AuthenticationFailed):
        pkcs11_provider.wrap(bad, label, b"x" * 32, context())
    # A second profile with the right PIN shares the login.
    twin = pkcs11_profile_for(softhsm, hsm_token)
    assert pkcs11_provider.kek_available(twin, label)
    # The first profile going away does not log the twin out.
    pkcs11_provider.invalidate(good.id)
    ctx = context()
    assert pkcs11_provider.unwrap(twin, label, pkcs11_provider.wrap(twin, label, b"y" * 32, ctx), ctx) == b"y" * 32
    # Once nobody is logged in, the bad PIN meets the token itself.
    pkcs11_provider.invalidate(twin.id)
    with pytest.raises(AuthenticationFailed, match="^Incorrect PIN for HSM authentication$"):
        pkcs11_provider.kek_available(bad, label)
    assert pkcs11_provider.kek_available(good, label)


def test_missing_pin(pkcs11_provider, softhsm, hsm_token):
    profile = pkcs11_profile_for(softhsm, hsm_token, pin=None)
    with pytest.raises(InvalidProviderParameter, match="^Invalid parameter: pin is required$"):
        pkcs11_provider.kek_available(profile, "anything")


# ---------------------------------------------------------------- profile validation
LIB = {"library": MODULE}


@pytest.mark.parametrize("details, message", [
    ({"token_label": "t", "pin": "1"}, "library is required for PKCS#11 HSM profile"),
    ({"library": "", "slot": "1"}, "library is required for PKCS#11 HSM profile"),
    ({**LIB, "pin": "1"}, "One of 'slot', 'slot_list_index', or 'token_label' is required for PKCS#11 HSM profile"),
    ({**LIB, "slot": "", "slot_list_index": "", "token_label": ""},
     "One of 'slot', 'slot_list_index', or 'token_label' is required for PKCS#11 HSM profile"),
    ({**LIB, "slot": "abc"}, "slot must be a valid integer: abc"),
    ({**LIB, "slot": "1.5"}, "slot must be a valid integer: 1.5"),
    ({**LIB, "slot_list_index": "-1"}, "slot_list_index must be a non-negative integer"),
    ({**LIB, "slot_list_index": "x"}, "slot_list_index must be a valid integer: x"),
    ({**LIB, "token_label": "t", "max_sessions": "0"}, "max_sessions must be greater than 0"),
    ({**LIB, "token_label": "t", "max_sessions": "-3"}, "max_sessions must be greater than 0"),
    ({**LIB, "token_label": "t", "max_sessions": "ten"}, "max_sessions must be a valid integer: ten"),
    ({**LIB, "token_label": "t", "wrap_mechanism": "cbc"}, "wrap_mechanism must be gcm or kwp"),
])
def test_validate_details_messages(details, message):
    with pytest.raises(InvalidProviderParameter) as info:
        Pkcs11Provider().validate_details(details)
    assert info.value.message == "Invalid parameter: " + message


@pytest.mark.parametrize("details", [
    {**LIB, "token_label": "t", "pin": "1234"},
    {**LIB, "slot": "0"},
    {**LIB, "slot": "-7"},  # slot ids are the module's business; only the index must be >= 0
    {**LIB, "slot_list_index": "0", "max_sessions": "1"},
    {**LIB, "token_label": "t", "slot": "", "max_sessions": ""},
    {**LIB, "token_label": "t", "wrap_mechanism": "KWP"},
])
def test_validate_details_accepts(details):
    Pkcs11Provider().validate_details(details)


def test_validate_details_does_not_connect(softhsm, monkeypatch):
    """Validation runs inside an API request: a library that does not exist is not loaded."""
    monkeypatch.setenv("KMS_PKCS11_LIBRARIES", "/nonexistent/libnothing.so")  # allowed: only loading could fail
    Pkcs11Provider().validate_details({"library": "/nonexistent/libnothing.so", "token_label": "t"})


# ---------------------------------------------------------------- slot selection
def _slots_of(token_label: str) -> tuple[int, int]:
    """(slot id, index among slots with a token) of a token, as the library lists them now."""
    with library(MODULE).lock:
        slots = pkcs11.lib(MODULE).get_slots(token_present=True)
        for index, slot in enumerate(slots):
            if slot.get_token().label == token_label:
                return slot.slot_id, index
    raise AssertionError(f"token {token_label} not listed")


def test_slot_and_slot_list_index_select_the_token(pkcs11_provider, softhsm, hsm_token):
    by_label = pkcs11_profile_for(softhsm, hsm_token)
    label = new_label()
    pkcs11_provider.create_kek(by_label, label, 256)  # connects: the library now lists the new token
    slot_id, index = _slots_of(hsm_token.label)

    by_slot = pkcs11_profile_for(softhsm, None, slot=str(slot_id))
    by_index = pkcs11_profile_for(softhsm, None, slot_list_index=str(index))
    ctx = context()
    blob = pkcs11_provider.wrap(by_slot, label, b"s" * 32, ctx)
    assert pkcs11_provider.unwrap(by_index, label, blob, ctx) == b"s" * 32
    assert pkcs11_provider.unwrap(by_label, label, blob, ctx) == b"s" * 32

    # A KEK made through the slot profile lands in the same token.
    other = new_label()
    pkcs11_provider.create_kek(by_index, other, 128)
    assert pkcs11_provider.kek_available(by_label, other)


def test_unknown_slot_or_index(pkcs11_provider, softhsm, hsm_token):
    pkcs11_provider.health_check(pkcs11_profile_for(softhsm, hsm_token))
    with pytest.raises(InvalidProviderParameter, match="^Invalid parameter: Invalid slot ID: 987654321$"):
        pkcs11_provider.kek_available(pkcs11_profile_for(softhsm, None, slot="987654321"), "x")
    with pytest.raises(InvalidProviderParameter, match="^Invalid parameter: Invalid slot ID"):
        pkcs11_provider.kek_available(pkcs11_profile_for(softhsm, None, slot_list_index="999"), "x")


def test_unknown_token_label(pkcs11_provider, softhsm):
    profile = pkcs11_profile_for(softhsm, None, token_label="no-such-token-" + uuid.uuid4().hex[:8])
    with pytest.raises(ConnectionFailed, match="token not found for HSM profile"):
        pkcs11_provider.kek_available(profile, "x")
    assert pkcs11_provider.health_check(profile) is False


# ---------------------------------------------------------------- the token goes away and comes back
def test_token_removed_and_restored(pkcs11_provider, pkcs11_profile, hsm_token, softhsm):
    label, untouched = new_label(), new_label()
    pkcs11_provider.create_kek(pkcs11_profile, label, 256)
    pkcs11_provider.create_kek(pkcs11_profile, untouched, 256)  # never looked up: no cached handle
    ctx = context()
    blob = pkcs11_provider.wrap(pkcs11_profile, label, b"r" * 32, ctx)
    assert pkcs11_provider.unwrap(pkcs11_profile, label, blob, ctx) == b"r" * 32

    # Move the token's own directory out of SoftHSM2's token directory (a rename inside it
    # would still be scanned as a token).
    hidden = softhsm.root / f"removed-{hsm_token.directory.name}"
    hsm_token.directory.rename(hidden)
    try:
        calls = {
            "kek_available(untouched)": lambda: pkcs11_provider.kek_available(pkcs11_profile, untouched),
            "delete_kek(untouched)": lambda: pkcs11_provider.delete_kek(pkcs11_profile, untouched),
            "unwrap": lambda: pkcs11_provider.unwrap(pkcs11_profile, label, blob, ctx),
            "wrap": lambda: pkcs11_provider.wrap(pkcs11_profile, label, b"r" * 32, ctx),
            "kek_available": lambda: pkcs11_provider.kek_available(pkcs11_profile, label),
            "create_kek": lambda: pkcs11_provider.create_kek(pkcs11_profile, new_label(), 256),
            "generate_and_wrap": lambda: pkcs11_provider.generate_and_wrap(pkcs11_profile, label, 256, ctx),
        }
        for name, call in calls.items():
            with pytest.raises(KmsError) as info:
                call()
            assert isinstance(info.value, (ConnectionFailed, KekNotFound)), (name, info.value)
        assert pkcs11_provider.health_check(pkcs11_profile) is False
        # Through the retry wrapper: retried (the device may come back), then given up.
        sleeps: list[float] = []
        with pytest.raises(ConnectionFailed):
            retry.call(retry.RetryPolicy(retries=2, delay_ms=10, timeout_sec=30), "unwrap", calls["unwrap"],
                       sleep=sleeps.append)
        assert sleeps == [0.01, 0.02]
    finally:
        hidden.rename(hsm_token.directory)

    # Same process, same provider object: it reconnects by itself. An empty search while the
    # token was gone did not count as "no such KEK", nor as "deleted".
    assert pkcs11_provider.kek_available(pkcs11_profile, untouched)
    assert pkcs11_provider.unwrap(pkcs11_profile, label, blob, ctx) == b"r" * 32
    assert pkcs11_provider.kek_available(pkcs11_profile, label)
    assert pkcs11_provider.health_check(pkcs11_profile)
    fresh = pkcs11_provider.wrap(pkcs11_profile, label, b"n" * 32, ctx)
    assert pkcs11_provider.unwrap(pkcs11_profile, label, fresh, ctx) == b"n" * 32


def test_other_profiles_survive_a_reinitialisation(pkcs11_provider, softhsm, token_factory):
    """A token that vanishes makes the provider re-initialise the shared library; profiles on
    other tokens reconnect on their next call without an error."""
    steady_token, flaky_token = token_factory(), token_factory()
    steady, flaky = pkcs11_profile_for(softhsm, steady_token), pkcs11_profile_for(softhsm, flaky_token)
    label = new_label()
    pkcs11_provider.create_kek(steady, label, 256)
    pkcs11_provider.create_kek(flaky, label, 256)
    ctx = context()
    blob = pkcs11_provider.wrap(steady, label, b"z" * 32, ctx)
    hidden = softhsm.root / f"removed-{flaky_token.directory.name}"
    flaky_token.directory.rename(hidden)
    try:
        with pytest.raises(KmsError):
            pkcs11_provider.wrap(flaky, label, b"z" * 32, ctx)
        assert pkcs11_provider.unwrap(steady, label, blob, ctx) == b"z" * 32
    finally:
        hidden.rename(flaky_token.directory)
    assert pkcs11_provider.kek_available(flaky, label)
    assert pkcs11_provider.unwrap(steady, label, blob, ctx) == b"z" * 32


def test_a_token_made_after_the_library_was_loaded_is_found(pkcs11_provider, softhsm, token_factory):
    first = pkcs11_profile_for(softhsm, token_factory())
    assert pkcs11_provider.health_check(first)
    later = pkcs11_profile_for(softhsm, token_factory())  # SoftHSM2 lists tokens as of C_Initialize
    assert pkcs11_provider.health_check(later)
    assert pkcs11_provider.health_check(first)


# ---------------------------------------------------------------- threads
def test_threads_wrap_and_unwrap_concurrently(pkcs11_provider, softhsm, token_factory):
    """python-pkcs11 releases the GIL in every call and SoftHSM2's own locking is off: without
    the provider's library lock, 2-8 threads crash the process within seconds."""
    profiles = [pkcs11_profile_for(softhsm, token_factory()),
                pkcs11_profile_for(softhsm, token_factory(), wrap_mechanism="kwp")]
    label = new_label()
    for profile in profiles:
        pkcs11_provider.create_kek(profile, label, 256)
    errors: list[BaseException] = []
    counts = [0] * THREADS
    stop = time.monotonic() + THREAD_TEST_SECONDS

    def worker(index: int) -> None:
        profile = profiles[index % len(profiles)]
        try:
            while time.monotonic() < stop:
                dek = os.urandom(32)
                ctx = context()
                blob = pkcs11_provider.wrap(profile, label, dek, ctx)
                if pkcs11_provider.unwrap(profile, label, blob, ctx) != dek:
                    raise AssertionError("unwrap returned another key")
                counts[index] += 2
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,), name=f"hsm-{i}") for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(THREAD_TEST_SECONDS + 30)
    assert not any(t.is_alive() for t in threads)
    total = sum(counts)
    print(f"\n{THREADS} threads, {THREAD_TEST_SECONDS:g} s: {total} wrap+unwrap operations "
          f"({total / THREAD_TEST_SECONDS:,.0f}/s), {len(errors)} errors")
    assert errors == [], f"{len(errors)} errors in {total} operations, first: {errors[0]!r}"
    assert total > 0 and all(counts), counts
    # Never more sessions than the pool allows.
    for profile in profiles:
        conn = pkcs11_provider._connections[profile.id]
        assert conn.in_use == 0 and len(conn.idle) <= conn.max_sessions


# ---------------------------------------------------------------- the session pool
def test_session_acquire_times_out_after_5_seconds(pkcs11_provider, softhsm, hsm_token):
    profile = pkcs11_profile_for(softhsm, hsm_token, max_sessions="1")
    label = new_label()
    pkcs11_provider.create_kek(profile, label, 256)
    conn = pkcs11_provider._connection(profile)
    with pkcs11_provider._session(conn):  # the only session, held
        started = time.monotonic()
        with pytest.raises(TransientError) as info:
            pkcs11_provider.wrap(profile, label, b"t" * 32, context())
        waited = time.monotonic() - started
    assert info.value.message == (f"Transient error: Timed out waiting for an available HSM session for profile "
                                  f"{profile.id} (max=1, timeout=5000ms)")
    assert info.value.retryable
    assert SESSION_ACQUIRE_TIMEOUT_SEC - 0.1 <= waited < SESSION_ACQUIRE_TIMEOUT_SEC + 3
    # Released: the next call gets the session at once.
    ctx = context()
    blob = pkcs11_provider.wrap(profile, label, b"t" * 32, ctx)
    assert pkcs11_provider.unwrap(profile, label, blob, ctx) == b"t" * 32


def test_waiting_caller_gets_the_released_session(pkcs11_provider, softhsm, hsm_token):
    profile = pkcs11_profile_for(softhsm, hsm_token, max_sessions="1")
    label = new_label()
    pkcs11_provider.create_kek(profile, label, 256)
    conn = pkcs11_provider._connection(profile)
    held = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with pkcs11_provider._session(conn):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    assert held.wait(10)
    threading.Timer(0.5, release.set).start()
    started = time.monotonic()
    assert pkcs11_provider.kek_available(profile, label)
    assert 0.3 < time.monotonic() - started < SESSION_ACQUIRE_TIMEOUT_SEC
    thread.join(10)


# ---------------------------------------------------------------- invalidation
def test_invalidate_then_use_again(pkcs11_provider, pkcs11_profile):
    label = new_label()
    pkcs11_provider.create_kek(pkcs11_profile, label, 256)
    ctx = context()
    blob = pkcs11_provider.wrap(pkcs11_profile, label, b"i" * 32, ctx)
    pkcs11_provider.invalidate(pkcs11_profile.id)
    assert pkcs11_profile.id not in pkcs11_provider._connections
    assert pkcs11_provider.unwrap(pkcs11_profile, label, blob, ctx) == b"i" * 32
    pkcs11_provider.invalidate(pkcs11_profile.id)
    pkcs11_provider.invalidate(pkcs11_profile.id)  # twice, and for unknown ids: no error
    pkcs11_provider.invalidate(-1)
    assert pkcs11_provider.kek_available(pkcs11_profile, label)


def test_changed_revision_reconnects(pkcs11_provider, softhsm, hsm_token):
    """A profile update (new revision) replaces the cached connection, e.g. a new max_sessions."""
    first = pkcs11_profile_for(softhsm, hsm_token)
    label = new_label()
    pkcs11_provider.create_kek(first, label, 256)
    old = pkcs11_provider._connections[first.id]
    updated = pkcs11_profile_for(softhsm, hsm_token, profile_id=first.id, revision="r2", max_sessions="2")
    assert pkcs11_provider.kek_available(updated, label)
    conn = pkcs11_provider._connections[first.id]
    assert conn is not old and conn.max_sessions == 2


def test_forced_mechanisms(pkcs11_provider, softhsm, hsm_token):
    label = new_label()
    gcm = pkcs11_profile_for(softhsm, hsm_token, wrap_mechanism="gcm")
    kwp = pkcs11_profile_for(softhsm, hsm_token, wrap_mechanism="KWP")
    pkcs11_provider.create_kek(gcm, label, 256)
    ctx = context()
    by_gcm = pkcs11_provider.wrap(gcm, label, b"m" * 32, ctx)
    by_kwp = pkcs11_provider.wrap(kwp, label, b"m" * 32, ctx)
    assert (by_gcm[5], by_kwp[5]) == (MECH_AES_GCM, MECH_AES_KWP)
    # Blobs say how they were made: either profile opens both.
    for profile in (gcm, kwp):
        for blob in (by_gcm, by_kwp):
            assert pkcs11_provider.unwrap(profile, label, blob, ctx) == b"m" * 32
