"""Domains, accounts, users and roles: who owns what and who may call what."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import REF, TINYBOOL, UINT, Base, created_column, id_column, removed_column, utcnow, uuid_column

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
    __table_args__ = (
        UniqueConstraint("uuid", name="uc_roles__uuid"),
        Index("i_roles__removed", "removed"),
    )

    id: Mapped[int] = id_column()
    uuid: Mapped[str | None] = uuid_column()
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    role_type: Mapped[str] = mapped_column(String(255), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    removed: Mapped[datetime | None] = removed_column()
    is_default: Mapped[bool] = mapped_column(TINYBOOL, nullable=False, default=False)


class Domain(Base):
    __tablename__ = "domain"
    __table_args__ = (
        UniqueConstraint("uuid", name="uc_domain__uuid"),
        # Upstream's key has no explicit name, so MySQL calls it after its first column.
        UniqueConstraint("parent", "name", "removed", name="parent"),
        Index("i_domain__path", "path"),
        Index("i_domain__removed", "removed"),
    )

    id: Mapped[int] = id_column()
    parent: Mapped[int | None] = mapped_column(REF)
    name: Mapped[str | None] = mapped_column(String(255))
    uuid: Mapped[str | None] = uuid_column()
    owner: Mapped[int] = mapped_column(REF, nullable=False)
    path: Mapped[str] = mapped_column(String(255), nullable=False)
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
    __table_args__ = (
        UniqueConstraint("uuid", name="uc_account__uuid"),
        Index("i_account__account_name__domain_id__removed", "account_name", "domain_id", "removed"),
        Index("i_account__role_id", "role_id"),
        Index("i_account__domain_id", "domain_id"),
        Index("i_account__removed", "removed"),
        Index("i_account__cleanup_needed", "cleanup_needed"),
    )

    id: Mapped[int] = id_column()
    account_name: Mapped[str | None] = mapped_column(String(100))
    uuid: Mapped[str | None] = uuid_column()
    type: Mapped[int] = mapped_column(UINT, nullable=False)
    role_id: Mapped[int | None] = mapped_column(REF, ForeignKey("roles.id", name="fk_account__role_id"))
    domain_id: Mapped[int | None] = mapped_column(REF, ForeignKey("domain.id", name="fk_account__domain_id"))
    state: Mapped[str] = mapped_column(String(10), nullable=False, default="enabled")
    created: Mapped[datetime | None] = created_column()
    removed: Mapped[datetime | None] = removed_column()
    cleanup_needed: Mapped[bool] = mapped_column(TINYBOOL, nullable=False, default=False)
    network_domain: Mapped[str | None] = mapped_column(String(255))
    default: Mapped[int] = mapped_column(UINT, nullable=False, default=0)

    domain: Mapped[Domain] = relationship(lazy="joined")
    role: Mapped[Role] = relationship(lazy="joined")

    @property
    def role_type(self) -> str:
        return self.role.role_type if self.role else ROLE_TYPE_BY_ACCOUNT_TYPE[self.type]


class User(Base):
    __tablename__ = "user"
    __table_args__ = (
        UniqueConstraint("uuid", name="uc_user__uuid"),
        UniqueConstraint("api_key", name="uc_user__api_key"),
        Index("i_user__account_id", "account_id"),
        Index("i_user__removed", "removed"),
    )

    id: Mapped[int] = id_column()
    uuid: Mapped[str | None] = uuid_column()
    username: Mapped[str] = mapped_column(String(255), nullable=False)
    password: Mapped[str] = mapped_column(String(255), nullable=False)
    account_id: Mapped[int] = mapped_column(
        REF, ForeignKey("account.id", name="fk_user__account_id", ondelete="CASCADE"), nullable=False)
    firstname: Mapped[str | None] = mapped_column(String(255))
    lastname: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(10), nullable=False, default="enabled")
    api_key: Mapped[str | None] = mapped_column(String(255))
    # Sealed with the master key (context "user.secret_key:<uuid>"), never stored in plain text.
    secret_key: Mapped[str | None] = mapped_column(String(255))
    created: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    removed: Mapped[datetime | None] = removed_column()
    timezone: Mapped[str | None] = mapped_column(String(30))
    incorrect_login_attempts: Mapped[int] = mapped_column(UINT, nullable=False, default=0)
    default: Mapped[int] = mapped_column(UINT, nullable=False, default=0)
    source: Mapped[str] = mapped_column(String(40), nullable=False, default="UNKNOWN")

    account: Mapped[Account] = relationship(lazy="joined")
