"""Claiming jobs in batches and running jobs of one command together in one transaction.

The application runs in this process with its job threads off, behind a real HTTP server; the
tests drive :class:`JobWorker` themselves, from several threads and from two application states
on the one database (two servers: two msids), so that claims really compete.
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from werkzeug.serving import make_server

from cloudstack_kms import create_app
from cloudstack_kms.config import Settings
from cloudstack_kms.jobs import queue
from cloudstack_kms.jobs.worker import JobWorker
from cloudstack_kms.storage import qemu
from tests.support.client import Client
from tests.support.dbtools import query
from tests.support.server import ServerProcess
from tests.support.tenants import unique

DEFAULT_PROFILE = "HSM Database Provider"
CREATED = "Successfully completed creating volume"


@dataclass
class Rig:
    kms: Any
    states: list  # two AppStates on one database: two servers
    root: Client
    zone: str
    offering: str
    profile: str

    def images(self, on: bool) -> None:
        self.root.ok("updateConfiguration", name="storage.volume.images", value="true" if on else "false")

    def new_key(self) -> str:
        return self.root.ok("createKMSKey", name=unique("key"), zoneid=self.zone,
                            hsmprofileid=self.profile)["kmskey"]["id"]

    def submit(self, key: str, count: int) -> list[dict]:
        return [self.root.ok("createVolume", name=unique("vol"), zoneid=self.zone, diskofferingid=self.offering,
                             kmskeyid=key) for _ in range(count)]

    def job(self, jobid: str) -> dict:
        return self.root.ok("queryAsyncJobResult", jobid=jobid)

    def worker(self, n: int = 0) -> JobWorker:
        return JobWorker(self.states[n], threads=0)


@pytest.fixture(scope="module")
def rig(env_factory):
    kms = env_factory("claims")
    # Jobs are left queued (not finished in their requests), so that the workers driven here claim them.
    settings = dict(db_url=kms.db_url, data_dir=kms.data_dir, master_key_file=kms.data_dir / "master.key",
                    start_background=False, short_jobs_in_request=False)
    apps = [create_app(Settings(**settings)), create_app(Settings(**settings))]
    states = [app.extensions["cloudstack_kms"] for app in apps]
    assert states[0].msid != states[1].msid
    for state in states:
        JobWorker(state, threads=0).register()
    httpd = make_server("127.0.0.1", 0, apps[0], threaded=True)
    serving = threading.Thread(target=httpd.serve_forever, daemon=True)
    serving.start()
    admin = kms.admin_keys()
    root = Client(f"http://127.0.0.1:{httpd.server_port}/client/api", admin["apikey"], admin["secretkey"])
    root.ok("updateConfiguration", name="storage.luks.iter.time.ms", value="1")
    try:
        yield Rig(kms, states, root, zone=root.ok("listZones")["zone"][0]["id"],
                  offering=root.ok("createDiskOffering", name=unique("enc"), disksize=1,
                                   encrypt="true")["diskoffering"]["id"],
                  profile=root.ok("listHSMProfiles", name=DEFAULT_PROFILE)["hsmprofile"][0]["id"])
    finally:
        httpd.shutdown()
        serving.join(10)
        for state in states:
            runtime = state.services.get("kms")
            if runtime is not None:
                runtime.providers.close()
            state.db.dispose()


def completed_events(rig: Rig, volume_ids: list[str]) -> Counter:
    """How many times each volume's job really completed (one "Completed" event per execution)."""
    rows = query(rig.kms, "SELECT v.uuid FROM event e JOIN volumes v ON v.id = e.resource_id "
                          "WHERE e.type = 'VOLUME.CREATE' AND e.state = 'Completed' AND e.description LIKE :d",
                 d=CREATED + "%")
    wanted = set(volume_ids)
    return Counter(uuid for (uuid,) in rows if uuid in wanted)


def live_wrapped_keys(rig: Rig, key: str) -> int:
    return query(rig.kms, "SELECT COUNT(*) FROM kms_wrapped_key w JOIN kms_keys k ON k.id = w.kms_key_id "
                          "WHERE k.uuid = :k AND w.removed IS NULL", k=key)[0][0]


def test_queued_jobs_of_one_command_run_together(rig):
    """Five queued metadata-only createVolume jobs: one claim takes and runs all five."""
    rig.images(False)
    key = rig.new_key()
    submitted = rig.submit(key, 5)
    assert all(rig.job(s["jobid"])["jobstatus"] == 0 for s in submitted)
    worker = rig.worker()
    assert worker.run_next() == 5
    assert worker.run_next() == 0
    msid = rig.states[0].msid
    for s in submitted:
        job = rig.job(s["jobid"])
        assert job["jobstatus"] == 1, job
        assert job["jobinstanceid"] == s["id"] and job["jobresult"]["volume"]["id"] == s["id"]
        assert job["jobresult"]["volume"]["state"] == "Ready"
        [(complete_msid, executing)] = query(rig.kms, "SELECT job_complete_msid, job_executing_msid FROM async_job "
                                                      "WHERE uuid = :u", u=s["jobid"])
        assert (complete_msid, executing) == (msid, None)
    assert completed_events(rig, [s["id"] for s in submitted]) == Counter({s["id"]: 1 for s in submitted})
    assert live_wrapped_keys(rig, key) == 5


def test_a_failing_job_does_not_fail_the_jobs_run_with_it(rig):
    """The second of three volumes is deleted while its job is queued: run together, the batch is
    rolled back and each job runs alone; the second fails as it must, the others succeed, once."""
    rig.images(False)
    key = rig.new_key()
    submitted = rig.submit(key, 3)
    assert rig.root.ok("deleteVolume", id=submitted[1]["id"]) == {"success": True}
    assert rig.worker().run_next() == 3
    first, second, third = (rig.job(s["jobid"]) for s in submitted)
    assert first["jobstatus"] == 1 and third["jobstatus"] == 1, (first, third)
    assert (second["jobstatus"], second["jobresultcode"]) == (2, 530), second
    assert second["jobresult"]["errortext"] == (f"Failed to create a volume: volume {submitted[1]['id']} was "
                                                "deleted before it could be created")
    ok = [submitted[0]["id"], submitted[2]["id"]]
    assert completed_events(rig, [s["id"] for s in submitted]) == Counter({v: 1 for v in ok})
    assert live_wrapped_keys(rig, key) == 2
    [(wrapped,)] = query(rig.kms, "SELECT kms_wrapped_key_id FROM volumes WHERE uuid = :u", u=submitted[1]["id"])
    assert wrapped is None


@pytest.mark.skipif(qemu.available() is not None, reason=qemu.available() or "")
def test_jobs_that_make_images_run_one_by_one(rig):
    """With images on, a createVolume job takes seconds: each is claimed alone, so other threads
    (and servers) take the next ones."""
    rig.images(True)
    try:
        key = rig.new_key()
        submitted = rig.submit(key, 2)
        worker = rig.worker()
        assert worker.run_next() == 1
        assert [rig.job(s["jobid"])["jobstatus"] for s in submitted] == [1, 0]
        assert worker.run_next() == 1
        assert rig.job(submitted[1]["jobid"])["jobstatus"] == 1
    finally:
        rig.images(False)


def test_competing_servers_and_threads_run_each_job_exactly_once(rig):
    """Two servers (msids) with three threads each claim and run 60 jobs at once: every job runs
    once and only once (one Completed event and one wrapped key per volume)."""
    rig.images(False)
    key = rig.new_key()
    submitted: list[dict] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def drain(state) -> None:  # noqa: ANN001
        worker = JobWorker(state, threads=0)
        worker.batch_size = 4  # small batches: more claims, more contention
        try:
            while not stop.is_set():
                if not worker.run_next():
                    time.sleep(0.005)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=drain, args=(state,)) for state in rig.states for _ in range(3)]
    for t in threads:
        t.start()
    try:
        submitted = rig.submit(key, 60)
        deadline = time.monotonic() + 120
        while any(rig.job(s["jobid"])["jobstatus"] == 0 for s in submitted):
            assert time.monotonic() < deadline, "jobs still pending"
            time.sleep(0.2)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert errors == []
    msids = {state.msid for state in rig.states}
    for s in submitted:
        job = rig.job(s["jobid"])
        assert job["jobstatus"] == 1, job
        [(complete_msid, executing)] = query(rig.kms, "SELECT job_complete_msid, job_executing_msid FROM async_job "
                                                      "WHERE uuid = :u", u=s["jobid"])
        assert complete_msid in msids and executing is None
    ids = [s["id"] for s in submitted]
    assert completed_events(rig, ids) == Counter({v: 1 for v in ids})
    assert live_wrapped_keys(rig, key) == 60
    rows = query(rig.kms, "SELECT COUNT(DISTINCT v.kms_wrapped_key_id) FROM volumes v JOIN kms_keys k "
                          "ON k.id = v.kms_key_id WHERE k.uuid = :k AND v.state = 'Ready'", k=key)
    assert rows[0][0] == 60


def test_last_polled_is_written_behind(rig, backend):
    """MariaDB: a poll after a quiet second writes ``last_polled`` at once; polls within the second
    after it are written with the next write (or by the heartbeat's flush)."""
    if backend != "mysql":
        pytest.skip("SQLite polls are read-only and never write last_polled")
    rig.images(False)
    key = rig.new_key()
    first, second = rig.submit(key, 2)
    recorder = queue.poll_recorder(rig.states[0])
    time.sleep(recorder.every_sec)
    rig.job(first["jobid"])
    rig.job(second["jobid"])  # within the second: pending
    polled = dict(query(rig.kms, "SELECT uuid, last_polled FROM async_job WHERE uuid IN (:a, :b)",
                        a=first["jobid"], b=second["jobid"]))
    assert polled[first["jobid"]] is not None and polled[second["jobid"]] is None
    recorder.flush(rig.states[0].db)
    [(last,)] = query(rig.kms, "SELECT last_polled FROM async_job WHERE uuid = :u", u=second["jobid"])
    assert last is not None
    rig.worker().run_next()


@pytest.mark.slow
def test_two_server_processes_run_volume_jobs_exactly_once(env_factory, backend):
    """Two real servers on one MariaDB database, clients on both: 160 metadata-only createVolume
    jobs, claimed FOR UPDATE SKIP LOCKED and run in shared transactions, each run once."""
    if backend != "mysql":
        pytest.skip("two server processes on one database need MariaDB/MySQL (KMS_TEST_MYSQL_URL)")
    kms = env_factory("claims2")
    kms.extra_env["KMS_SHORT_JOBS_IN_REQUEST"] = "false"  # every job through the workers' claims
    keys = kms.admin_keys()
    servers = [ServerProcess(kms).start(), ServerProcess(kms).start()]
    try:
        clients = [Client(s.url, keys["apikey"], keys["secretkey"]) for s in servers]
        root = clients[0]
        root.ok("updateConfiguration", name="storage.volume.images", value="false")
        zone = root.ok("listZones")["zone"][0]["id"]
        offering = root.ok("createDiskOffering", name=unique("enc"), disksize=1, encrypt="true")["diskoffering"]["id"]
        profile = root.ok("listHSMProfiles", name=DEFAULT_PROFILE)["hsmprofile"][0]["id"]
        key = root.ok("createKMSKey", name=unique("key"), zoneid=zone, hsmprofileid=profile)["kmskey"]["id"]
        submitted: list[dict] = []
        lock = threading.Lock()

        def submit(client: Client) -> None:
            for _ in range(40):
                reply = client.ok("createVolume", name=unique("vol"), zoneid=zone, diskofferingid=offering,
                                  kmskeyid=key)
                with lock:
                    submitted.append(reply)

        threads = [threading.Thread(target=submit, args=(c,)) for c in clients for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert len(submitted) == 160
        for n, s in enumerate(submitted):
            job = clients[n % 2].wait_job(s["jobid"], timeout=60)
            assert job["jobstatus"] == 1 and job["jobresult"]["volume"]["id"] == s["id"], job
        ids = {s["id"] for s in submitted}
        rows = query(kms, "SELECT v.uuid FROM event e JOIN volumes v ON v.id = e.resource_id WHERE e.type = "
                          "'VOLUME.CREATE' AND e.state = 'Completed' AND e.description LIKE :d", d=CREATED + "%")
        assert Counter(u for (u,) in rows if u in ids) == Counter({v: 1 for v in ids})
        [(wrapped,)] = query(kms, "SELECT COUNT(*) FROM kms_wrapped_key w JOIN kms_keys k ON k.id = w.kms_key_id "
                                  "WHERE k.uuid = :k", k=key)
        assert wrapped == 160
        msids = {row[0] for row in query(kms, "SELECT msid FROM mshost WHERE state = 'Up'")}
        completed_by = {row[0] for row in query(kms, "SELECT DISTINCT job_complete_msid FROM async_job WHERE "
                                                     "job_cmd LIKE '%CreateVolumeCmd'")}
        assert completed_by <= msids
    finally:
        for server in servers:
            server.stop()
