"""``/health``: is this server process able to serve? For load balancers and supervisors.

Healthy when the database answers a trivial query within :data:`DB_TIMEOUT_SEC`, and this
process's job worker threads are alive (a process whose workers died would accept async
commands and never run them). HSM reachability is not part of it: one unreachable token must
not take every server out of a load balancer; it is shown by ``listHSMProfiles`` and metrics.
"""
from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

DB_TIMEOUT_SEC = 2.0


class DatabasePing:
    """``SELECT 1`` on a thread of its own, waited for at most ``timeout`` seconds.

    At most one ping runs at a time: while a ping hangs (a database host that swallows
    packets), further health checks wait on that same ping rather than piling up threads.
    """

    def __init__(self, db: Any) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._running: Future | None = None

    def __call__(self, timeout: float = DB_TIMEOUT_SEC) -> str:
        with self._lock:
            if self._running is None or self._running.done():
                self._running = Future()
                threading.Thread(target=self._ping, args=(self._running,), name="health-db-ping",
                                 daemon=True).start()
            running = self._running
        try:
            running.result(timeout=timeout)
            return "ok"
        except FutureTimeout:
            return "timeout"
        except Exception:  # noqa: BLE001 - which error does not matter to a load balancer
            return "unreachable"

    def _ping(self, result: Future) -> None:
        try:
            if self.db.is_sqlite:
                self._ping_sqlite_file()
            else:
                with self.db.engine.connect() as conn:
                    conn.exec_driver_sql("SELECT 1")
            result.set_result(True)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting request
            result.set_exception(exc)

    def _ping_sqlite_file(self) -> None:
        """A new connection, not a pooled one: a pooled SQLite connection keeps the file open and
        goes on answering after the file is gone or its disk unmounted."""
        path = self.db.url.split("///", 1)[-1]
        if not path or path == ":memory:":
            return
        conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=DB_TIMEOUT_SEC)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            conn.close()


def job_worker_status(state: Any) -> str:
    worker = state.worker
    if worker is None:
        return "disabled"  # an app built without background work (start_background False)
    # JobWorker keeps its threads (job loops and the heartbeat) in ``_threads``; a stopped or
    # crashed worker has fewer live ones than it started.
    threads = list(getattr(worker, "_threads", ()))
    if not threads:
        return "not started"
    return "ok" if all(t.is_alive() for t in threads) else "stopped"


def check(state: Any, ping: DatabasePing) -> tuple[bool, dict[str, Any]]:
    """(healthy, body). The body names only check results, nothing about the deployment."""
    checks = {"database": ping(), "jobworker": job_worker_status(state)}
    healthy = checks["database"] == "ok" and checks["jobworker"] in ("ok", "disabled")
    return healthy, {"status": "ok" if healthy else "unhealthy", "checks": checks}
