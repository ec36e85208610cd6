"""Domains, accounts, users and roles: who owns what and who may call what."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import REF, Base, created_column, id_column, removed_column, utcnow, uuid_column

# Account.type values (CloudStack's Account.Type ordinals).
ACCOUNT_TYPE_USER = 0
ACCOUNT_TYPE_ADMIN = 1
ACCOUNT_TYPE_DOMAIN_ADMIN = 2
ACCOUNT_TYPE_RESOURCE_ADMIN = 3

# Role types, and the default role id of each account type.
ROLE_ADMIN = "Admin"
ROLE_RESOURCE_ADMIN = "ResourceAdmin"
ROLE_DOMAIN_ADMIN = "DomainAdmin"
ROLE_USER = "User"
ROLE_TYPES = (ROLE_ADMIN, ROLE_RESOURCE_ADMIN, ROLE_DOMAIN_ADMIN, ROLE_USER)
DEFAULT_ROLE_ID_BY_ACCOUNT_TYPE = {
    ACCOUNT_TYPE_ADMIN: 1,
    ACCOUNT_TYPE_RESOURCE_ADMIN: 2,
    ACCOUNT_TYPE_DOMAIN_ADMIN: 3,
    ACCOUNT_TYPE_USER: 4,
}
ROLE_TYPE_BY_ACCOUNT_TYPE = {
    ACCOUNT_TYPE_ADMIN: ROLE_ADMIN,
    ACCOUNT_TYPE_RESOURCE_ADMIN: ROLE_RESOURCE_ADMIN,
    ACCOUNT_TYPE_DOMAIN_ADMIN: ROLE_DOMAIN_ADMIN,
    ACCOUNT_TYPE_USER: ROLE_USER,
}


class Role(Base):
    __tablename__ = "roles"

    id: Mapped[int] = id_column()
    uuid: Mapped[str | None] = uuid_column()
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    role_type: Mapped[str] = mapped_column(String(255), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    removed: Mapped[datetime | None] = removed_column()
    is_default: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class Domain(Base):
    __tablename__ = "domain"
    __table_args__ = (UniqueConstraint("parent", "name", "removed", name="parent"),)

    id: Mapped[int] = id_column()
    parent: Mapped[int | None] = mapped_column(REF)
    name: Mapped[str | None] = mapped_column(String(255))
    uuid: Mapped[str | None] = uuid_column()
    owner: Mapped[int] = mapped_column(REF, nullable=False)
    path: Mapped[str] = mapped_column(String(255), nullable=False, index=True)
    level: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    child_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_child_seq: Mapped[int] = mapped_column(REF, nullable=False, default=1)
    created: Mapped[datetime | None] = created_column()
    removed: Mapped[datetime | None] = removed_column()
    state: Mapped[str] = mapped_column(String(32), nullable=False, default="Active")
    network_domain: Mapped[str | None] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(255), nullable=False, default="Normal")

    @property
    def display_path(self) -> str:
        """``ROOT`` or ``ROOT/child/grandchild``, as the API shows it."""
        return "ROOT" + self.path.rstrip("/") if self.path != "/" else "ROOT"


class Account(Base):
    __tablename__ = "account"
    __table_args__ = (Index("i_account__account_name__domain_id__removed", "account_name", "domain_id", "removed"),)

    id: Mapped[int] = id_column()
    account_name: Mapped[str | None] = mapped_column(String(100))
    uuid: Mapped[str | None] = uuid_column()
    type: Mapped[int] = mapped_column(Integer, nullable=False)
    role_id: Mapped[int | None] = mapped_column(REF, ForeignKey("roles.id"))
    domain_id: Mapped[int | None] = mapped_column(REF, ForeignKey("domain.id"), index=True)
    state: Mapped[str] = mapped_column(String(10), nullable=False, default="enabled")
    created: Mapped[datetime | None] = created_column()
    removed: Mapped[datetime | None] = removed_column()
    cleanup_needed: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    network_domain: Mapped[str | None] = mapped_column(String(255))
    default: Mapped[int] = mapped_column(Integer, nullable=False, default=0)

    domain: Mapped[Domain] = relationship(lazy="joined")
    role: Mapped[Role] = relationship(lazy="joined")

    @property
    def role_type(self) -> str:
        return self.role.role_type if self.role else ROLE_TYPE_BY_ACCOUNT_TYPE[self.type]


class User(Base):
    __tablename__ = "user"

    id: Mapped[int] = id_column()
    uuid: Mapped[str | None] = uuid_column()
    username: Mapped[str] = mapped_column(String(255), nullable=False)
    password: Mapped[str] = mapped_column(String(255), nullable=False)
    account_id: Mapped[int] = mapped_column(REF, ForeignKey("account.id", ondelete="CASCADE"), nullable=False, index=True)
    firstname: Mapped[str | None] = mapped_column(String(255))
    lastname: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(10), nullable=False, default="enabled")
    api_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    # Sealed with the master key (context "user.secret_key:<uuid>"), never stored in plain text.
    secret_key: Mapped[str | None] = mapped_column(String(255))
    created: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    removed: Mapped[datetime | None] = removed_column()
    timezone: Mapped[str | None] = mapped_column(String(30))
    incorrect_login_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    default: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    source: Mapped[str] = mapped_column(String(40), nullable=False, default="UNKNOWN")

    account: Mapped[Account] = relationship(lazy="joined")
