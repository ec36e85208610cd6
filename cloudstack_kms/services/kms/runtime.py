"""The KMS pieces one server process shares: its providers, and the live retry policy."""
from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, TypeVar

from sqlalchemy.orm import Session

from ...providers import retry
from ...providers.base import KmsProvider
from ...providers.context import ProviderContext
from ...providers.registry import ProviderRegistry
from .. import settings

T = TypeVar("T")


POLICY_TTL_SEC = 1.0  # settings changed with updateConfiguration apply within a second


@dataclass
class KmsRuntime:
    providers: ProviderRegistry
    _policy: tuple[float, retry.RetryPolicy] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def create(cls, context: ProviderContext) -> "KmsRuntime":
        return cls(ProviderRegistry(context))

    def provider(self, protocol: str) -> KmsProvider:
        return self.providers.get(protocol)

    def policy(self, session: Session) -> retry.RetryPolicy:
        """The live retry settings, re-read at most once a second (three queries per provider call
        would otherwise cost more than the call)."""
        now = time.monotonic()
        cached = self._policy
        if cached is not None and now - cached[0] < POLICY_TTL_SEC:
            return cached[1]
        policy = retry.RetryPolicy(retries=settings.get_value(session, "kms.retry.count"),
                                   delay_ms=settings.get_value(session, "kms.retry.delay.ms"),
                                   timeout_sec=settings.get_value(session, "kms.operation.timeout.sec"))
        with self._lock:
            self._policy = (now, policy)
        return policy

    def policy_for(self, session: Session, *providers: KmsProvider) -> retry.RetryPolicy:
        """The live policy; inline (caller's thread, no timeout) when every provider used cannot hang:
        the database provider works in the caller's transaction, which a timed-out attempt left
        running on another thread would go on using."""
        policy = self.policy(session)
        if providers and all(p.runs_inline for p in providers):
            policy = dataclasses.replace(policy, inline=True)
        return policy

    def call(self, session: Session, operation: str, fn: Callable[[], T], *providers: KmsProvider) -> T:
        """Run ``fn`` through the retry wrapper with :meth:`policy_for` the providers it uses."""
        return retry.call(self.policy_for(session, *providers), operation, fn)


def runtime_of(state) -> KmsRuntime:  # noqa: ANN001 - AppState, imported lazily to avoid a cycle
    """The process's runtime, created on first use."""
    rt = state.services.get("kms")
    if rt is None:
        rt = state.services["kms"] = KmsRuntime.create(ProviderContext(db=state.db, master_key=state.master_key))
    return rt
