"""API throttling, as upstream's ApiRateLimitService (``api.throttling.*``).

Every authenticated call of an account that is not a root admin is counted in fixed windows of
``api.throttling.interval`` seconds; past ``api.throttling.max`` calls in a window further calls
get 429 with upstream's text until the window ends. Upstream counts in each management server's
memory; here the count is one row per account in ``api_rate_limit``, bumped by one atomic upsert
per call, so several servers (and gunicorn workers) enforce one limit together.

Cost: nothing but a cached settings read when throttling is off (the default) or the caller is a
root admin; when on, one upsert and one primary-key read per call, in a transaction of their own
(committed at once: the account's row lock must not be held for the whole call). On SQLite a
write call already holds the database's only write lock, so its count goes into the call's own
transaction instead (a second connection would wait for the first); read calls there queue for
the write lock for the count.

Windows follow each server's clock (``time.time()``), which NTP keeps within milliseconds of
the others'. ``api.throttling.cachesize`` bounds upstream's in-memory cache; the table needs no
such bound (one row per account) and the setting is kept for compatibility only.
"""
from __future__ import annotations

import math
import time

from sqlalchemy import case, select
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.orm import Session

from ..app_state import AppState
from ..db import CONFLICT_ATTEMPTS, conflict_pause, in_readonly_transaction, is_write_conflict
from ..errors import ApiError, CS_SERVER_API
from ..models.throttle import ApiRateLimit
from ..services import settings

API_LIMIT_EXCEED = 429
ROOT_ADMIN_ROLE = "Admin"


def limit_exceeded(retry_after_ms: int) -> ApiError:
    """Upstream's refusal (ApiRateLimitServiceImpl, thrown by ApiServer as a ServerApiException)."""
    return ApiError(f"The given user has reached his/her account api limit, please retry after [{retry_after_ms}] ms.",
                    code=API_LIMIT_EXCEED, cserrorcode=CS_SERVER_API)


def check(app_state: AppState, session: Session, account_id: int, role: str) -> None:
    """Count this call of ``account_id``; raise the 429 error once it is past the limit.
    ``session`` is the call's transaction (settings are read through it)."""
    if role == ROOT_ADMIN_ROLE:
        return  # upstream: "Account ... is Root Admin, in this case, API limit does not apply."
    enabled, interval, maximum = settings.get_values(session, "api.throttling.enabled", "api.throttling.interval",
                                                     "api.throttling.max")
    if not enabled:
        return
    now = time.time()
    window = int(now // interval) * interval
    if app_state.db.is_sqlite and not in_readonly_transaction():
        count = _count(session, account_id, window)
    else:
        count = _count_apart(app_state, account_id, window)
    if count > maximum:
        raise limit_exceeded(max(0, math.ceil((window + interval - now) * 1000)))


def _count_apart(app_state: AppState, account_id: int, window: int) -> int:
    """:func:`_count` in a transaction of its own, run again if it lost a write conflict."""
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            with app_state.db.transaction() as session:
                return _count(session, account_id, window)
        except Exception as exc:
            if attempt == CONFLICT_ATTEMPTS or not is_write_conflict(exc):
                raise
            conflict_pause(attempt, "throttle")
    raise AssertionError("unreachable")  # pragma: no cover


def _count(session: Session, account_id: int, window: int) -> int:
    """Add one call to the account's count in ``window`` (restarting it at 1 in a new window) and
    return the count. One upsert: concurrent calls from any server each add exactly one."""
    table = ApiRateLimit.__table__
    counted = case((table.c.window_start == window, table.c["count"] + 1), else_=1)
    if session.get_bind().dialect.name == "mysql":
        stmt = mysql.insert(table).values(account_id=account_id, window_start=window, count=1)
        # MySQL assigns left to right: ``count`` must be computed before ``window_start`` changes.
        stmt = stmt.on_duplicate_key_update([("count", counted), ("window_start", stmt.inserted.window_start)])
    else:
        stmt = sqlite.insert(table).values(account_id=account_id, window_start=window, count=1)
        stmt = stmt.on_conflict_do_update(index_elements=[table.c.account_id],
                                          set_={"count": counted, "window_start": window})
    session.execute(stmt)
    return session.scalar(select(table.c["count"]).where(table.c.account_id == account_id))
