"""Request signatures (HMAC-SHA1, versions 1 and 3) and login sessions.

The server rebuilds the string the client signed from *all* parameters but ``signature``,
in CloudStack's canonical form (Java ``URLEncoder`` encoding, ``+`` as ``%20``, names
sorted as received, everything lower-cased). Clients differ on a few characters, so a
small set of tolerated variants is tried after the exact form; each comparison is made
in constant time.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta, timezone
from typing import Iterator
from urllib.parse import quote

from sqlalchemy import update
from sqlalchemy.orm import Session

from ..db import in_readonly_transaction
from .callers import CallerCache
from ..models import Account, ApiSession, User
from ..models.base import utcnow
from ..errors import Unauthorized

SESSION_TIMEOUT_SEC = 1800
#: ``last_access`` is written at most this often per session.
SESSION_TOUCH_SEC = 30


def _java_encode(value: str) -> str:
    # URLEncoder keeps A-Z a-z 0-9 . - * _ and turns space into '+', which CloudStack then
    # replaces with %20. quote() with those safe characters gives the same string, except
    # that quote() never encodes '~' (RFC 3986 unreserved) while URLEncoder does.
    return quote(value, safe=".-*_").replace("~", "%7E")


def canonical_strings(params: list[tuple[str, str]]) -> Iterator[str]:
    """The exact Java form first, then the variants real clients produce (each once, built only
    when the ones before did not match)."""
    pairs = [(k, v) for k, v in params if k.lower() != "signature"]
    encoded = [(k, _java_encode(v)) for k, v in pairs]
    exact = "&".join(f"{k}={v}" for k, v in sorted(encoded, key=lambda kv: kv[0])).lower()
    yielded = {exact}
    yield exact
    by_lower = "&".join(f"{k}={v}" for k, v in sorted(encoded, key=lambda kv: kv[0].lower())).lower()
    for base in (exact, by_lower):
        for candidate in (base, base.replace("%7e", "~"), base.replace("%7e", "~").replace("%5b", "[").replace("%5d", "]")):
            if candidate not in yielded:
                yielded.add(candidate)
                yield candidate


def sign(query: str, secret: str) -> str:
    digest = hmac.new(secret.encode(), query.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def parse_expires(value: str) -> datetime | None:
    """CloudStack's accepted ``expires`` forms: ``+0000``, ``+00:00``, ``Z``, fractions, legacy ``'Z'Z``."""
    text = value.strip()
    for fmt in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%SZ%z"):
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


# Plain CloudStack parameter names: letters, digits, ``_`` and ``.``, with ``[n]`` map indexes
# (``details[0].key``). Anything else could smuggle ``&`` or ``=`` into the signed string.
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_.]+(?:\[[0-9]+\][A-Za-z0-9_.]*)*$")


def check_parameter_names(params: list[tuple[str, str]]) -> None:
    """Refuse (401) names that are not plain, and names sent twice (in any case).

    The signed string is built from names as received, unencoded, so a name like
    ``response=json&signatureversion`` would sign the same as two real parameters while
    the server sees neither; and of two ``apiKey``/``apikey`` only one is used.
    """
    seen: set[str] = set()
    for name, _value in params:
        lowered = name.lower()
        if not _PLAIN_NAME.match(name) or lowered in seen:
            raise Unauthorized()
        seen.add(lowered)


def verify_signature(callers: CallerCache, params: list[tuple[str, str]]) -> User:
    """Return the enabled user whose key signed ``params``; raise 401 otherwise."""
    lowered = {k.lower(): v for k, v in params}
    api_key, signature = lowered.get("apikey"), lowered.get("signature")
    if not api_key or not signature:
        raise Unauthorized()
    if lowered.get("signatureversion") == "3":
        expires = parse_expires(lowered.get("expires", ""))
        if expires is None or expires < datetime.now(timezone.utc):
            raise Unauthorized()
    found = callers.key_holder(api_key)
    if found is None:
        raise Unauthorized()
    user, secret = found
    if user.state != "enabled" or user.account.state != "enabled" or user.account.removed or secret is None:
        raise Unauthorized()
    given = signature.encode()
    # Each comparison is constant-time. Stopping at the first match tells a caller only which
    # spelling of its own (public) parameters matched, never anything about the secret.
    if not any(hmac.compare_digest(sign(candidate, secret).encode(), given)
               for candidate in canonical_strings(params)):
        raise Unauthorized()
    return user


# ------------------------------------------------------------------ sessions
def _digest(session_key: str) -> str:
    return hashlib.sha256(session_key.encode()).hexdigest()


def new_session(session: Session, user: User) -> tuple[str, str]:
    """Create a session; returns (session key, JSESSIONID). Only a digest is stored."""
    session_key = base64.urlsafe_b64encode(secrets.token_bytes(20)).decode().rstrip("=")
    jsessionid = secrets.token_hex(16).upper()
    session.add(ApiSession(session_key_hash=_digest(session_key), jsessionid=jsessionid, user_id=user.id))
    return session_key, jsessionid


def session_user(session: Session, callers: CallerCache, param_key: str,
                 cookie_key: str) -> tuple[User, int | None]:
    """The user of a live session, and the id of its session row when ``last_access`` is due a refresh
    that this (read-only) transaction could not write; the caller then calls :func:`touch_session`.

    The key must come as the ``sessionkey`` parameter: a cookie alone is what a cross-site request
    carries, so it never authorises anything. A cookie, when sent too, must be the same key.
    """
    if not param_key or (cookie_key and not hmac.compare_digest(param_key.encode(), cookie_key.encode())):
        raise Unauthorized("unable to verify user credentials")
    found = callers.live_session(_digest(param_key))
    now = utcnow()
    if found is None or found[1] < now - timedelta(seconds=SESSION_TIMEOUT_SEC):
        raise Unauthorized("unable to verify user credentials")
    row_id, last_access, user = found
    if user is None or user.removed or user.state != "enabled" or user.account.state != "enabled":
        raise Unauthorized("unable to verify user credentials")
    if (now - last_access).total_seconds() <= SESSION_TOUCH_SEC or not callers.claim_touch(row_id, SESSION_TOUCH_SEC):
        return user, None  # keep writes rare
    if in_readonly_transaction():
        return user, row_id
    touch_session(session, row_id)
    return user, None


def touch_session(session: Session, row_id: int) -> None:
    """Record activity on a session (its idle timeout counts from here)."""
    session.execute(update(ApiSession).where(ApiSession.id == row_id, ApiSession.removed.is_(None))
                    .values(last_access=utcnow()))


def end_session(session: Session, session_key: str | None) -> None:
    if session_key:
        session.execute(update(ApiSession).where(ApiSession.session_key_hash == _digest(session_key))
                        .values(removed=utcnow()))


def user_account(user: User) -> Account:
    return user.account
