"""Read-only transactions (``Database.transaction(readonly=True)``): on MySQL/MariaDB they run in
autocommit mode and end without a round trip; what they see and what they write stays right."""
from __future__ import annotations

import secrets

import pytest
from sqlalchemy import delete, func, select, text, update

from cloudstack_kms.db import Database
from cloudstack_kms.models import Version, utcnow


@pytest.fixture()
def db(kms_env):
    database = Database(kms_env.db_url)
    yield database
    database.dispose()


@pytest.fixture()
def marker(db):
    """A throwaway ``version`` row (its name matches no upgrade script)."""
    name = f"test-{secrets.token_hex(6)}"
    with db.transaction() as s:
        s.add(Version(version=name, updated=utcnow(), step="Pending"))
    yield name
    with db.transaction() as s:
        s.execute(delete(Version).where(Version.version == name))


def step_of(db: Database, name: str) -> str:
    with db.transaction() as s:
        return s.scalar(select(Version.step).where(Version.version == name))


def test_a_read_sees_what_another_connection_committed_just_before(db, marker, backend):
    if backend != "mysql":
        pytest.skip("a SQLite read transaction keeps the snapshot of its first read (WAL)")
    other = Database(db.url)
    try:
        with db.transaction(readonly=True) as s:
            assert s.scalar(select(Version.step).where(Version.version == marker)) == "Pending"
            with other.transaction() as w:
                w.execute(update(Version).where(Version.version == marker).values(step="Seen"))
            # The same read-only transaction, next statement: the new commit is visible (READ
            # COMMITTED semantics, kept in autocommit mode).
            assert s.scalar(select(Version.step).where(Version.version == marker)) == "Seen"
    finally:
        other.dispose()


def test_a_write_in_a_read_only_transaction_is_kept(db, marker):
    """The batched ``last_polled`` update is such a write: it must not be lost."""
    with db.transaction(readonly=True) as s:
        s.execute(update(Version).where(Version.version == marker).values(step="Written")
                  .execution_options(synchronize_session=False))
    assert step_of(db, marker) == "Written"


def test_an_orm_change_in_a_read_only_transaction_is_flushed_and_committed(db, marker):
    with db.transaction(readonly=True) as s:
        s.scalars(select(Version).where(Version.version == marker)).one().step = "Flushed"
    assert step_of(db, marker) == "Flushed"


def test_read_only_transactions_send_no_commit_or_rollback_on_mysql(db, backend):
    if backend != "mysql":
        pytest.skip("SQLite reads run in a deferred transaction, which has to end")

    def counters(s) -> tuple[int, int, int]:
        conn = s.connection()
        status = dict(conn.exec_driver_sql(
            "SHOW SESSION STATUS WHERE Variable_name IN ('Com_commit', 'Com_rollback')").all())
        return conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar(), int(status["Com_commit"]), int(
            status["Com_rollback"])

    with db.transaction(readonly=True) as s:
        first = counters(s)
    for _ in range(5):
        with db.transaction(readonly=True) as s:
            s.scalar(select(func.count()).select_from(Version))
    with db.transaction(readonly=True) as s:
        last = counters(s)
    assert last[0] == first[0], "the pool handed out another connection"
    assert last[1:] == first[1:]
    with db.transaction() as s:  # a read-write transaction does commit, on its own connections
        assert s.connection().exec_driver_sql("SELECT @@autocommit").scalar() == 0
        s.execute(text("SELECT 1"))
