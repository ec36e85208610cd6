"""Engine, transactions, schema creation and upgrades.

One :class:`Database` per process. Services and repositories never commit: the caller
(the dispatcher, a job, the CLI) owns the transaction through :meth:`Database.transaction`.

MySQL/MariaDB schemas are built by the versioned scripts in ``db/`` (``schema-*.sql``),
applied in order and recorded in the ``version`` table. SQLite, the embedded default,
is built from the models; a test proves models and scripts agree.
"""
from __future__ import annotations

import contextvars
import logging
import random
import re
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from sqlalchemy import create_engine, event, inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.schema import CreateColumn

from .cache import TtlCache
from .models import Base, Version, utcnow
from .observability import metrics

log = logging.getLogger(__name__)
_ambient: contextvars.ContextVar[Session | None] = contextvars.ContextVar("kms_ambient_session", default=None)


_readonly: contextvars.ContextVar[bool] = contextvars.ContextVar("kms_readonly_transaction", default=False)


def in_readonly_transaction() -> bool:
    """True inside ``transaction(readonly=True)``: on SQLite such a transaction must not write."""
    return _readonly.get()


def current_session() -> Session | None:
    """The session of the transaction this code runs in, if any (see :meth:`Database.transaction`)."""
    return _ambient.get()

# Upgrade scripts in the order they apply, named like CloudStack's.
UPGRADE_SCRIPTS = ["schema-42210to42300.sql", "schema-42300-kms-cluster.sql", "schema-42300-kms-deletion.sql", "schema-42300-kms-throttle.sql"]
CURRENT_VERSION = "4.23.0"


def schema_dir() -> Path:
    """``db/`` of a source checkout, else the copy installed under ``<prefix>/share``."""
    here = Path(__file__).resolve().parent.parent / "db"
    if here.is_dir():
        return here
    return Path(sys.prefix) / "share" / "cloudstack-kms" / "db"


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers run beside one writer; busy_timeout makes writers queue instead of failing.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict = {"future": True}
        if self.is_sqlite:
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            # READ COMMITTED, as CloudStack runs MySQL: every statement sees the latest commits, and
            # InnoDB takes no gap locks, which keeps concurrent servers from deadlocking.
            #
            # No reset on return: every transaction here ends in a commit or a rollback of its own
            # (Database.transaction, engine.begin, Connection.close), so the pool's extra ROLLBACK
            # was a wasted round trip per request. No pre-ping either: see _ping_if_idle.
            kwargs.update(pool_recycle=3600, pool_size=10, max_overflow=20, pool_reset_on_return=None,
                          isolation_level="READ COMMITTED")
        self.engine: Engine = create_engine(url, **kwargs)
        #: Engine of read-only transactions: the same as :attr:`engine` on SQLite; on MySQL/MariaDB
        #: its own pool of connections in autocommit mode (see :meth:`transaction`).
        self.reader: Engine = self.engine
        if not self.is_sqlite:
            self.reader = create_engine(url, **{**kwargs, "isolation_level": "AUTOCOMMIT"},
                                        skip_autocommit_rollback=True)
            for engine in (self.engine, self.reader):
                event.listen(engine, "checkout", _ping_if_idle)
                event.listen(engine, "checkin", _note_checkin)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
            # Let SQLAlchemy issue BEGIN itself so that transactions really start where we say.
            @event.listens_for(self.engine, "connect")
            def _no_pysqlite_begin(dbapi_conn, _r):  # noqa: ANN001
                dbapi_conn.isolation_level = None

            # IMMEDIATE takes the write lock up front: a deferred transaction that later writes
            # can fail with SQLITE_BUSY at once instead of waiting for busy_timeout.
            @event.listens_for(self.engine, "begin")
            def _begin_immediate(conn):  # noqa: ANN001
                # Read-only transactions start deferred: in WAL mode they neither wait for nor block
                # a writer (a job holding the write lock for seconds must not stall every poll).
                conn.exec_driver_sql("BEGIN" if _readonly.get() else "BEGIN IMMEDIATE")
        self._sessions = sessionmaker(self.engine, expire_on_commit=False, info={"database": self})
        self._read_sessions = (self._sessions if self.reader is self.engine else
                               sessionmaker(self.reader, expire_on_commit=False, info={"database": self}))
        self._watchers: list[tuple[tuple[type, ...], Callable[[], None]]] = []
        self._caches: dict[str, TtlCache] = {}
        self._caches_lock = threading.Lock()
        for sessions in {self._sessions, self._read_sessions}:
            event.listen(sessions, "before_flush", _note_flushed_models)
            event.listen(sessions, "do_orm_execute", _note_bulk_models)
            event.listen(sessions, "after_commit", self._after_commit)
            event.listen(sessions, "after_rollback", _forget_changed_models)

    def watch(self, models: tuple[type, ...], callback: Callable[[], None]) -> None:
        """Call ``callback`` after each commit of this process that changed a row of ``models``
        (through the ORM: objects flushed, or bulk ``update``/``delete`` statements)."""
        self._watchers.append((models, callback))

    def cache(self, name: str, ttl_sec: float, models: tuple[type, ...], max_entries: int = 4096) -> TtlCache:
        """This process's cache ``name`` of what is read from ``models``: made on first use, its
        entries expire after ``ttl_sec`` (how late a change made through another server may be
        seen), and it is cleared after each commit of this process that changed one of ``models``."""
        cache = self._caches.get(name)  # a dict read is atomic; the lock only guards the making
        if cache is None:
            with self._caches_lock:
                cache = self._caches.get(name)
                if cache is None:
                    cache = self._caches[name] = TtlCache(ttl_sec, max_entries)
                    self.watch(models, cache.clear)
        return cache

    def _after_commit(self, session: Session) -> None:
        changed = session.info.pop(_CHANGED, None)
        if not changed:
            return
        for models, callback in self._watchers:
            if any(issubclass(c, models) for c in changed):
                try:
                    callback()
                except Exception:  # noqa: BLE001 - the commit is done; never fail it afterwards
                    log.exception("a commit watcher failed")

    def dispose(self) -> None:
        self.engine.dispose()
        if self.reader is not self.engine:
            self.reader.dispose()

    @contextmanager
    def transaction(self, readonly: bool = False) -> Iterator[Session]:
        """Commit on success, roll back on any error.

        ``readonly`` promises no writes (list and query commands); on SQLite it starts a deferred
        transaction that does not queue behind writers. On MySQL/MariaDB it runs on a connection
        in autocommit mode and ends without a COMMIT: a round trip saved on every list and poll.
        Under READ COMMITTED each statement saw the latest commits anyway, so what a read sees
        does not change; a statement that does write (the batched ``last_polled`` update)
        commits on its own.
        """
        if readonly and self._read_sessions is not self._sessions:
            with self._read_only() as session:
                yield session
            return
        ro_token = _readonly.set(readonly)
        try:
            with self._sessions() as session:
                with session.begin():
                    token = _ambient.set(session)
                    try:
                        yield session
                    finally:
                        _ambient.reset(token)
        finally:
            _readonly.reset(ro_token)

    @contextmanager
    def _read_only(self) -> Iterator[Session]:
        ro_token = _readonly.set(True)
        try:
            with self._read_sessions() as session:
                token = _ambient.set(session)
                try:
                    yield session
                finally:
                    _ambient.reset(token)
                if session.new or session.dirty or session.deleted or session.info.get(_CHANGED):
                    session.commit()  # a write after all: flushed, and this process's caches told
                # else closing sends nothing: in autocommit mode there is nothing to end
        finally:
            _readonly.reset(ro_token)

    # ---------------------------------------------------------------- schema
    def current_versions(self) -> set[str]:
        if not inspect(self.engine).has_table("version"):
            return set()
        with self.transaction() as s:
            return set(s.scalars(select(Version.version)))

    def create_schema(self) -> list[str]:
        """Create or upgrade the schema; returns the upgrade steps applied now."""
        applied = self.current_versions()
        steps: list[str] = []
        if self.is_sqlite:
            Base.metadata.create_all(self.engine)
            if applied:
                self._add_new_sqlite_columns()
            steps = [s for s in UPGRADE_SCRIPTS if s not in applied]
        else:
            for script in UPGRADE_SCRIPTS:
                if script in applied:
                    continue
                self._run_script(schema_dir() / script)
                steps.append(script)
        if steps:
            with self.transaction() as s:
                for step in steps:
                    s.add(Version(version=step, updated=utcnow(), step="Complete"))
        return steps

    def _add_new_sqlite_columns(self) -> None:
        """An existing SQLite database gets the columns and indexes added to the models since it
        was made: ``create_all`` only creates missing tables. New columns are always nullable or
        have a default (as the MySQL upgrade steps add them), so ``ADD COLUMN`` suffices."""
        with self.engine.begin() as conn:
            inspector = inspect(conn)
            for table in Base.metadata.sorted_tables:
                present = {c["name"] for c in inspector.get_columns(table.name)}
                for column in table.columns:
                    if column.name in present:
                        continue
                    ddl = CreateColumn(column).compile(dialect=self.engine.dialect)
                    log.info("adding column %s.%s", table.name, column.name)
                    conn.exec_driver_sql(f'ALTER TABLE "{table.name}" ADD COLUMN {ddl}')
                for index in table.indexes:
                    index.create(conn, checkfirst=True)

    def _run_script(self, path: Path) -> None:
        log.info("applying %s", path.name)
        with self.engine.begin() as conn:
            for statement in split_sql(path.read_text()):
                run_ddl(conn, statement)


def cache_of(session: Session, name: str, ttl_sec: float, models: tuple[type, ...],
             max_entries: int = 4096) -> TtlCache | None:
    """:meth:`Database.cache` of the session's database (None for a session made elsewhere)."""
    db = session.info.get("database")
    return db.cache(name, ttl_sec, models, max_entries) if db is not None else None


#: A pooled connection unused for longer is checked (a ping) before it serves again.
IDLE_PING_SEC = 1.0


def _ping_if_idle(dbapi_conn, record, _proxy) -> None:  # noqa: ANN001
    """Liveness check of a pooled connection, only when it sat idle.

    Pinging on every checkout cost a round trip per request (a third of a small call on MariaDB).
    A connection in steady use needs none: if the database restarts under load, the first failed
    statement makes SQLAlchemy invalidate every connection of the pool made before it, so no stale
    one is handed out again. What that misses is a restart while the pool sat idle, which this
    catches: the pool then replaces the connection (DisconnectionError) and the request proceeds.
    """
    last = record.info.get("checked_in_at")
    if last is None or time.monotonic() - last <= IDLE_PING_SEC:
        return
    try:
        dbapi_conn.ping()
    except Exception:  # noqa: BLE001 - any failure: the connection is unusable
        raise DisconnectionError() from None


def _note_checkin(_dbapi_conn, record) -> None:  # noqa: ANN001
    if record is not None:
        record.info["checked_in_at"] = time.monotonic()


_CHANGED = "changed_models"


def _note_flushed_models(session: Session, _context, _instances) -> None:  # noqa: ANN001
    changed = session.info.setdefault(_CHANGED, set())
    for obj in (*session.new, *session.dirty, *session.deleted):
        changed.add(type(obj))


def _note_bulk_models(state) -> None:  # noqa: ANN001 - ORMExecuteState
    if (state.is_update or state.is_delete or state.is_insert) and state.bind_mapper is not None:
        state.session.info.setdefault(_CHANGED, set()).add(state.bind_mapper.class_)


def _forget_changed_models(session: Session) -> None:
    session.info.pop(_CHANGED, None)


#: MySQL/MariaDB errors of an unreachable, restarting or overloaded server, and lock timeouts:
#: expected in operation, not bugs. (Client 2002/2003/2006/2013/2055: cannot connect, gone away,
#: lost; server 1040 too many connections, 1053/1927 shutdown or killed, 1205/1213 lock wait or
#: deadlock.)
_MYSQL_TRANSIENT = {1040, 1053, 1205, 1213, 1927, 2002, 2003, 2006, 2013, 2055}
_SQLITE_TRANSIENT = ("database is locked", "unable to open database file", "disk i/o error")


def database_failure(exc: BaseException | None) -> str | None:
    """One line on a failure of the database itself (down, restarting, connection lost, lock
    timeouts), or None for any other error, bugs included. Such failures are expected in
    operation: they are logged as this line, not with a traceback, and never with the statement
    or its values. ``exc`` may be SQLAlchemy's wrapper or the driver's own exception."""
    if exc is None:
        return None
    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    args = getattr(orig, "args", ())
    code = args[0] if args and isinstance(args[0], int) else None
    invalidated = isinstance(exc, DBAPIError) and exc.connection_invalidated
    transient = (code in _MYSQL_TRANSIENT or invalidated
                 or (type(orig).__module__ == "sqlite3" and args and str(args[0]).lower() in _SQLITE_TRANSIENT))
    if not transient:
        return None
    return f"database error ({type(orig).__name__}{f' {code}' if code is not None else ''})"


#: MySQL's answers to a DDL statement that was applied before: table exists (1050), duplicate
#: column (1060), duplicate key name (1061). MySQL has no ``ADD COLUMN IF NOT EXISTS`` (MariaDB
#: has), so an upgrade step adds one column or index per statement and a rerun skips those.
_ALREADY_APPLIED = {1050, 1060, 1061}


def run_ddl(conn, statement: str) -> None:  # noqa: ANN001 - a SQLAlchemy Connection
    """One statement of an upgrade script; one applied before (a rerun after a script stopped half
    way: DDL is not transactional) is skipped."""
    try:
        conn.exec_driver_sql(statement)
    except DBAPIError as exc:
        args = getattr(exc.orig, "args", ())
        if not (args and args[0] in _ALREADY_APPLIED):
            raise
        log.info("already applied: %s", args[1] if len(args) > 1 else statement.split("(", 1)[0])


#: A transaction that lost to another: InnoDB deadlock or Galera certification failure (1213),
#: lock wait timeout (1205). The database rolled it back; running it again is the cure.
_WRITE_CONFLICTS = {1205, 1213}


#: Attempts of a transaction that lost a write conflict. The database rolled it back whole, so
#: running it again is safe (external effects, a KEK or an image, are undone on rollback).
CONFLICT_ATTEMPTS = 5


def is_write_conflict(exc: BaseException) -> bool:
    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    args = getattr(orig, "args", ())
    return bool(args) and isinstance(args[0], int) and args[0] in _WRITE_CONFLICTS


def conflict_pause(attempt: int, where: str) -> None:
    """A short, jittered pause before running a conflicting transaction again, so the two that
    collided do not collide again in step. Counted in the metrics under ``where``."""
    metrics.record_write_conflict(where)
    time.sleep(random.uniform(0.005, 0.02) * attempt)


def split_sql(script: str) -> list[str]:
    """Split a DDL script into statements (no procedures or quoted semicolons in ours)."""
    without_comments = re.sub(r"^\s*--.*$", "", script, flags=re.M)
    return [s.strip() for s in without_comments.split(";") if s.strip()]
