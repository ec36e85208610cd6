"""Keep-alive connections are spread over the server's worker processes
(``cloudstack_kms/worker_balance.py``), checked on a real gunicorn server with ``ss``."""
from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import time
from collections import Counter

import pytest

from tests.support.server import ServerProcess

PATH = "/client/api?command=listCapabilities&response=json"  # answered (401) without a database query


def held_by_worker(port: int) -> Counter:
    """Established connections on the server's port, counted per process id."""
    out = subprocess.run(["ss", "-tnpH", "state", "established", f"( sport = :{port} )"], capture_output=True,
                         text=True, check=True).stdout
    return Counter(int(pid) for pid in re.findall(r"pid=(\d+)", out))


def workers_of(master: int) -> set[int]:
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout
    return {int(pid) for pid in out.split()}


def request(conn: http.client.HTTPConnection) -> None:
    """One request; ``http.client`` opens a new connection if the server closed the last one."""
    conn.request("GET", PATH)
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 401


@pytest.fixture()
def two_workers(kms_env):
    server = ServerProcess(kms_env, workers=2).start()
    deadline = time.monotonic() + 30
    while len(workers_of(server.proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    yield server
    server.stop()


def test_connections_opened_one_after_another_are_split_evenly(two_workers):
    conns = [http.client.HTTPConnection("127.0.0.1", two_workers.port, timeout=30) for _ in range(24)]
    try:
        for conn in conns:
            request(conn)  # connected and answered; kept alive
        held = held_by_worker(two_workers.port)
        assert set(held) <= workers_of(two_workers.proc.pid)
        assert len(held) == 2 and max(held.values()) - min(held.values()) <= 2, held
    finally:
        for conn in conns:
            conn.close()


def test_a_worker_added_later_is_handed_open_connections(two_workers):
    """Without closing some connections after their answer, a worker started while clients keep
    theirs open would never get any: they all stay on the workers that accepted them."""
    master = two_workers.proc.pid
    conns = [http.client.HTTPConnection("127.0.0.1", two_workers.port, timeout=30) for _ in range(18)]
    try:
        for conn in conns:
            request(conn)
        before = workers_of(master)
        os.kill(master, signal.SIGTTIN)  # gunicorn: one more worker
        deadline = time.monotonic() + 30
        while len(workers_of(master)) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        (added,) = workers_of(master) - before
        deadline = time.monotonic() + 10
        while held_by_worker(two_workers.port)[added] < 4 and time.monotonic() < deadline:
            for conn in conns:
                request(conn)
        held = held_by_worker(two_workers.port)
        assert held[added] >= 4, held  # a fair share is 6 of 18
        assert all(held[pid] >= 4 for pid in before), held  # none was emptied for it
    finally:
        for conn in conns:
            conn.close()
