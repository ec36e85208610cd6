"""Direct reads and writes on a test database, for what no API command does (yet).

Tests use it to check what only the database shows (the ``async_job`` rows, the
``mshost`` table) and to switch a user off behind the server's back.
"""
from __future__ import annotations

import sqlite3
import time
from typing import Any

from sqlalchemy import text

from cloudstack_kms.api import callers
from cloudstack_kms.db import Database
from cloudstack_kms.services import settings

from .server import KmsEnv


def query(kms: KmsEnv, sql: str, **params: Any) -> list[Any]:
    """Rows of a SQL select (plain SQL, so it does not depend on model classes).

    On SQLite the read goes through a plain ``sqlite3`` connection: a WAL reader never waits
    for a writer, whereas the server's engine starts every transaction with BEGIN IMMEDIATE.
    """
    if kms.db_url.startswith("sqlite"):
        conn = sqlite3.connect(kms.db_url.split("///", 1)[1], timeout=30)
        try:
            return [tuple(row) for row in conn.execute(sql, params)]
        finally:
            conn.close()
    database = Database(kms.db_url)
    try:
        with database.engine.connect() as conn:
            return list(conn.execute(text(sql), params))
    finally:
        database.dispose()


#: Servers cache callers and settings this long (see ``cloudstack_kms.cache``): a write made
#: behind their back is certain to be seen only after it.
SERVER_CACHE_SEC = max(callers.TTL_SEC + callers.STALE_GRACE_SEC, settings.CACHE_TTL_SEC)


def execute(kms: KmsEnv, sql: str, **params: Any) -> int:
    """Run one SQL write and commit it, then wait until running servers must see it; returns
    the row count."""
    database = Database(kms.db_url)
    try:
        with database.engine.begin() as conn:
            count = conn.execute(text(sql), params).rowcount
    finally:
        database.dispose()
    time.sleep(SERVER_CACHE_SEC + 0.05)
    return count


def set_user_state(kms: KmsEnv, user_uuid: str, state: str) -> None:
    assert execute(kms, "UPDATE user SET state = :state WHERE uuid = :uuid", state=state, uuid=user_uuid) == 1
