"""Who is calling, inside which transaction: everything a command needs besides its arguments."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from sqlalchemy.orm import Session

from ..models import Account, Domain, User
from ..models.tenancy import ROLE_ADMIN, ROLE_DOMAIN_ADMIN, ROLE_RESOURCE_ADMIN

if TYPE_CHECKING:
    from ..app_state import AppState


@dataclass
class CallContext:
    session: Session
    user: User
    account: Account
    state: "AppState"
    #: Set while running inside a job: lets long commands report ``jobprocstatus``.
    job_id: int | None = None
    progress: Callable[[int], None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: Run by the dispatcher once the request's transaction has committed (never after a rollback).
    on_commit: list[Callable[[], None]] = field(default_factory=list)

    @property
    def role(self) -> str:
        return self.account.role_type

    @property
    def domain(self) -> Domain:
        return self.account.domain

    @property
    def is_root_admin(self) -> bool:
        return self.role == ROLE_ADMIN

    @property
    def is_domain_admin(self) -> bool:
        return self.role in (ROLE_DOMAIN_ADMIN, ROLE_RESOURCE_ADMIN)

    @property
    def is_admin(self) -> bool:
        return self.role in (ROLE_ADMIN, ROLE_DOMAIN_ADMIN, ROLE_RESOURCE_ADMIN)

    def report_progress(self, value: int) -> None:
        if self.progress is not None:
            self.progress(value)
