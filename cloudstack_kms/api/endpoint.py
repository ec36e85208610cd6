"""``/client/api``: authenticate, authorise, validate, dispatch, render.

The dispatcher owns the transaction: a sync command runs inside one transaction that is
committed on success and rolled back on any error; an async command only inserts its job
row (and, for create commands, its new object) before the commit, then wakes a worker.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, current_app, request
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from ..app_state import AppState
from ..db import CONFLICT_ATTEMPTS, conflict_pause, is_write_conflict
from ..jobs import queue
from ..models import User
from ..observability import metrics
from ..services import events
from . import auth, login as login_flow, throttle
from .callers import caller_cache
from .command import AsyncCommand, Command
from .context import CallContext
from ..errors import (GENERIC_INTERNAL_TEXT, INTERNAL_ERROR, ApiError, CloudRuntimeError, Unauthorized,
                     UnsupportedAction)
from .parse import parse_args
from .render import respond, respond_error, result_body

log = logging.getLogger(__name__)
bp = Blueprint("api", __name__)

# Largest request accepted (query string and form body together are far smaller in practice).
MAX_REQUEST_BYTES = 16 * 1024 * 1024

# Texts of these codes are hidden from callers who are not root admins, as upstream.
_HIDDEN_FOR_NON_ROOT = {530, 533, 534}


def state() -> AppState:
    return current_app.extensions["cloudstack_kms"]


def request_params() -> list[tuple[str, str]]:
    """Query string and form body together, names as received (they are signed that way)."""
    pairs = list(request.args.items(multi=True))
    if request.method == "POST":
        pairs += list(request.form.items(multi=True))
    return pairs


@bp.route("/client/api", methods=["GET", "POST"], strict_slashes=False)
@bp.route("/client/api/", methods=["GET", "POST"])
@bp.route("/client/api/<path:_rest>", methods=["GET", "POST"])
def api(_rest: str | None = None) -> Response:
    started = time.perf_counter()
    response, command = answer()
    metrics.record_request(command, response.status_code, time.perf_counter() - started)
    return response


def answer() -> tuple[Response, str]:
    """The response, and the command to count it under: a registered name, else ``unknown``
    (metric labels must stay few whatever callers send)."""
    try:
        pairs = request_params()
    except HTTPException as exc:  # a body too large or unreadable: still CloudStack's envelope
        return http_error_response(exc), metrics.UNKNOWN_COMMAND
    params: dict[str, str] = {}
    for name, value in pairs:
        params.setdefault(name.lower(), value)
    fmt = "json" if params.get("response", "").lower() == "json" else "xml"
    command = params.get("command", "")
    app_state = state()
    cls = app_state.registry.get(command)
    label = cls.api_name if cls is not None else command if command in ("login", "logout") else metrics.UNKNOWN_COMMAND
    try:
        auth.check_parameter_names(pairs)
    except ApiError as err:
        return respond_error("errorresponse", err, fmt), label
    if command in ("login", "logout"):
        try:
            return (login_flow.login if command == "login" else login_flow.logout)(app_state, params, fmt), label
        except Exception as exc:  # noqa: BLE001 - the database is down, or a bug: a clean 530 either way
            log_failure(command, exc)
            return respond_error(f"{command}response", CloudRuntimeError(GENERIC_INTERNAL_TEXT), fmt), label
    name = cls.response_name() if cls else "errorresponse"
    try:
        if cls is not None and not cls.requires_auth and not _credentials_given(params):
            return dispatch_public(app_state, cls, params, fmt), label
        return dispatch(app_state, cls, command, pairs, params, fmt), label
    except ApiError as err:
        return respond_error(name if err.code != 432 else "errorresponse", err, fmt), label


@dataclass
class Caller:
    user: User
    signed: bool
    #: A session row whose ``last_access`` is due and could not be written in a read-only transaction.
    session_to_touch: int | None = None


def _credentials_given(params: dict[str, str]) -> bool:
    return bool(params.get("apikey") or params.get("sessionkey"))


def dispatch_public(app_state: AppState, cls: type[Command], params: dict[str, str], fmt: str) -> Response:
    """The few commands the login page calls before anyone has logged in (``requires_auth`` False).
    They run with no caller and must not reveal anything a stranger may not know."""
    try:
        with app_state.db.transaction(readonly=True) as session:
            ctx = CallContext(session=session, user=None, account=None, state=app_state)  # type: ignore[arg-type]
            result = cls(ctx, parse_args(cls, params, session)).execute()
            body = result_body(result, None)
    except ApiError:
        raise  # answered by the caller
    except Exception as exc:  # noqa: BLE001
        log_failure(cls.api_name, exc)
        raise CloudRuntimeError(GENERIC_INTERNAL_TEXT) from None
    return respond(cls.response_name(), body, fmt)


def authenticate(app_state: AppState, session: Session, pairs: list[tuple[str, str]],
                 params: dict[str, str]) -> Caller:
    """A signed request wins over a session, as clients never send both."""
    callers = caller_cache(app_state)
    if "apikey" in params:
        return Caller(auth.verify_signature(callers, pairs), True)
    param_key, cookie_key = params.get("sessionkey", ""), request.cookies.get("sessionkey", "")
    if not param_key and not cookie_key:
        raise Unauthorized()
    user, to_touch = auth.session_user(session, callers, param_key, cookie_key)
    return Caller(user, False, to_touch)


def authorise(cls: type[Command] | None, command: str, user: User, signed: bool) -> type[Command]:
    role = user.account.role_type
    if cls is None:
        if not command:
            raise UnsupportedAction("Invalid request, no command sent")
        if signed:
            raise Unauthorized()
        if role == "Admin":
            raise UnsupportedAction(f"Unknown API command: {command}")
        raise UnsupportedAction(f"The API {command} does not exist or is not available for this account.")
    if role not in cls.roles:
        raise UnsupportedAction(f"The API [{command}] does not exist or is not available for the account "
                                f"{user.account.account_name}.")
    return cls


def dispatch(app_state: AppState, cls: type[Command] | None, command: str, pairs: list[tuple[str, str]],
             params: dict[str, str], fmt: str) -> Response:
    """Run the request; a transaction that lost a write conflict is run again (see
    :data:`CONFLICT_ATTEMPTS`): the caller never sees a conflict another server caused."""
    finish_short = app_state.settings.short_jobs_in_request
    attempt = 1
    while True:
        try:
            return dispatch_once(app_state, cls, command, pairs, params, fmt, finish_short)
        except queue.ShortJobFailed as failed:
            # Rolled back whole: run again with the job queued (not counted as a conflict), where the
            # failure is retried and, if it persists, settled as a failed job.
            log.debug("command %s: the job run in the request failed (%s); queueing it", command,
                      type(failed.__cause__).__name__)
            finish_short = False
        except _WriteConflict as conflict:
            if attempt == CONFLICT_ATTEMPTS:
                log_failure(command, conflict.cause)
                raise CloudRuntimeError(GENERIC_INTERNAL_TEXT) from None
            log.debug("command %s lost a write conflict (attempt %d of %d)", command, attempt, CONFLICT_ATTEMPTS)
            conflict_pause(attempt, "request")
            attempt += 1


class _WriteConflict(Exception):
    def __init__(self, cause: BaseException) -> None:
        super().__init__("write conflict")
        self.cause = cause


def dispatch_once(app_state: AppState, cls: type[Command] | None, command: str, pairs: list[tuple[str, str]],
                  params: dict[str, str], fmt: str, finish_short: bool = False) -> Response:
    job_to_wake = False
    role: str | None = None
    caller: Caller | None = None
    ctx: CallContext | None = None
    try:
        with app_state.db.transaction(readonly=bool(cls is not None and cls.read_only)) as session:
            caller = authenticate(app_state, session, pairs, params)
            user, signed = caller.user, caller.signed
            # Kept for hiding internal error texts from non-root callers after the transaction ends.
            role = user.account.role_type
            cls = authorise(cls, command, user, signed)
            throttle.check(app_state, session, user.account.id, role)
            ctx = CallContext(session=session, user=user, account=user.account, state=app_state)
            args = parse_args(cls, params, session)
            if issubclass(cls, AsyncCommand):
                result, job_to_wake = queue.submit(ctx, cls, params, args, finish_short)
            else:
                cmd = cls(ctx, args)
                result = cmd.execute()
                record_completed(ctx, cmd)
            body = result_body(result, ctx.role)
    except queue.ShortJobFailed:
        raise
    except ApiError as err:
        raise hide_internal(err, role) from None
    except Exception as exc:  # noqa: BLE001 - the one place that turns bugs into a clean 530
        if is_write_conflict(exc):
            raise _WriteConflict(exc) from None
        log_failure(command, exc)
        raise CloudRuntimeError(GENERIC_INTERNAL_TEXT) from None
    if ctx is not None:
        run_on_commit(ctx)
    if caller is not None and caller.session_to_touch is not None:
        touch_session(app_state, caller.session_to_touch)
    if job_to_wake and app_state.worker is not None:
        app_state.worker.wake()
    return respond(cls.response_name(), body, fmt)


def run_on_commit(ctx: CallContext) -> None:
    """What the command left to do once its transaction committed. Best effort: the answer is
    already decided and must not fail for this."""
    for action in ctx.on_commit:
        try:
            action()
        except Exception:  # noqa: BLE001
            log.exception("an after-commit action failed")


def log_failure(command: str, exc: BaseException) -> None:
    """A failed request's log entry. A database failure comes out as one line (see
    ``logging_setup``): during an outage every request fails so, and tracebacks buried the log."""
    log.error("command %s failed", command or "-", exc_info=exc)


def touch_session(app_state: AppState, row_id: int) -> None:
    """Refresh a session used by read-only calls, in a transaction of its own (at most every
    ``SESSION_TOUCH_SEC``), so a UI that only browses and polls is not logged out. Best effort:
    the answer is already computed and must not fail for this."""
    try:
        with app_state.db.transaction() as session:
            auth.touch_session(session, row_id)
    except Exception:  # noqa: BLE001
        log.warning("could not record session activity", exc_info=False)


def hide_internal(err: ApiError, role: str | None) -> ApiError:
    """Upstream hides the texts of 530/533/534 from callers who are not root admins."""
    if err.code in _HIDDEN_FOR_NON_ROOT and role is not None and role != "Admin":
        return ApiError(GENERIC_INTERNAL_TEXT, code=err.code, cserrorcode=err.cserrorcode)
    return err


def record_completed(ctx: CallContext, cmd: Command) -> None:
    if not cmd.event_type:
        return
    owner = getattr(cmd, "event_account", None) or ctx.account
    resource = getattr(cmd, "event_resource", None)
    events.record(ctx.session, event_type=cmd.event_type, description=cmd.event_description(), user=ctx.user,
                  account=owner, resource_id=getattr(resource, "id", None),
                  resource_type=getattr(cmd, "event_resource_type", None))


def internal_error_response(fmt: str) -> Response:
    return respond_error("errorresponse", ApiError(GENERIC_INTERNAL_TEXT, code=INTERNAL_ERROR), fmt)


def query_format() -> str:
    """The response format asked for in the query string alone (the body may be unreadable)."""
    for name, value in request.args.items(multi=True):
        if name.lower() == "response":
            return "json" if value.lower() == "json" else "xml"
    return "xml"


def http_error_response(exc: HTTPException) -> Response:
    code = exc.code or INTERNAL_ERROR
    text = GENERIC_INTERNAL_TEXT if code >= 500 else (exc.description or exc.name)
    return respond_error("errorresponse", ApiError(text, code=code), query_format())


def register_error_handlers(app: Any) -> None:
    """Anything that escapes (bugs in hooks, bad methods, bodies too large) still answers in
    CloudStack's shape on the API path, never as an HTML page or a stack trace."""
    app.config.setdefault("MAX_CONTENT_LENGTH", MAX_REQUEST_BYTES)
    app.config["MAX_FORM_MEMORY_SIZE"] = MAX_REQUEST_BYTES  # userdata and certificates come in forms

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response | HTTPException:
        if not request.path.startswith("/client/api"):
            return exc
        return http_error_response(exc)

    @app.errorhandler(500)
    def _internal(_exc: Exception) -> Response:
        return internal_error_response(query_format() if request else "json")
