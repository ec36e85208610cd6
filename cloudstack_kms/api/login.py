"""``login`` and ``logout``: username/password sessions, as the web UI and CloudMonkey use them."""
from __future__ import annotations

from flask import Response, request
from sqlalchemy import select

from ..app_state import AppState
from ..models import Account, Domain, User
from ..security.passwords import verify_password
from ..services import events
from . import auth
from .errors import ACCOUNT_ERROR, ApiError, Unauthorized
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


def login(state: AppState, params: dict[str, str], fmt: str) -> Response:
    if request.method != "POST":
        return Response("Please use HTTP POST to authenticate using this API", status=405, content_type="text/plain")
    username, password = params.get("username", ""), params.get("password", "")
    previous = request.cookies.get("sessionkey")
    if previous:
        # As upstream, a login first ends the session the browser already has.
        with state.db.transaction() as session:
            auth.end_session(session, previous)
    try:
        with state.db.transaction() as session:
            domain = _find_domain(session, params)
            user = session.scalars(
                select(User).join(Account, User.account_id == Account.id)
                .where(User.username == username, User.removed.is_(None), Account.domain_id == domain.id)).first()
            if (user is None or not password or user.state != "enabled" or user.account.state != "enabled"
                    or not verify_password(user.password, password)):
                raise _login_failed(username, str(domain.id))
            session_key, jsessionid = auth.new_session(session, user)
            account = user.account
            events.record(session, event_type="USER.LOGIN", description=f"user has logged in from IP Address "
                          f"{request.remote_addr}", user=user, account=account)
            body = {
                "username": user.username, "userid": user.uuid, "domainid": account.domain.uuid,
                "timeout": auth.SESSION_TIMEOUT_SEC, "account": account.account_name,
                "firstname": user.firstname, "lastname": user.lastname, "type": str(account.type),
                "timezone": user.timezone, "registered": "false", "sessionkey": session_key,
                "is2faenabled": "false", "is2faverified": "true", "issuerfor2fa": "CloudStack",
            }
    except ApiError as err:
        return respond_error("loginresponse", err, fmt)
    resp = respond("loginresponse", prune(body), fmt)  # no nulls (timezone), as upstream
    resp.set_cookie("JSESSIONID", jsessionid, path=COOKIE_PATH, httponly=True, samesite="Lax")
    resp.set_cookie("sessionkey", session_key, path=COOKIE_PATH, httponly=True, samesite="Lax")
    return resp


def logout(state: AppState, params: dict[str, str], fmt: str) -> Response:
    key = params.get("sessionkey") or request.cookies.get("sessionkey")
    with state.db.transaction() as session:
        auth.end_session(session, key)
    resp = respond("logoutresponse", {"description": "success"}, fmt)
    for name in request.cookies:
        resp.set_cookie(name, "", max_age=0, path=COOKIE_PATH)
    return resp
