"""Tenant factories: accounts and users of any role, written straight into a test database.

No API command creates accounts yet, so tests that need a second account (a plain user,
a domain admin) make it here, with the server's own models and master key, then talk to
the live server as that user.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select, update

from cloudstack_kms.db import Database
from cloudstack_kms.models import Account, User
from cloudstack_kms.models.tenancy import (ACCOUNT_TYPE_ADMIN, ACCOUNT_TYPE_DOMAIN_ADMIN, ACCOUNT_TYPE_USER,
                                           DEFAULT_ROLE_ID_BY_ACCOUNT_TYPE)
from cloudstack_kms.security.masterkey import MasterKey
from cloudstack_kms.security.passwords import hash_password
from cloudstack_kms.services import users

from .server import KmsEnv

ACCOUNT_TYPES = {"User": ACCOUNT_TYPE_USER, "DomainAdmin": ACCOUNT_TYPE_DOMAIN_ADMIN, "Admin": ACCOUNT_TYPE_ADMIN}


@dataclass
class Tenant:
    account: str
    username: str
    password: str
    apikey: str
    secretkey: str
    user_uuid: str
    account_uuid: str


def create_tenant(kms: KmsEnv, role: str = "User", name: str | None = None) -> Tenant:
    """A new account in ROOT with one enabled user, a password and an API key pair."""
    name = name or f"t{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(12)
    account_type = ACCOUNT_TYPES[role]
    master_key = MasterKey.load(kms.data_dir / "master.key")
    database = Database(kms.db_url)
    try:
        with database.transaction() as session:
            account = Account(account_name=name, type=account_type, domain_id=1,
                              role_id=DEFAULT_ROLE_ID_BY_ACCOUNT_TYPE[account_type])
            session.add(account)
            session.flush()
            user = User(username=name, password=hash_password(password), account_id=account.id,
                        firstname="Test", lastname=role, email=f"{name}@example.com")
            session.add(user)
            session.flush()
            apikey, secretkey = users.register_keys(session, master_key, user)
            tenant = Tenant(name, name, password, apikey, secretkey, user.uuid, account.uuid)
    finally:
        database.dispose()
    return tenant


def set_user_state(kms: KmsEnv, username: str, state: str) -> None:
    database = Database(kms.db_url)
    try:
        with database.transaction() as session:
            session.execute(update(User).where(User.username == username).values(state=state))
    finally:
        database.dispose()


def query(kms: KmsEnv, stmt):  # noqa: ANN001, ANN201 - a tiny read helper for assertions
    """Run a select against the test database; returns a list of rows (tuples)."""
    database = Database(kms.db_url)
    try:
        with database.engine.connect() as conn:
            return list(conn.execute(stmt))
    finally:
        database.dispose()


__all__ = ["Tenant", "create_tenant", "set_user_state", "query", "select"]
