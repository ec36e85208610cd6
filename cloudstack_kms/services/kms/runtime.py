"""The KMS pieces one server process shares: its providers, and the live retry policy."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, TypeVar

from sqlalchemy.orm import Session

from ...providers import retry
from ...providers.base import KmsProvider
from ...providers.context import ProviderContext
from ...providers.registry import ProviderRegistry
from .. import settings

T = TypeVar("T")


@dataclass
class KmsRuntime:
    providers: ProviderRegistry

    @classmethod
    def create(cls, context: ProviderContext) -> "KmsRuntime":
        return cls(ProviderRegistry(context))

    def provider(self, protocol: str) -> KmsProvider:
        return self.providers.get(protocol)

    @staticmethod
    def policy(session: Session) -> retry.RetryPolicy:
        return retry.RetryPolicy(retries=settings.get_value(session, "kms.retry.count"),
                                 delay_ms=settings.get_value(session, "kms.retry.delay.ms"),
                                 timeout_sec=settings.get_value(session, "kms.operation.timeout.sec"))

    def call(self, session: Session, operation: str, fn: Callable[[], T]) -> T:
        return retry.call(self.policy(session), operation, fn)


def runtime_of(state) -> KmsRuntime:  # noqa: ANN001 - AppState, imported lazily to avoid a cycle
    """The process's runtime, created on first use."""
    rt = state.services.get("kms")
    if rt is None:
        rt = state.services["kms"] = KmsRuntime.create(ProviderContext(db=state.db, master_key=state.master_key))
    return rt
