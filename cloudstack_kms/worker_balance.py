"""Spread client connections evenly over gunicorn's worker processes.

Every worker waits on the same listening socket, and the first to wake takes the connection.
Clients keep their connections alive (CloudMonkey, the web UI, any HTTP library), so whoever
won the race serves every request on them for as long as they stay open. Measured with 16
keep-alive clients on 2 workers: splits from 8/9 to all 17 on one worker, which then serves
them on one core while the other worker idles; throughput varied by 2x from run to run.

Here each worker publishes how many connections it holds on a small shared board (made by
the master before it forks), and a worker holding more than the least loaded live sibling
leaves a waiting connection to that sibling: its listener answers ``accept`` with EAGAIN,
which gunicorn treats as "someone else took it". Two guards keep a connection from waiting:

* a sibling's count can only be too high, never too low (it is published at each accept and
  at each turn of the worker's main loop, which closes happen in), so a worker never defers
  to a sibling that is not really less loaded;
* a connection deferred for :data:`MAX_DEFER_SEC` is taken anyway: the sibling may be stuck.

Deferring places new connections only. Connections that are already open stay where they landed,
also when they landed unevenly (many clients reconnecting at once while a worker was still
closing old ones, or a restarted worker that starts with none). So a worker holding at least
:data:`SHED_EXCESS` more than a sibling answers one request with ``Connection: close`` (at most
one every :data:`SHED_INTERVAL_SEC`): legal after any response, and HTTP clients simply open a
new connection, which deferring then hands to the less loaded worker.
"""
from __future__ import annotations

import errno
import multiprocessing
import os
import threading
import time
from typing import Any

#: How long the busier worker pauses before looking at the listener again (its main loop only:
#: requests keep running in its threads).
DEFER_PAUSE_SEC = 0.001
#: Longest wait for a less loaded sibling before taking the connection regardless.
MAX_DEFER_SEC = 0.025
#: Connections held beyond the least loaded sibling's count before one is closed after its answer.
SHED_EXCESS = 2
#: At most one connection closed per interval: closes show up in the counts one loop turn late.
SHED_INTERVAL_SEC = 0.05


class ConnectionBoard:
    """Slots in shared memory, one per live worker: (pid, open connections)."""

    def __init__(self, slots: int) -> None:
        self._pids = multiprocessing.RawArray("l", slots)
        self._counts = multiprocessing.RawArray("l", slots)
        self._lock = multiprocessing.Lock()

    def claim(self, pid: int) -> int | None:
        """A free slot for worker ``pid`` (None if all are taken: that worker never defers)."""
        with self._lock:
            for slot, holder in enumerate(self._pids):
                if holder in (0, pid):
                    self._counts[slot] = 0
                    self._pids[slot] = pid
                    return slot
        return None

    def release(self, pid: int) -> None:
        """Worker ``pid`` is gone (called by the master, also after a crash)."""
        with self._lock:
            for slot, holder in enumerate(self._pids):
                if holder == pid:
                    self._pids[slot] = 0
                    self._counts[slot] = 0

    def publish(self, slot: int, count: int) -> None:
        self._counts[slot] = count  # one aligned machine word: read and written whole

    def least_of_siblings(self, slot: int) -> int | None:
        """The fewest connections a live sibling holds (None: no sibling)."""
        counts = [self._counts[other] for other, holder in enumerate(self._pids) if other != slot and holder]
        return min(counts) if counts else None

    def should_defer(self, slot: int, count: int) -> bool:
        """True if a live sibling holds fewer connections than ``count``."""
        least = self.least_of_siblings(slot)
        return least is not None and least < count


class BalancedListener:
    """A worker's listening socket that declines connections while a sibling holds fewer."""

    def __init__(self, sock: Any, worker: Any, board: ConnectionBoard, slot: int) -> None:
        self._sock, self._worker, self._board, self._slot = sock, worker, board, slot
        self._deferring_since: float | None = None
        self._last_deferral = 0.0

    def accept(self) -> Any:
        held = getattr(self._worker, "nr_conns", 0)
        if self._board.should_defer(self._slot, held) and self._keep_deferring():
            time.sleep(DEFER_PAUSE_SEC)  # the sibling was woken too; give it the moment to take it
            raise BlockingIOError(errno.EAGAIN, "left to a less busy worker")
        self._deferring_since = None
        accepted = self._sock.accept()
        self._board.publish(self._slot, held + 1)
        return accepted

    def _keep_deferring(self) -> bool:
        now = time.monotonic()
        # Deferrals more than a few pauses apart are about different connections.
        if self._deferring_since is None or now - self._last_deferral > 10 * DEFER_PAUSE_SEC:
            self._deferring_since = now
        self._last_deferral = now
        return now - self._deferring_since < MAX_DEFER_SEC

    def __getattr__(self, name: str) -> Any:  # fileno, setblocking, getsockname, close...
        return getattr(self._sock, name)


class ConnectionShedder:
    """Closes one of a worker's connections after its answer while the worker holds too many."""

    def __init__(self, worker: Any, board: ConnectionBoard, slot: int) -> None:
        self._worker, self._board, self._slot = worker, board, slot
        self._last_shed = 0.0
        self._lock = threading.Lock()

    def before_request(self, req: Any) -> None:
        least = self._board.least_of_siblings(self._slot)
        if least is None or getattr(self._worker, "nr_conns", 0) - least < SHED_EXCESS:
            return
        with self._lock:  # requests run in several threads
            now = time.monotonic()
            if now - self._last_shed < SHED_INTERVAL_SEC:
                return
            self._last_shed = now
        req.must_close = True  # gunicorn answers with "Connection: close" and closes after it


def install(board: ConnectionBoard, worker: Any) -> None:
    """gunicorn's ``post_fork`` hook, in the new worker: wrap its listeners."""
    slot = board.claim(os.getpid())
    if slot is None:
        return
    worker.sockets = [BalancedListener(s, worker, board, slot) for s in worker.sockets]
    worker.connection_shedder = ConnectionShedder(worker, board, slot)
    heartbeat = worker.notify  # called by the worker's main loop on every turn

    def notify() -> None:
        board.publish(slot, getattr(worker, "nr_conns", 0))
        heartbeat()

    worker.notify = notify


def before_request(worker: Any, req: Any) -> None:
    """gunicorn's ``pre_request`` hook."""
    shedder = getattr(worker, "connection_shedder", None)
    if shedder is not None:
        shedder.before_request(req)
