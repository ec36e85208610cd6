"""The inline mode with a deadline: hot data operations run in the caller's thread, the
``kms.operation.timeout.sec`` setting still honoured (``providers/retry.py``, ``Mode.DEADLINE``).

Real SoftHSM2 throughout. A hung module cannot be produced on demand; as in ``test_retry.py``
the stand-in is real: another thread holds the library lock (what a call stuck inside the
module does), or the only pooled session. Each timeout here is 0.3 s, or the setting's
smallest value (1 s) where the test goes through the live settings.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid

import pytest

from cloudstack_kms.models.configuration import Configuration
from cloudstack_kms.providers import retry
from cloudstack_kms.providers.base import (ConnectionFailed, KekNotFound, KmsProvider, TransientError, UnwrapError,
                                           WrapContext)
from cloudstack_kms.providers.pkcs11 import SESSION_ACQUIRE_TIMEOUT_SEC, library
from cloudstack_kms.services.kms.runtime import KmsRuntime
from tests.providers.conftest import new_label, pkcs11_profile_for
from tests.support.softhsm import MODULE

DEADLINE = retry.Mode.DEADLINE


def policy(retries: int = 0, delay_ms: int = 10, timeout_sec: float = 0.3,
           mode: retry.Mode = DEADLINE) -> retry.RetryPolicy:
    return retry.RetryPolicy(retries=retries, delay_ms=delay_ms, timeout_sec=timeout_sec, mode=mode)


def context() -> WrapContext:
    return WrapContext(wrapped_key_uuid=str(uuid.uuid4()), kms_key_uuid=str(uuid.uuid4()))


class HeldLock:
    """Another thread holds the PKCS#11 library lock, as a call hung inside the module would."""

    def __enter__(self) -> "HeldLock":
        self.holding, self.release = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._hold)
        self.thread.start()
        assert self.holding.wait(10)
        return self

    def _hold(self) -> None:
        with library(MODULE).lock:
            self.holding.set()
            self.release.wait(10)

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.thread.join(10)


@pytest.fixture()
def kek(pkcs11_provider, pkcs11_profile) -> str:
    label = new_label()
    pkcs11_provider.create_kek(pkcs11_profile, label, 256)
    return label


@pytest.fixture()
def runtime(provider_db, provider_context) -> KmsRuntime:
    """A runtime reading the live settings: no retries, the smallest timeout the setting takes."""
    with provider_db.transaction() as s:
        for name, value in (("kms.retry.count", "0"), ("kms.operation.timeout.sec", "1"),
                            ("kms.retry.delay.ms", "0")):
            s.merge(Configuration(name=name, value=value))
    return KmsRuntime.create(provider_context)


# ---------------------------------------------------------------- the timeout is honoured
def test_service_call_stuck_behind_the_library_lock_times_out_at_the_setting(provider_db, runtime, pkcs11_provider,
                                                                              pkcs11_profile, kek):
    """The service path (runtime.call, hot): the 1 s setting, not the provider's 5 s session wait."""
    ctx = context()
    with HeldLock(), provider_db.transaction() as s:
        started = time.monotonic()
        with pytest.raises(TransientError) as info:
            runtime.call(s, "wrap", lambda: pkcs11_provider.wrap(pkcs11_profile, kek, b"w" * 32, ctx),
                         pkcs11_provider, hot=True)
        waited = time.monotonic() - started
    assert info.value.message == "Transient error: KMS operation timed out after 1s"
    assert 0.9 <= waited < SESSION_ACQUIRE_TIMEOUT_SEC - 1
    with provider_db.transaction() as s:  # the lock is free again: the next call goes through
        blob = runtime.call(s, "wrap", lambda: pkcs11_provider.wrap(pkcs11_profile, kek, b"w" * 32, ctx),
                            pkcs11_provider, hot=True)
    assert pkcs11_provider.unwrap(pkcs11_profile, kek, blob, ctx) == b"w" * 32


def test_wait_for_a_pooled_session_ends_at_the_deadline(pkcs11_provider, softhsm, hsm_token):
    profile = pkcs11_profile_for(softhsm, hsm_token, max_sessions="1")
    label = new_label()
    pkcs11_provider.create_kek(profile, label, 256)
    conn = pkcs11_provider._connection(profile)
    with pkcs11_provider._session(conn):  # the only session, held
        started = time.monotonic()
        with pytest.raises(TransientError, match=r"^Transient error: KMS operation timed out after 0\.3s$"):
            retry.call(policy(), "unwrap", lambda: pkcs11_provider.kek_available(profile, label))
        assert 0.25 <= time.monotonic() - started < 2.0
    assert retry.call(policy(), "check KEK", lambda: pkcs11_provider.kek_available(profile, label))


def test_timeouts_behind_the_lock_are_retried_each_with_its_own_deadline(pkcs11_provider, pkcs11_profile, kek):
    sleeps: list[float] = []
    calls = []
    ctx = context()

    def wrap() -> bytes:
        calls.append(retry.remaining())
        return pkcs11_provider.wrap(pkcs11_profile, kek, b"w" * 32, ctx)

    with HeldLock():
        started = time.monotonic()
        with pytest.raises(TransientError, match=r"timed out after 0\.3s$"):
            retry.call(policy(retries=2, timeout_sec=0.3), "wrap", wrap, sleep=sleeps.append)
        assert 0.8 <= time.monotonic() - started < 3.0  # three attempts of 0.3 s
    assert len(calls) == 3 and all(0.25 < left <= 0.3 for left in calls)
    assert sleeps == [0.01, 0.02]


def test_a_late_result_is_discarded_zeroed_and_the_attempt_retried(pkcs11_provider, pkcs11_profile, kek):
    """The first unwrap answers after its deadline: its plaintext is zeroed and thrown away."""
    ctx = context()
    blob = pkcs11_provider.wrap(pkcs11_profile, kek, b"k" * 32, ctx)
    results: list[bytearray] = []
    sleeps: list[float] = []

    def unwrap() -> bytearray:
        plain = pkcs11_provider.unwrap(pkcs11_profile, kek, blob, ctx)
        results.append(plain)
        if len(results) == 1:
            time.sleep(0.4)  # a slow HSM: the answer comes after the 0.3 s deadline
        return plain

    assert retry.call(policy(retries=1), "unwrap", unwrap, sleep=sleeps.append) == b"k" * 32
    assert len(results) == 2 and sleeps == [0.01]
    assert results[0] == bytearray(32)  # the late plaintext was zeroed
    assert results[1] == b"k" * 32


def test_a_late_new_dek_is_zeroed_and_the_last_timeout_raised(pkcs11_provider, pkcs11_profile, kek):
    made: list[tuple[bytearray, bytes]] = []

    def generate() -> tuple[bytearray, bytes]:
        made.append(pkcs11_provider.generate_and_wrap(pkcs11_profile, kek, 256, context()))
        time.sleep(0.35)
        return made[-1]

    with pytest.raises(TransientError, match=r"^Transient error: KMS operation timed out after 0\.3s$"):
        retry.call(policy(retries=0), "generate DEK", generate)
    assert made[0][0] == bytearray(32)


# ---------------------------------------------------------------- the deadline variable
def test_the_deadline_is_published_during_the_attempt_and_reset_after():
    seen = []

    def fn() -> str:
        seen.append((retry.deadline(), retry.remaining(), time.monotonic()))
        return "ok"

    assert retry.deadline() is None and retry.remaining() is None
    before = time.monotonic()
    assert retry.call(policy(timeout_sec=5), "wrap", fn) == "ok"
    assert retry.deadline() is None and retry.remaining() is None  # nothing leaks into the next call
    [(deadline, left, at)] = seen
    assert before + 5 <= deadline <= time.monotonic() + 5
    assert 4.5 < left <= 5 and abs(deadline - at - left) < 0.1


@pytest.mark.parametrize("error", [UnwrapError(), ConnectionFailed("lost"), ValueError("x")],
                         ids=lambda e: type(e).__name__)
def test_the_deadline_is_reset_when_the_attempt_fails(error):
    def fn() -> None:
        assert retry.deadline() is not None
        raise error

    with pytest.raises((UnwrapError, ConnectionFailed, TransientError)):
        retry.call(policy(retries=1), "unwrap", fn, sleep=lambda s: None)
    assert retry.deadline() is None


def test_a_nested_call_keeps_the_earlier_deadline():
    inner = []

    def outer() -> None:
        mine = retry.deadline()
        retry.call(policy(timeout_sec=60), "wrap", lambda: inner.append(retry.deadline()))
        assert retry.deadline() == mine
        inner.append(mine)

    retry.call(policy(timeout_sec=5), "rewrap", outer)
    assert inner[0] == inner[1]


def test_hand_off_and_inline_modes_publish_no_deadline():
    for mode in (retry.Mode.HANDOFF, retry.Mode.INLINE):
        assert retry.call(policy(mode=mode), "op", retry.deadline) is None


@pytest.mark.parametrize("mode", list(retry.Mode), ids=lambda m: m.value)
def test_errors_behave_alike_in_every_mode(mode, caplog):
    caplog.set_level(logging.WARNING)
    sleeps: list[float] = []
    final = KekNotFound("k")

    def missing() -> None:
        raise final

    with pytest.raises(KekNotFound) as info:
        retry.call(policy(retries=3, mode=mode), "unwrap", missing, sleep=sleeps.append)
    assert info.value is final and sleeps == []  # not retryable: raised at once
    errors = [ConnectionFailed("a"), RuntimeError("pin=1234")]

    def flaky() -> str:
        if errors:
            raise errors.pop(0)
        return "ok"

    assert retry.call(policy(retries=3, mode=mode), "unwrap", flaky, sleep=sleeps.append) == "ok"
    assert sleeps == [0.01, 0.02]
    assert "pin=1234" not in caplog.text and "RuntimeError" in caplog.text


# ---------------------------------------------------------------- which calls go inline
def test_hot_service_calls_run_in_the_callers_thread(provider_db, runtime, pkcs11_provider, pkcs11_profile, kek):
    threads = []
    ctx = context()

    def wrap() -> bytes:
        threads.append(threading.get_ident())
        assert retry.deadline() is not None
        return pkcs11_provider.wrap(pkcs11_profile, kek, b"h" * 32, ctx)

    with provider_db.transaction() as s:
        blob = runtime.call(s, "wrap", wrap, pkcs11_provider, hot=True)
    assert threads == [threading.get_ident()]
    assert pkcs11_provider.unwrap(pkcs11_profile, kek, blob, ctx) == b"h" * 32


def test_key_management_keeps_the_hand_off(provider_db, runtime, pkcs11_provider, pkcs11_profile):
    """create/delete KEK are not hot: a worker thread, no deadline (a late creation is adopted)."""
    seen = []
    label = new_label()

    def create() -> str:
        seen.append((threading.get_ident(), retry.deadline()))
        return pkcs11_provider.create_kek(pkcs11_profile, label, 256)

    def delete() -> None:
        seen.append((threading.get_ident(), retry.deadline()))
        pkcs11_provider.delete_kek(pkcs11_profile, label)

    with provider_db.transaction() as s:
        assert runtime.call(s, "create KEK", create, pkcs11_provider) == label
        runtime.call(s, "delete KEK", delete, pkcs11_provider)
    assert [deadline for _, deadline in seen] == [None, None]
    assert threading.get_ident() not in [ident for ident, _ in seen]
    assert not pkcs11_provider.kek_available(pkcs11_profile, label)


class ThirdParty(KmsProvider):
    """A provider loaded by entry point: nothing says it honours deadlines."""

    create_kek = delete_kek = kek_available = wrap = unwrap = health_check = None  # never called


def test_the_mode_follows_the_providers_and_the_operation(provider_db, runtime, pkcs11_provider,
                                                           database_provider):
    other = ThirdParty()
    with provider_db.transaction() as s:
        def mode(*providers, hot=False):  # noqa: ANN001, ANN202
            return runtime.policy_for(s, *providers, hot=hot).mode

        assert mode(pkcs11_provider, hot=True) is DEADLINE
        assert mode(pkcs11_provider) is retry.Mode.HANDOFF
        assert mode(other, hot=True) is retry.Mode.HANDOFF
        assert mode(pkcs11_provider, other, hot=True) is retry.Mode.HANDOFF
        assert mode(database_provider) is retry.Mode.INLINE
        assert mode(database_provider, hot=True) is retry.Mode.INLINE
        # A rewrap from the database provider to an HSM: neither needs the hand-off.
        assert mode(database_provider, pkcs11_provider, hot=True) is DEADLINE
        assert mode(hot=True) is retry.Mode.HANDOFF
        live = runtime.policy_for(s, pkcs11_provider, hot=True)
        assert (live.retries, live.delay_ms, live.timeout_sec) == (0, 0, 1)
