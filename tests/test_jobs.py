"""Async jobs as clients see them (api-conventions.md §6), and after a server dies under them."""
from __future__ import annotations

import re
import time
import uuid

import pytest

from tests.support.client import Client
from tests.support.dbtools import query
from tests.support.server import ServerProcess, extra_commands_env
from tests.support.tenants import new_account

DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000$")
ECHO_CLASS = "org.apache.cloudstack.api.command.test.TestAsyncEchoCmd"
RESTART_TEXT = "job cancelled because of management server restart or shutdown"
GENERIC_TEXT = "Internal error executing command, please contact your system administrator"
BAD_JOBID = ("Unable to execute API command queryasyncjobresult due to invalid value. Invalid parameter jobid "
             "value={} due to incorrect long value format, or entity does not exist or due to incorrect parameter "
             "annotation for the field in api cmd class.")


@pytest.fixture(scope="module")
def admin_ids(ext_env) -> dict[str, str]:
    [(user, account, domain)] = query(
        ext_env, "SELECT u.uuid, a.uuid, d.uuid FROM user u JOIN account a ON a.id = u.account_id "
                 "JOIN domain d ON d.id = a.domain_id WHERE u.username = 'admin' AND a.account_name = 'admin'")
    return {"user": user, "account": account, "domain": domain}


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


# ------------------------------------------------------------------ results
def test_succeeded_job_fields(ext_admin, admin_ids):
    submitted = ext_admin.ok("testAsyncEcho", message="fields")
    assert set(submitted) == {"jobid"} and isinstance(submitted["jobid"], str)
    job = ext_admin.wait_job(submitted["jobid"])
    assert job["jobid"] == submitted["jobid"]
    assert job["jobstatus"] == 1 and type(job["jobstatus"]) is int
    assert job["jobprocstatus"] == 0 and type(job["jobprocstatus"]) is int
    assert job["jobresultcode"] == 0 and type(job["jobresultcode"]) is int
    assert job["jobresulttype"] == "object"
    assert job["jobresult"] == {"echo": {"message": "fields"}}
    assert job["cmd"] == ECHO_CLASS
    assert job["userid"] == admin_ids["user"]
    assert job["accountid"] == admin_ids["account"]
    assert job["account"] == "admin"
    assert job["domainid"] == admin_ids["domain"]
    assert job["domainpath"] == "ROOT"
    assert DATE.match(job["created"]) and DATE.match(job["completed"])
    assert job["created"] <= job["completed"]
    assert job["jobinstancetype"] == "User"
    assert job["jobinstanceid"] == admin_ids["user"]
    assert isinstance(job["managementserverid"], int)
    assert None not in job.values()


def test_pending_job_fields(ext_admin):
    """Polls run in read-only transactions, so they answer while a job holds SQLite's write lock."""
    jobid = ext_admin.ok("testAsyncEcho", message="slow", sleepms=2000)["jobid"]
    pending = ext_admin.ok("queryAsyncJobResult", jobid=jobid)
    assert pending["jobstatus"] == 0
    assert pending["jobresultcode"] == 0
    assert "jobresult" not in pending and "jobresulttype" not in pending and "completed" not in pending
    assert DATE.match(pending["created"])
    done = ext_admin.wait_job(jobid)
    assert done["jobstatus"] == 1 and done["jobresult"] == {"echo": {"message": "slow"}}


def test_progress_reported_inside_a_job(ext_admin):
    """A command reporting progress must not wait on its own transaction (SQLite has one writer)."""
    started = time.monotonic()
    job = ext_admin.wait_job(ext_admin.ok("testAsyncEcho", message="p", progress=42)["jobid"], timeout=25)
    assert job["jobstatus"] == 1, job
    assert job["jobprocstatus"] == 42
    assert time.monotonic() - started < 10


def test_failed_job(ext_admin):
    jobid = ext_admin.ok("testAsyncEcho", message="x", fail="true")["jobid"]
    job = ext_admin.wait_job(jobid)
    assert job["jobstatus"] == 2
    assert job["jobresultcode"] == 530
    assert job["jobresulttype"] == "object"
    assert job["jobresult"] == {"errorcode": 530, "errortext": "testAsyncEcho failed as asked: x"}
    assert DATE.match(job["completed"])


def test_failed_job_text_hidden_from_users(ext_server, ext_admin):
    _, user = new_account(ext_admin)
    jobid = user.ok("testAsyncEcho", message="internal detail", fail="true")["jobid"]
    job = user.wait_job(jobid)
    assert job["jobstatus"] == 2
    assert job["jobresult"] == {"errorcode": 530, "errortext": GENERIC_TEXT}


def test_validation_happens_before_the_job(ext_env, ext_admin):
    before = query(ext_env, "SELECT COUNT(*) FROM async_job")[0][0]
    reply = ext_admin.request("testAsyncEcho", sleepms="later")
    assert reply.status == 431
    assert reply.inner()["errortext"] == ("Unable to execute API command testasyncecho due to invalid value later "
                                          "for parameter sleepms")
    assert query(ext_env, "SELECT COUNT(*) FROM async_job")[0][0] == before


def test_sensitive_parameter_sealed_in_the_job_row(ext_env, ext_admin):
    secret = "TopSecret-" + uuid.uuid4().hex
    stray = "Stray-" + uuid.uuid4().hex  # sent in parameters the command does not declare
    result = ext_admin.run_async("testAsyncEcho", message="sealed", secret=secret, pin=stray, password=stray,
                                 **{"detail[0].pin": stray})
    assert result == {"echo": {"message": "sealed", "secretlength": len(secret)}}
    rows = query(ext_env, "SELECT job_cmd_info, job_result FROM async_job")
    assert rows and all(secret not in str(info) + str(res) for info, res in rows)
    assert all(stray not in str(info) + str(res) for info, res in rows)


def test_map_parameter_reaches_the_job(ext_admin):
    result = ext_admin.run_async("testAsyncEcho", **{"details[0].key": "colour", "details[0].value": "red",
                                                     "details[1].key": "size", "details[1].value": "L"})
    assert result["echo"]["details"] == {"colour": "red", "size": "L"}


def test_unknown_and_malformed_jobid(ext_admin):
    unknown = str(uuid.uuid4())
    reply = ext_admin.request("queryAsyncJobResult", jobid=unknown)
    assert reply.status == 431
    assert reply.inner() == {"uuidList": [], "errorcode": 431, "cserrorcode": 9999,
                             "errortext": BAD_JOBID.format(unknown)}
    reply = ext_admin.request("queryAsyncJobResult", jobid="1234")
    assert reply.status == 431
    assert reply.inner()["errortext"] == BAD_JOBID.format("1234")


def test_other_accounts_jobs_are_invisible(ext_admin):
    _, user = new_account(ext_admin)
    jobid = ext_admin.ok("testAsyncEcho", message="mine")["jobid"]
    reply = user.request("queryAsyncJobResult", jobid=jobid)
    assert reply.status == 431
    listed = user.ok("listAsyncJobs", listall="true")
    assert jobid not in {j["jobid"] for j in listed.get("asyncjobs", [])}
    ext_admin.wait_job(jobid)


def test_list_async_jobs(ext_admin):
    jobid = ext_admin.ok("testAsyncEcho", message="listed")["jobid"]
    finished = ext_admin.wait_job(jobid)
    listing = ext_admin.ok("listAsyncJobs")
    assert listing["count"] >= 1 and len(listing["asyncjobs"]) >= 1
    [listed] = [j for j in listing["asyncjobs"] if j["jobid"] == jobid]
    for field in ("jobstatus", "jobresultcode", "jobresulttype", "jobresult", "cmd", "userid", "accountid",
                  "created", "completed", "jobinstancetype", "jobinstanceid"):
        assert listed[field] == finished[field], field
    page = ext_admin.ok("listAsyncJobs", page="1", pagesize="1")
    assert page["count"] == listing["count"] and len(page["asyncjobs"]) == 1
    assert page["asyncjobs"][0]["jobid"] == listing["asyncjobs"][0]["jobid"]  # newest first


# ------------------------------------------------------------------ dead servers
def executing(kms, jobid: str):
    rows = query(kms, "SELECT job_executing_msid FROM async_job WHERE uuid = :u", u=jobid)
    return rows and rows[0][0]


@pytest.mark.slow
def test_jobs_of_a_killed_server(env_factory, backend):
    """kill -9 under running jobs: a new server on the same database fails them with upstream's
    text (530), and runs the job that no server had claimed yet.

    On SQLite one running job holds the write lock, so only one job runs and nothing else can be
    submitted meanwhile; on MariaDB every job thread is busy and one more job waits in the queue.
    """
    kms = env_factory("kill9", **extra_commands_env())
    keys = kms.admin_keys()
    first = ServerProcess(kms).start()
    queued = None
    try:
        client = Client(first.url, keys["apikey"], keys["secretkey"])
        threads = 4 if backend == "mysql" else 1  # Settings.job_threads defaults to 4
        running = [client.ok("testAsyncEcho", message=f"long{i}", sleepms=120_000)["jobid"] for i in range(threads)]
        for jobid in running:
            wait_until(lambda jobid=jobid: executing(kms, jobid))
        if backend == "mysql":
            queued = client.ok("testAsyncEcho", message="queued")["jobid"]
            time.sleep(1.5)  # every thread is busy: nobody may claim it
            assert not executing(kms, queued)
        dead_msid = executing(kms, running[0])
        dead_pid = query(kms, "SELECT pid FROM mshost WHERE msid = :m", m=dead_msid)[0][0]
    finally:
        first.kill9()

    second = ServerProcess(kms).start()
    try:
        client = Client(second.url, keys["apikey"], keys["secretkey"])
        for jobid in running:
            job = client.wait_job(jobid, timeout=30)
            assert job["jobstatus"] == 2, job
            assert job["jobresultcode"] == 530
            assert job["jobresult"] == {"errorcode": 530, "errortext": RESTART_TEXT}
            assert DATE.match(job["completed"])
        [(state,)] = query(kms, "SELECT state FROM mshost WHERE msid = :m", m=dead_msid)
        assert state == "Down", dead_pid
        [(live,)] = query(kms, "SELECT msid FROM mshost WHERE state = 'Up'")
        assert live != dead_msid
        if queued is not None:
            job = client.wait_job(queued, timeout=30)
            assert job["jobstatus"] == 1 and job["jobresult"] == {"echo": {"message": "queued"}}
            completed_by = query(kms, "SELECT job_complete_msid FROM async_job WHERE uuid = :u", u=queued)[0][0]
            assert completed_by == live
        # and the new server runs new work
        assert client.run_async("testAsyncEcho", message="after") == {"echo": {"message": "after"}}
        # a graceful stop under a running job marks the server Down at once
        interrupted = client.ok("testAsyncEcho", message="interrupted", sleepms=120_000)["jobid"]
        wait_until(lambda: executing(kms, interrupted))
    finally:
        second.stop()
    if backend == "mysql":
        # (on SQLite the sleeping job holds the only write lock, so this is left to the successor)
        [(state,)] = query(kms, "SELECT state FROM mshost WHERE msid = :m", m=live)
        assert state == "Down"
    third = ServerProcess(kms).start()
    try:
        client = Client(third.url, keys["apikey"], keys["secretkey"])
        job = client.wait_job(interrupted, timeout=30)
        assert (job["jobstatus"], job["jobresult"]) == (2, {"errorcode": 530, "errortext": RESTART_TEXT})
        [(third_msid,)] = query(kms, "SELECT msid FROM mshost WHERE state = 'Up'")
    finally:
        third.stop()
    [(state,)] = query(kms, "SELECT state FROM mshost WHERE msid = :m", m=third_msid)
    assert state == "Down"  # a graceful stop says so in mshost
