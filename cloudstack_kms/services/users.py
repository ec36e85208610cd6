"""API keys and passwords of users."""
from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Account, Domain, User
from ..security.masterkey import MasterKey
from ..security.passwords import hash_password


def new_key() -> str:
    # CloudStack keys are 64 random bytes in URL-safe Base64 without padding (86 characters).
    return secrets.token_urlsafe(64)


def register_keys(session: Session, master_key: MasterKey, user: User) -> tuple[str, str]:
    """Replace the user's key pair; returns (apikey, secretkey). The secret is stored sealed."""
    api_key, secret = new_key(), new_key()
    user.api_key = api_key
    user.secret_key = master_key.seal_text(secret, f"user.secret_key:{user.uuid}")
    return api_key, secret


def get_keys(master_key: MasterKey, user: User) -> tuple[str | None, str | None]:
    if not user.api_key or not user.secret_key:
        return None, None
    return user.api_key, master_key.open_text(user.secret_key, f"user.secret_key:{user.uuid}")


def set_password(user: User, password: str) -> None:
    user.password = hash_password(password)


def find_user(session: Session, username: str, domain_path: str = "/") -> User | None:
    return session.scalars(
        select(User).join(Account, User.account_id == Account.id).join(Domain, Account.domain_id == Domain.id)
        .where(User.username == username, User.removed.is_(None), Domain.path == domain_path)).first()
