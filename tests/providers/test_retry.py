"""``providers.retry.call``: bounded attempts, exponential back-off, a timeout per attempt,
errors that cannot improve raised at once, unknown failures wrapped without their text.

``sleep`` is injected, so back-off is checked without waiting. The hung call of the timeout
tests is a function that blocks (a fault SoftHSM2 cannot produce on demand), plus one real
case: a provider call stuck behind the PKCS#11 library lock held by another thread. These run
in the default mode, each attempt handed off to a worker thread; the inline mode with a
deadline (hot data operations) is tested in ``test_retry_deadline.py``.
"""
from __future__ import annotations

import contextvars
import logging
import threading
import time
import uuid

import pytest

from cloudstack_kms.db import current_session
from cloudstack_kms.providers import retry
from cloudstack_kms.providers.base import (AuthenticationFailed, ConnectionFailed, InvalidProviderParameter,
                                           KekNotFound, KekOperationFailed, KeyAlreadyExists, KmsError,
                                           ProviderNotInitialized, TransientError, UnwrapError, WrapContext)
from cloudstack_kms.providers.pkcs11 import library
from tests.providers.conftest import new_label
from tests.support.softhsm import MODULE

RETRYABLE = [ConnectionFailed("lost"), KekOperationFailed("busy"), TransientError("later")]
FINAL = [KekNotFound("k"), UnwrapError(), AuthenticationFailed("Incorrect PIN for HSM authentication"),
         InvalidProviderParameter("bad"), KeyAlreadyExists("dup"), ProviderNotInitialized("none")]


class Flaky:
    """Fails with the given errors in order, then returns ``result``; counts its calls."""

    def __init__(self, errors: list[BaseException], result: object = "ok") -> None:
        self.errors = list(errors)
        self.result = result
        self.calls = 0

    def __call__(self) -> object:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.result


def policy(retries: int = 3, delay_ms: int = 100, timeout_sec: float = 30.0) -> retry.RetryPolicy:
    return retry.RetryPolicy(retries=retries, delay_ms=delay_ms, timeout_sec=timeout_sec)


def test_success_needs_one_attempt():
    sleeps: list[float] = []
    fn = Flaky([])
    assert retry.call(policy(), "wrap", fn, sleep=sleeps.append) == "ok"
    assert fn.calls == 1 and sleeps == []


def test_exponential_back_off_then_success():
    sleeps: list[float] = []
    fn = Flaky([ConnectionFailed("a"), KekOperationFailed("b")], result=b"blob")
    assert retry.call(policy(retries=3, delay_ms=100), "wrap", fn, sleep=sleeps.append) == b"blob"
    assert fn.calls == 3
    assert sleeps == [0.1, 0.2]


@pytest.mark.parametrize("retries, delay_ms, expected", [
    (0, 1000, []),
    (1, 1000, [1.0]),
    (3, 1000, [1.0, 2.0, 4.0]),
    (4, 250, [0.25, 0.5, 1.0, 2.0]),
    (2, 0, [0.0, 0.0]),
])
def test_attempts_run_out_with_the_last_error(retries, delay_ms, expected):
    sleeps: list[float] = []
    errors = [ConnectionFailed(f"attempt {i}") for i in range(1, retries + 2)]
    fn = Flaky(errors)
    with pytest.raises(ConnectionFailed, match=f"^Connection failed: attempt {retries + 1}$"):
        retry.call(policy(retries=retries, delay_ms=delay_ms), "unwrap", fn, sleep=sleeps.append)
    assert fn.calls == retries + 1
    assert sleeps == expected


def test_policy_delay_doubles():
    p = policy(delay_ms=1000)
    assert [p.delay(a) for a in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]


@pytest.mark.parametrize("error", RETRYABLE, ids=lambda e: type(e).__name__)
def test_retryable_errors_are_retried(error: KmsError):
    assert error.retryable
    fn = Flaky([error])
    sleeps: list[float] = []
    assert retry.call(policy(), "op", fn, sleep=sleeps.append) == "ok"
    assert fn.calls == 2 and sleeps == [0.1]


@pytest.mark.parametrize("error", FINAL, ids=lambda e: type(e).__name__)
def test_non_retryable_errors_are_raised_at_once(error: KmsError):
    assert not error.retryable
    fn = Flaky([error, error, error])
    sleeps: list[float] = []
    with pytest.raises(type(error)) as info:
        retry.call(policy(retries=5), "op", fn, sleep=sleeps.append)
    assert info.value is error
    assert fn.calls == 1 and sleeps == []


def test_timeout_is_a_transient_error():
    release = threading.Event()
    calls = []

    def hung() -> None:
        calls.append(1)
        release.wait(10)

    sleeps: list[float] = []
    started = time.monotonic()
    try:
        with pytest.raises(TransientError) as info:
            retry.call(policy(retries=0, timeout_sec=0.2), "wrap", hung, sleep=sleeps.append)
        elapsed = time.monotonic() - started
    finally:
        release.set()
    assert info.value.message == "Transient error: KMS operation timed out after 0.2s"
    assert info.value.retryable
    assert 0.15 < elapsed < 2.0
    assert calls == [1] and sleeps == []


def test_timeouts_are_retried():
    release = threading.Event()
    fn_calls = []

    def hung_then_fine() -> str:
        fn_calls.append(1)
        if len(fn_calls) < 3:
            release.wait(10)
            return "too late"
        return "ok"

    sleeps: list[float] = []
    try:
        assert retry.call(policy(retries=2, delay_ms=5, timeout_sec=0.1), "wrap", hung_then_fine,
                          sleep=sleeps.append) == "ok"
    finally:
        release.set()
    assert len(fn_calls) == 3
    assert sleeps == [0.005, 0.01]


def test_a_provider_call_stuck_behind_the_library_lock_times_out(pkcs11_provider, pkcs11_profile):
    """Real, not simulated: another thread holds the PKCS#11 library lock (as a hung call
    into the module would), so the provider cannot get in."""
    label = new_label()
    pkcs11_provider.create_kek(pkcs11_profile, label, 256)
    ctx = WrapContext(wrapped_key_uuid=str(uuid.uuid4()), kms_key_uuid=str(uuid.uuid4()))
    holding, release = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        with library(MODULE).lock:
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    try:
        assert holding.wait(10)
        with pytest.raises(TransientError, match=r"^Transient error: KMS operation timed out after 0\.3s$"):
            retry.call(policy(retries=0, timeout_sec=0.3), "wrap",
                       lambda: pkcs11_provider.wrap(pkcs11_profile, label, b"w" * 32, ctx))
    finally:
        release.set()
        holder.join(10)
    blob = retry.call(policy(), "wrap", lambda: pkcs11_provider.wrap(pkcs11_profile, label, b"w" * 32, ctx))
    assert pkcs11_provider.unwrap(pkcs11_profile, label, blob, ctx) == b"w" * 32


SECRET_TEXT = "pin=1234 dek=7f3a9c"


@pytest.mark.parametrize("error", [ValueError(SECRET_TEXT), RuntimeError(SECRET_TEXT), OSError(5, SECRET_TEXT),
                                   KeyError(SECRET_TEXT)], ids=lambda e: type(e).__name__)
def test_unknown_exceptions_become_transient_errors_without_their_text(error, caplog):
    caplog.set_level(logging.DEBUG)
    fn = Flaky([error, error, error])
    sleeps: list[float] = []
    with pytest.raises(TransientError) as info:
        retry.call(policy(retries=2), "unwrap", fn, sleep=sleeps.append)
    assert info.value.message == f"Transient error: KMS operation failed: {type(error).__name__}"
    assert SECRET_TEXT not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert fn.calls == 3 and sleeps == [0.1, 0.2]
    assert SECRET_TEXT not in caplog.text
    assert "unwrap" in caplog.text  # the attempts are logged, by exception type only


def test_unknown_exception_then_success():
    fn = Flaky([ZeroDivisionError("x")], result=42)
    assert retry.call(policy(), "op", fn, sleep=lambda s: None) == 42
    assert fn.calls == 2


def test_caller_context_reaches_the_operation(provider_db):
    """The operation runs in a worker thread with the caller's context variables, so the
    database provider joins the caller's transaction."""
    marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="unset")
    marker.set("caller")
    assert retry.call(policy(), "op", lambda: marker.get()) == "caller"
    with provider_db.transaction() as session:
        assert retry.call(policy(), "op", current_session) is session
    assert retry.call(policy(), "op", current_session) is None
