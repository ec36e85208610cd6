"""The KMS pieces one server process shares: its providers, and the live retry policy."""
from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, TypeVar

from sqlalchemy.orm import Session

from ...observability.metrics import InstrumentedProvider
from ...providers import retry
from ...providers.base import KmsProvider
from ...providers.context import ProviderContext
from ...providers.registry import ProviderRegistry
from .. import settings

T = TypeVar("T")


POLICY_TTL_SEC = 1.0  # settings changed with updateConfiguration apply within a second


@dataclass(frozen=True)
class _Policies:
    """One live policy in each mode. Attributes, not a dict keyed by mode: hashing an Enum member
    runs Python code, and this is picked on every provider call."""

    handoff: retry.RetryPolicy
    inline: retry.RetryPolicy
    deadline: retry.RetryPolicy

    @classmethod
    def of(cls, base: retry.RetryPolicy) -> "_Policies":
        return cls(*(dataclasses.replace(base, mode=mode)
                     for mode in (retry.Mode.HANDOFF, retry.Mode.INLINE, retry.Mode.DEADLINE)))

    def pick(self, providers: tuple[KmsProvider, ...], hot: bool) -> retry.RetryPolicy:
        """See :meth:`KmsRuntime.policy_for` (a plain loop rather than two ``all()`` generators)."""
        inline = deadline = bool(providers)
        for p in providers:
            inline = inline and p.runs_inline
            deadline = deadline and (p.runs_inline or p.honours_deadline)
        if inline:
            return self.inline
        return self.deadline if hot and deadline else self.handoff


@dataclass
class KmsRuntime:
    providers: ProviderRegistry
    #: (when read, the live policy in each mode): the mode is picked per call, without copying.
    _policy: tuple[float, _Policies] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    #: protocol -> the provider wrapped for metrics (built once per provider instance).
    _instrumented: dict[str, InstrumentedProvider] = field(default_factory=dict, repr=False)

    @classmethod
    def create(cls, context: ProviderContext) -> "KmsRuntime":
        return cls(ProviderRegistry(context))

    def provider(self, protocol: str, timed: bool = True) -> KmsProvider:
        """The provider of ``protocol``, its calls timed and counted per HSM profile and operation
        (every service reaches providers through here, so this is the one place metrics hook in).
        ``timed=False``: the bare provider, for bulk work that records its chunks itself
        (``metrics.BulkTimer``)."""
        provider = self.providers.get(protocol)
        if not timed:
            return provider
        wrapped = self._instrumented.get(protocol)
        if wrapped is None or wrapped.inner is not provider:
            wrapped = self._instrumented[protocol] = InstrumentedProvider(provider)
        return wrapped  # type: ignore[return-value] - same interface, delegated

    def _policies(self, session: Session) -> _Policies:
        """The live retry settings, re-read at most once a second (the queries would otherwise cost
        more than the provider call)."""
        now = time.monotonic()
        cached = self._policy
        if cached is not None and now - cached[0] < POLICY_TTL_SEC:
            return cached[1]
        retries, delay_ms, timeout_sec = settings.get_values(
            session, "kms.retry.count", "kms.retry.delay.ms", "kms.operation.timeout.sec")
        base = retry.RetryPolicy(retries=retries, delay_ms=delay_ms, timeout_sec=timeout_sec)
        policies = _Policies.of(base)
        with self._lock:
            self._policy = (now, policies)
        return policies

    def policy(self, session: Session) -> retry.RetryPolicy:
        """The live retry settings, attempts handed off to a worker thread."""
        return self._policies(session).handoff

    def policy_for(self, session: Session, *providers: KmsProvider, hot: bool = False) -> retry.RetryPolicy:
        """The live policy, in the mode the providers used (and the operation) allow.

        * inline, no timeout, when every provider cannot hang: the database provider works in the
          caller's transaction, which a timed-out attempt left running on another thread would go
          on using;
        * inline with a deadline, for ``hot`` operations when every provider honours deadlines (or
          cannot hang): the thread hand-off alone costs more than an HSM wrap;
        * handed off to a worker thread otherwise.

        ``hot`` is the caller's promise that the operation's only effect is its result (wrap,
        unwrap, new DEKs, rewrap of a chunk in memory), so an attempt finishing after its deadline
        can be thrown away and redone. It is an explicit argument rather than a list of operation
        names kept here: the caller is the one who knows, and a renamed operation must not change
        modes silently. Key management (create, delete, check KEK) is not hot: a late creation must
        be adopted by the next attempt, which needs the timed-out attempt to go on running in the
        background, and these calls are rare enough for the hand-off not to matter.
        """
        return self._policies(session).pick(providers, hot)

    def call(self, session: Session, operation: str, fn: Callable[[], T], *providers: KmsProvider,
             hot: bool = False) -> T:
        """Run ``fn`` through the retry wrapper with :meth:`policy_for` the providers it uses."""
        return retry.call(self._policies(session).pick(providers, hot), operation, fn)  # policy_for, one call less


def runtime_of(state) -> KmsRuntime:  # noqa: ANN001 - AppState, imported lazily to avoid a cycle
    """The process's runtime, created on first use."""
    rt = state.services.get("kms")
    if rt is None:
        rt = state.services["kms"] = KmsRuntime.create(ProviderContext(db=state.db, master_key=state.master_key))
    return rt
