"""Every provider call goes through :func:`call`: bounded attempts, back-off, a timeout each.

Settings are read live (``kms.retry.count``, ``kms.retry.delay.ms``,
``kms.operation.timeout.sec``), so ``updateConfiguration`` applies at once. Errors that
cannot improve with time — a wrong PIN, a missing KEK, bad input, a blob that fails
authentication — are raised at the first attempt.
"""
from __future__ import annotations

import contextvars
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Callable, TypeVar

from .base import KmsError, TransientError

log = logging.getLogger(__name__)
T = TypeVar("T")

_executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="kms-operation")


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 3
    delay_ms: int = 1000
    timeout_sec: float = 30.0
    #: Run in the calling thread, without a timeout: for providers that cannot hang (the database
    #: provider), where a timed-out attempt left running would still use the caller's session.
    inline: bool = False

    def delay(self, attempt: int) -> float:
        """Exponential back-off: delay, 2×delay, 4×delay ... (seconds) after attempt 1, 2, 3 ..."""
        return self.delay_ms / 1000.0 * (2 ** (attempt - 1))


def call(policy: RetryPolicy, operation: str, fn: Callable[[], T], sleep: Callable[[float], None] = time.sleep) -> T:
    """Run ``fn`` with retries; raise the last :class:`KmsError` when attempts run out."""
    attempts = policy.retries + 1
    for attempt in range(1, attempts + 1):
        try:
            if policy.inline:
                return fn()
            # Copy the context: the database provider joins the caller's transaction through it.
            ctx = contextvars.copy_context()
            future = _executor.submit(ctx.run, fn)
            try:
                return future.result(timeout=policy.timeout_sec)
            except FutureTimeout:
                raise TransientError(f"KMS operation timed out after {policy.timeout_sec:g}s") from None
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
