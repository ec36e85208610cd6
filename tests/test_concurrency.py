"""Load from parallel clients, and two server processes sharing one database and one job queue."""
from __future__ import annotations

import secrets
import threading
import time
from collections import Counter

import pytest

from tests.support.client import Client
from tests.support.dbtools import query
from tests.support.server import ServerProcess, extra_commands_env

EXEC_EVENT = "TEST.ECHO.EXEC"  # written by testAsyncEcho each time it really executes


def test_parallel_signed_requests(ext_server, ext_admin_keys):
    """8 threads x 50 signed requests of different commands: every answer a correct 200."""
    seed = Client(ext_server.url, ext_admin_keys["apikey"], ext_admin_keys["secretkey"])
    jobid = seed.ok("testAsyncEcho", message="seed")["jobid"]
    seed.wait_job(jobid)
    errors: list[str] = []
    counts = Counter()

    def check(client: Client, i: int) -> None:
        kind = i % 5
        if kind == 0:
            assert client.ok("listZones")["zone"][0]["name"] == "zone1"
        elif kind == 1:
            assert client.ok("listApis", name="listZones")["api"][0]["name"] == "listZones"
        elif kind == 2:
            assert client.ok("queryAsyncJobResult", jobid=jobid)["jobstatus"] == 1
        elif kind == 3:
            assert "cloudstackversion" in client.ok("listCapabilities")["capability"]
        else:
            reply = client.request("listZones", method="POST", keyword=f"zone {i} ~*é")
            assert reply.status == 200 and reply.inner() == {}, reply.text

    def worker(n: int) -> None:
        client = Client(ext_server.url, ext_admin_keys["apikey"], ext_admin_keys["secretkey"])
        for i in range(50):
            try:
                check(client, i + n)
                counts["ok"] += 1
            except Exception as exc:  # noqa: BLE001 - collected and reported below
                errors.append(f"thread {n} request {i}: {exc!r}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert counts["ok"] == 400


@pytest.mark.slow
def test_two_servers_run_each_job_exactly_once(env_factory):
    """Two servers on one database execute 100 jobs between them, each once and only once."""
    kms = env_factory("twoservers", **extra_commands_env())
    keys = kms.admin_keys()
    servers = [ServerProcess(kms).start(), ServerProcess(kms).start()]
    try:
        msids = {row[0] for row in query(kms, "SELECT msid FROM mshost WHERE state = 'Up'")}
        assert len(msids) == 2
        run = secrets.token_hex(4)
        submitted: dict[str, str] = {}  # jobid -> token
        lock = threading.Lock()
        errors: list[str] = []

        def submit(server: ServerProcess, start: int) -> None:
            client = Client(server.url, keys["apikey"], keys["secretkey"])
            for i in range(start, 100, 2):
                token = f"{run}-{i}"
                reply = client.request("testAsyncEcho", message=f"m{i}", token=token, sleepms=10)
                if reply.status != 200:
                    errors.append(reply.text)
                    continue
                with lock:
                    submitted[reply.inner()["jobid"]] = token

        threads = [threading.Thread(target=submit, args=(s, n)) for n, s in enumerate(servers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert errors == [] and len(submitted) == 100

        deadline = time.monotonic() + 90
        while True:
            pending = query(kms, "SELECT COUNT(*) FROM async_job WHERE job_status = 0")[0][0]
            if pending == 0:
                break
            assert time.monotonic() < deadline, f"{pending} jobs still pending"
            time.sleep(0.2)

        rows = query(kms, "SELECT uuid, job_status, job_result_code, job_complete_msid, job_executing_msid "
                          "FROM async_job")
        jobs = {r[0]: r for r in rows if r[0] in submitted}
        assert len(jobs) == 100
        for uuid, status, code, complete_msid, executing_msid in jobs.values():
            assert (status, code) == (1, 0), uuid
            assert complete_msid in msids, (uuid, complete_msid)
            assert executing_msid is None
        # both servers took part
        assert {r[3] for r in jobs.values()} == msids

        # every execution left one event: a job run twice would show up here
        executions = Counter(desc.split(" ", 1)[1] for (desc,) in query(
            kms, "SELECT description FROM event WHERE type = :t", t=EXEC_EVENT))
        assert set(executions) == set(submitted.values())
        assert set(executions.values()) == {1}

        # each job's result is its own, and either server answers for any job
        clients = [Client(s.url, keys["apikey"], keys["secretkey"]) for s in servers]
        for n, (jobid, token) in enumerate(sorted(submitted.items())[:20]):
            job = clients[n % 2].ok("queryAsyncJobResult", jobid=jobid)
            assert job["jobresult"]["echo"]["token"] == token
    finally:
        for server in servers:
            server.stop()
