"""``db init``: the built-in rows CloudStack ships with, created once and never duplicated."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Account, DataCenter, Domain, Role, User
from ..models.tenancy import ACCOUNT_TYPE_ADMIN
from ..security.passwords import hash_password
from . import settings

ROLES = [
    (1, "Root Admin", "Admin", "Default root admin role"),
    (2, "Resource Admin", "ResourceAdmin", "Default resource admin role"),
    (3, "Domain Admin", "DomainAdmin", "Default domain admin role"),
    (4, "User", "User", "Default Root Admin - Default user role"),
]
DEFAULT_ZONE = "zone1"
#: Extra seeding steps registered by later subsystems: ``fn(session, data_dir=...) -> [created items]``.
EXTRA_SEEDS: list = []


@dataclass
class SeedReport:
    created: list[str]
    admin_password: str | None = None


def seed(session: Session, data_dir: Path | None = None) -> SeedReport:
    """Create the built-in rows that are missing. ``data_dir`` holds the default primary storage."""
    report = SeedReport(created=[])
    for role_id, name, role_type, description in ROLES:
        if session.get(Role, role_id) is None:
            session.add(Role(id=role_id, name=name, role_type=role_type, description=description, is_default=True))
            report.created.append(f"role {name}")
    session.flush()
    root = session.get(Domain, 1)
    if root is None:
        root = Domain(id=1, name="ROOT", parent=None, path="/", level=0, owner=2)
        session.add(root)
        session.flush()
        report.created.append("domain ROOT")
    for account_id, name in ((1, "system"), (2, "admin")):
        if session.get(Account, account_id) is None:
            session.add(Account(id=account_id, account_name=name, type=ACCOUNT_TYPE_ADMIN, role_id=1,
                                domain_id=1, default=1))
            report.created.append(f"account {name}")
    session.flush()
    if session.get(User, 1) is None:
        # The system user cannot log in: its password hash is of a random value nobody knows.
        session.add(User(id=1, username="system", password=hash_password(secrets.token_urlsafe(32)),
                         account_id=1, firstname="system", lastname="cloud", default=1))
        report.created.append("user system")
    if session.get(User, 2) is None:
        password = secrets.token_urlsafe(12)
        session.add(User(id=2, username="admin", password=hash_password(password), account_id=2,
                         firstname="Admin", lastname="User", default=1))
        report.created.append("user admin")
        report.admin_password = password
    if session.scalars(select(DataCenter).where(DataCenter.removed.is_(None))).first() is None:
        session.add(DataCenter(name=DEFAULT_ZONE, description="Default zone", dns1="8.8.8.8",
                               internal_dns1="8.8.8.8", networktype="Advanced", allocation_state="Enabled"))
        report.created.append(f"zone {DEFAULT_ZONE}")
    if settings.seed(session):
        report.created.append("configuration")
    for extra in EXTRA_SEEDS:
        report.created.extend(extra(session, data_dir=data_dir))
    session.flush()
    return report
