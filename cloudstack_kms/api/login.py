"""``login`` and ``logout``: username/password sessions, as the web UI and CloudMonkey use them."""
from __future__ import annotations

import functools
import hmac
import secrets
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Response, request
from sqlalchemy import select

from ..app_state import AppState
from ..models import Account, Domain, User
from ..security.passwords import hash_password, verify_password
from ..services import events
from . import auth
from ..errors import ACCOUNT_ERROR, ApiError, Unauthorized
from .login_throttle import LoginThrottle
from .render import prune, respond, respond_error

COOKIE_PATH = "/client"


def _login_failed(username: str, domain_ref: str) -> ApiError:
    return ApiError(f"Failed to authenticate user {username} in domain {domain_ref}; please provide valid credentials",
                    code=ACCOUNT_ERROR, cserrorcode=None)


def _find_domain(session, params: dict[str, str]) -> Domain:
    domain_id = params.get("domainid")
    if domain_id:
        stmt = select(Domain).where(Domain.removed.is_(None))
        stmt = stmt.where(Domain.id == int(domain_id)) if domain_id.isdigit() else stmt.where(Domain.uuid == domain_id)
        domain = session.scalars(stmt).first()
        if domain is None:
            raise Unauthorized("Invalid domain id entered, please enter a valid one")
        return domain
    path = (params.get("domain") or "/").strip()
    if not path.startswith("/"):
        path = "/" + path
    if not path.endswith("/"):
        path += "/"
    if path.upper().startswith("/ROOT/"):
        path = path[5:]
    domain = session.scalars(select(Domain).where(Domain.path == path, Domain.removed.is_(None))).first()
    if domain is None:
        raise ApiError(f"Unable to find the domain from the path {path}", code=ACCOUNT_ERROR, cserrorcode=None)
    return domain


@functools.lru_cache(maxsize=1)
def _stand_in_hash() -> str:
    """A hash of a random password, verified when there is no real one to verify."""
    return hash_password(secrets.token_urlsafe(16))


def timezone_offset(name: str | None) -> str:
    """Hours east of UTC as upstream prints a double (``"0.0"``, ``"5.5"``, ``"-8.0"``); the UI
    needs the field even for a user without a time zone."""
    if not name:
        return "0.0"
    try:
        offset = datetime.now(ZoneInfo(name)).utcoffset()
    except (ZoneInfoNotFoundError, ValueError):
        return "0.0"
    return str((offset.total_seconds() if offset else 0) / 3600)


def login(state: AppState, params: dict[str, str], fmt: str) -> Response:
    if request.method != "POST":
        return Response("Please use HTTP POST to authenticate using this API", status=405, content_type="text/plain")
    username, password = params.get("username", ""), params.get("password", "")
    previous = request.cookies.get("sessionkey")
    if previous:
        # As upstream, a login first ends the session the browser already has.
        with state.db.transaction() as session:
            auth.end_session(session, previous)
    throttle: LoginThrottle = state.services.setdefault("login_throttle", LoginThrottle())
    address = request.remote_addr or ""
    try:
        with state.db.transaction() as session:
            domain = _find_domain(session, params)
            user_key = f"{domain.id}/{username.lower()}"
            user = session.scalars(
                select(User).join(Account, User.account_id == Account.id)
                .where(User.username == username, User.removed.is_(None), Account.domain_id == domain.id)).first()
            # The password hash is always computed (against a stand-in when there is no such user
            # or the caller is throttled), so the answer takes as long whoever is asked about.
            blocked = throttle.blocked(user_key, address)
            checked = verify_password(user.password if user is not None and not blocked else _stand_in_hash(),
                                      password or " ")
            if (blocked or not checked or user is None or not password or user.state != "enabled"
                    or user.account.state != "enabled"):
                throttle.failed(user_key, address)
                raise _login_failed(username, str(domain.id))
            throttle.succeeded(user_key, address)
            session_key, jsessionid = auth.new_session(session, user)
            account = user.account
            events.record(session, event_type="USER.LOGIN", description=f"user has logged in from IP Address "
                          f"{request.remote_addr}", user=user, account=account)
            body = {
                "username": user.username, "userid": user.uuid, "domainid": account.domain.uuid,
                "timeout": auth.SESSION_TIMEOUT_SEC, "account": account.account_name,
                "firstname": user.firstname, "lastname": user.lastname, "type": str(account.type),
                "timezone": user.timezone, "timezoneoffset": timezone_offset(user.timezone),
                "registered": "false", "sessionkey": session_key,
                "is2faenabled": "false", "is2faverified": "true", "issuerfor2fa": "CloudStack",
            }
    except ApiError as err:
        return respond_error("loginresponse", err, fmt)
    resp = respond("loginresponse", prune(body), fmt)  # no nulls (timezone), as upstream
    # HttpOnly: no script reads them (the UI keeps the key from the body). SameSite=Lax: not sent
    # on cross-site subrequests. Neither authorises a call alone: the ``sessionkey`` parameter must.
    secure = state.settings.secure_cookies or request.is_secure
    for name, value in (("JSESSIONID", jsessionid), ("sessionkey", session_key)):
        resp.set_cookie(name, value, path=COOKIE_PATH, httponly=True, samesite="Lax", secure=secure)
    return resp


def logout(state: AppState, params: dict[str, str], fmt: str) -> Response:
    # Only the ``sessionkey`` parameter ends a session: a cross-site request carries the cookie alone.
    key = params.get("sessionkey")
    cookie = request.cookies.get("sessionkey")
    if key and (not cookie or hmac.compare_digest(key.encode(), cookie.encode())):
        with state.db.transaction() as session:
            auth.end_session(session, key)
    resp = respond("logoutresponse", {"description": "success"}, fmt)
    for name in request.cookies:
        resp.set_cookie(name, "", max_age=0, path=COOKIE_PATH)
    return resp
