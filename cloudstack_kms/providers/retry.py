"""Every provider call goes through :func:`call`: bounded attempts, back-off, a timeout each.

Settings are read live (``kms.retry.count``, ``kms.retry.delay.ms``,
``kms.operation.timeout.sec``), so ``updateConfiguration`` applies at once. Errors that
cannot improve with time — a wrong PIN, a missing KEK, bad input, a blob that fails
authentication — are raised at the first attempt.

How an attempt runs (:class:`Mode`)
-----------------------------------
* ``HANDOFF``: on a worker thread, the caller waiting ``future.result(timeout)``. It honours
  the timeout whatever the provider does, at the price of a thread hand-off per attempt
  (tens of µs: more than an HSM wrap takes). A timed-out attempt keeps running in the
  background; key management relies on that (a late KEK creation is adopted by the retry).
* ``INLINE``: in the caller's thread, no timeout, for providers that cannot hang (the
  database provider, which works in the caller's transaction).
* ``DEADLINE``: in the caller's thread, with the attempt's deadline (start + timeout)
  published in a context variable (:func:`deadline`, :func:`remaining`). A provider that
  declares ``honours_deadline`` bounds every wait of its own by it (a lock, a pooled session)
  and raises :func:`timed_out` when it runs out. An attempt that returns after its deadline
  counts as timed out: its result is discarded (plaintext buffers in it are zeroed) and the
  attempt is retried like any timeout. So only operations whose sole effect is their result
  (wrap, unwrap, new DEKs) use this mode.

What the ``DEADLINE`` mode cannot do: interrupt a call that is already inside the C library
and hangs there. Its own thread stays blocked until the library returns; it then gets the
timeout error (the late result is discarded). Every *other* caller meanwhile times out at its
deadline waiting for the library's lock, with the usual timeout error (a 530 to API clients),
so one stuck call blocks one request thread, not the server.
"""
from __future__ import annotations

import contextvars
import enum
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Callable, TypeVar

from .base import KmsError, TransientError, zero

log = logging.getLogger(__name__)
T = TypeVar("T")

_executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="kms-operation")


class Mode(enum.Enum):
    HANDOFF = "hand-off"
    INLINE = "inline"
    DEADLINE = "deadline"


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 3
    delay_ms: int = 1000
    timeout_sec: float = 30.0
    #: Where and how each attempt runs: see the module docstring.
    mode: Mode = Mode.HANDOFF

    def delay(self, attempt: int) -> float:
        """Exponential back-off: delay, 2×delay, 4×delay ... (seconds) after attempt 1, 2, 3 ..."""
        return self.delay_ms / 1000.0 * (2 ** (attempt - 1))


# ------------------------------------------------------------------ the deadline
#: (time.monotonic() at which the current attempt has timed out, the timeout setting it came
#: from, for the error text). A plain tuple: this is set twice per hot provider call.
_deadline: contextvars.ContextVar[tuple[float, float] | None] = contextvars.ContextVar("kms_operation_deadline",
                                                                                      default=None)


def deadline() -> float | None:
    """The ``time.monotonic()`` deadline of the attempt running in this context, or None."""
    current = _deadline.get()
    return None if current is None else current[0]


def remaining() -> float | None:
    """Seconds left before the current attempt's deadline (<= 0 once past), or None without one."""
    current = _deadline.get()
    return None if current is None else current[0] - time.monotonic()


def timeout_error(timeout_sec: float) -> TransientError:
    return TransientError(f"KMS operation timed out after {timeout_sec:g}s")


def timed_out() -> TransientError:
    """The error for a wait cut short by the current deadline (same text as any attempt timeout)."""
    current = _deadline.get()
    return timeout_error(current[1] if current is not None else 0)


# ------------------------------------------------------------------ attempts
def _run_handoff(policy: RetryPolicy, fn: Callable[[], T]) -> T:
    # Copy the context: the database provider joins the caller's transaction through it.
    future = _executor.submit(contextvars.copy_context().run, fn)
    try:
        return future.result(timeout=policy.timeout_sec)
    except FutureTimeout:
        raise timeout_error(policy.timeout_sec) from None


def _run_inline(policy: RetryPolicy, fn: Callable[[], T]) -> T:
    return fn()


def _run_with_deadline(policy: RetryPolicy, fn: Callable[[], T]) -> T:
    mine = (time.monotonic() + policy.timeout_sec, policy.timeout_sec)
    outer = _deadline.get()
    if outer is not None and outer[0] < mine[0]:
        mine = outer  # a nested call never outlives the attempt that made it
    token = _deadline.set(mine)
    try:
        result = fn()
    finally:
        _deadline.reset(token)
    if time.monotonic() > mine[0]:
        _discard(result)
        raise timeout_error(mine[1])
    return result


def _discard(result: object) -> None:
    """Zero the plaintext a late result carries (an unwrapped DEK, a new DEK and its blob)."""
    for item in result if isinstance(result, (tuple, list)) else (result,):
        if isinstance(item, bytearray):
            zero(item)


def _runner(mode: Mode) -> Callable[[RetryPolicy, Callable[[], T]], T]:
    # Identity tests, not a dict: hashing an Enum member runs Python code, on every hot call.
    if mode is Mode.DEADLINE:
        return _run_with_deadline
    return _run_inline if mode is Mode.INLINE else _run_handoff


def call(policy: RetryPolicy, operation: str, fn: Callable[[], T], sleep: Callable[[float], None] = time.sleep) -> T:
    """Run ``fn`` with retries; raise the last :class:`KmsError` when attempts run out."""
    attempts = policy.retries + 1
    run = _runner(policy.mode)
    for attempt in range(1, attempts + 1):
        try:
            return run(policy, fn)
        except KmsError as exc:
            if not exc.retryable or attempt == attempts:
                raise
            log.warning("KMS %s failed (attempt %d of %d): %s", operation, attempt, attempts, exc.message)
        except Exception as exc:  # noqa: BLE001 - unknown failures count as transient, as upstream
            log.warning("KMS %s failed (attempt %d of %d): %s", operation, attempt, attempts, type(exc).__name__)
            if attempt == attempts:
                raise TransientError(f"KMS operation failed: {type(exc).__name__}") from None
        sleep(policy.delay(attempt))
    raise TransientError("KMS operation failed")  # pragma: no cover
