"""A cluster-wide named lock that dies with its holder.

MySQL/MariaDB: ``GET_LOCK`` on a dedicated connection — the server releases it when that
connection (or the process holding it) goes away. The lock name includes the database name,
since named locks are server-wide. SQLite, which serves one host: an
``flock`` on a file beside the database, released by the kernel when the process exits.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import text

from ...db import Database

_local_locks: dict[str, threading.Lock] = {}


@contextmanager
def cluster_lock(db: Database, name: str, wait_sec: float = 5.0) -> Iterator[bool]:
    """Yields True when this process holds ``name``; False when another holder kept it for ``wait_sec``."""
    if db.is_sqlite:
        with _file_lock(db, name, wait_sec) as held:
            yield held
        return
    with db.engine.connect() as conn:
        lock = server_lock_name(conn.execute(text("SELECT DATABASE()")).scalar() or "", name)
        got = conn.execute(text("SELECT GET_LOCK(:n, :w)"), {"n": lock, "w": int(wait_sec)}).scalar()
        try:
            yield got == 1
        finally:
            if got == 1:
                conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": lock})


def server_lock_name(database: str, name: str) -> str:
    """The ``GET_LOCK`` name of ``name`` for one database.

    MySQL/MariaDB named locks belong to the server, not to a database: two deployments (or test
    databases) on one server must not share a lock. Names longer than MySQL's 64 characters are
    shortened with a digest.
    """
    full = f"{database}:{name}"
    if len(full) <= 64:
        return full
    return f"{full[:23]}~{hashlib.sha256(full.encode()).hexdigest()[:40]}"


@contextmanager
def _file_lock(db: Database, name: str, wait_sec: float) -> Iterator[bool]:
    path = db.url.split("///", 1)[-1]
    if not path or path == ":memory:":
        lock = _local_locks.setdefault(name, threading.Lock())
        got = lock.acquire(timeout=wait_sec)
        try:
            yield got
        finally:
            if got:
                lock.release()
        return
    lock_path = Path(f"{path}.{name}.lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait_sec
        held = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.05)
        try:
            yield held
        finally:
            if held:
                fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
