"""``GET /health``: 200 while the server can serve, 503 when its database is unreachable or its
job worker threads are dead, each caused for real."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import requests

from cloudstack_kms import create_app
from cloudstack_kms.config import Settings
from tests.support.server import ServerProcess

MYSQL_URL = os.environ.get("KMS_TEST_MYSQL_URL", "")


def health(server: ServerProcess) -> tuple[int, dict]:
    reply = requests.get(server.base_url + "/health", timeout=30)
    assert reply.headers["Content-Type"] == "application/json"
    return reply.status_code, reply.json()


def wait_status(server: ServerProcess, status: int, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        code, body = health(server)
        if code == status:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"/health stayed {code} ({body}), wanted {status}")
        time.sleep(0.2)


def test_healthy_server(server):
    code, body = health(server)
    assert code == 200, body
    assert body == {"status": "ok", "checks": {"database": "ok", "jobworker": "ok"}}


@pytest.mark.slow
def test_unreachable_database_is_503_and_recovers(env_factory, tmp_path_factory):
    if MYSQL_URL:
        _mariadb_outage(tmp_path_factory)
    else:
        _sqlite_outage(env_factory)


def _sqlite_outage(env_factory) -> None:
    """The database file's directory moves away (a lost mount): new connections cannot open it."""
    kms = env_factory("health")
    server = ServerProcess(kms).start()
    db_dir = Path(kms.db_url.split("///", 1)[1]).parent
    away = db_dir.with_name(db_dir.name + "-away")
    try:
        wait_status(server, 200)
        db_dir.rename(away)
        try:
            body = wait_status(server, 503)
            assert body["status"] == "unhealthy" and body["checks"]["database"] == "unreachable", body
        finally:
            away.rename(db_dir)
        wait_status(server, 200)
    finally:
        server.stop()


def _mariadb_outage(tmp_path_factory) -> None:
    from tests.support.mariadb_instance import server_on_private_mariadb

    with server_on_private_mariadb(tmp_path_factory.mktemp("health-data"), "kms_health") as (db, _kms, server):
        wait_status(server, 200)
        db.stop()
        started = time.monotonic()
        body = wait_status(server, 503)
        assert time.monotonic() - started < 10, "the health check must answer quickly during an outage"
        assert body["checks"]["database"] in ("unreachable", "timeout"), body
        db.start()
        wait_status(server, 200)


def test_dead_job_worker_is_503(env_factory):
    """The job worker's threads really end (as at shutdown); the process's health says so.
    In-process: a gunicorn worker whose job threads died cannot be told apart from outside."""
    kms = env_factory("health-worker")
    settings = Settings(db_url=kms.db_url, data_dir=kms.data_dir, master_key_file=kms.data_dir / "master.key")
    app = create_app(settings)
    state = app.extensions["cloudstack_kms"]
    try:
        http = app.test_client()
        reply = http.get("/health")
        assert reply.status_code == 200, reply.get_data(as_text=True)
        state.worker.stop(grace=5.0)
        for thread in state.worker._threads:
            thread.join(timeout=10)
        reply = http.get("/health")
        assert reply.status_code == 503
        assert reply.get_json() == {"status": "unhealthy", "checks": {"database": "ok", "jobworker": "stopped"}}
    finally:
        state.services["rewrap"].stop()
        state.services["hsm_probe"].stop()
        state.db.dispose()
