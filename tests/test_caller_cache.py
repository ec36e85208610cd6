"""Cached callers and settings stay correct across server processes.

Two real servers on one database. Each caches who holds an API key or a session and the live
settings; a change made through one must stop (or start) working on the other within one
second, and at once on the server that made it.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from tests.support.client import Client
from tests.support.dbtools import query
from tests.support.server import ServerProcess
from tests.support.tenants import PASSWORD, new_account

#: What the issue allows between a change on one server and its effect on every other.
BOUND_SEC = 1.0
VERIFY_TEXT = "unable to verify user credentials and/or request signature"


@pytest.fixture(scope="module")
def servers(env_factory):
    env = env_factory("callercache")
    first, second = ServerProcess(env).start(), ServerProcess(env).start()
    yield env, first, second
    first.stop()
    second.stop()


@pytest.fixture(scope="module")
def admins(servers):
    env, first, second = servers
    keys = env.admin_keys()
    return (Client(first.url, keys["apikey"], keys["secretkey"]),
            Client(second.url, keys["apikey"], keys["secretkey"]))


def on(server: ServerProcess, client: Client) -> Client:
    """The same credentials, sent to ``server``."""
    other = Client(server.url, client.apikey, client.secret)
    other.sessionkey = client.sessionkey
    return other


def seconds_until(predicate, limit: float = 5.0) -> float:
    """Seconds until ``predicate()`` holds (polled every 20 ms); fails after ``limit``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > limit:
            raise AssertionError(f"still not so after {limit}s")
        time.sleep(0.02)
    return time.monotonic() - start


def run_async_where(servers, client: Client, command: str, **params) -> tuple[ServerProcess, ServerProcess]:
    """Run an async command through ``client`` and return (the server whose process ran its job,
    the other one). A queued job runs on whichever server claims it first, usually the one it
    was submitted to, but not always: the other server's workers look at the queue too."""
    env, first, second = servers
    job = client.wait_job(client.ok(command, **params)["jobid"])
    assert job["jobstatus"] == 1, job
    [(pid,)] = query(env, "SELECT m.pid FROM async_job j JOIN mshost m ON m.msid = j.job_complete_msid "
                          "WHERE j.uuid = :uuid", uuid=job["jobid"])
    parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    ran = next(server for server in (first, second) if server.proc.pid in (pid, parent))
    return ran, (second if ran is first else first)


def refused(client: Client) -> bool:
    reply = client.request("listZones")
    if reply.status == 200:
        return False
    assert reply.status == 401, reply.text
    assert reply.inner()["errortext"] == VERIFY_TEXT
    return True


def test_disabled_user_is_refused_by_every_server_within_a_second(servers, admins):
    _env, first, second = servers
    admin_a, _admin_b = admins
    account, user = new_account(admin_a)
    assert on(first, user).ok("listZones") and on(second, user).ok("listZones")  # both have it cached now
    ran, other = run_async_where(servers, admin_a, "disableUser", id=account["user"][0]["id"])
    assert refused(on(ran, user))  # the server that made the change: at once
    assert seconds_until(lambda: refused(on(other, user))) <= BOUND_SEC


def test_regenerated_keys_replace_the_old_ones_everywhere_within_a_second(servers, admins):
    _env, first, second = servers
    admin_a, _admin_b = admins
    account, user_a = new_account(admin_a)
    old_b = on(second, user_a)
    assert old_b.ok("listZones")
    keys = admin_a.ok("registerUserKeys", id=account["user"][0]["id"])["userkeys"]
    assert refused(user_a)
    assert seconds_until(lambda: refused(old_b)) <= BOUND_SEC
    assert Client(second.url, keys["apikey"], keys["secretkey"]).ok("listZones")


def test_deleted_account_is_refused_by_every_server_within_a_second(servers, admins):
    _env, first, second = servers
    admin_a, _admin_b = admins
    account, user = new_account(admin_a)
    assert on(first, user).ok("listZones") and on(second, user).ok("listZones")
    ran, other = run_async_where(servers, admin_a, "deleteAccount", id=account["id"])
    assert refused(on(ran, user))
    assert seconds_until(lambda: refused(on(other, user))) <= BOUND_SEC


def test_ended_session_is_refused_by_every_server_within_a_second(servers, admins):
    _env, first, second = servers
    admin_a, _admin_b = admins
    account, _user = new_account(admin_a)
    browser_a = Client(first.url)
    browser_a.login(account["user"][0]["username"], PASSWORD)
    browser_b = on(second, browser_a)
    assert browser_b.ok("listZones") and browser_a.ok("listZones")
    ended = requests.post(first.url, data={"command": "logout", "response": "json",
                                           "sessionkey": browser_a.sessionkey}, timeout=30)
    assert ended.status_code == 200
    assert browser_a.request("listZones").status == 401

    def session_refused() -> bool:
        return browser_b.request("listZones").status == 401
    assert seconds_until(session_refused) <= BOUND_SEC


def test_a_changed_setting_applies_on_every_server_within_a_second(servers, admins):
    _env, first, second = servers
    admin_a, admin_b = admins
    assert admin_b.ok("listZones", page=1, pagesize=2) is not None
    admin_a.ok("updateConfiguration", name="default.page.size", value="1")
    try:
        too_big = "Page size can't exceed max allowed page size value: 1"
        assert admin_a.error("listZones", 431, page=1, pagesize=2)["errortext"] == too_big

        def capped_on_b() -> bool:
            reply = admin_b.request("listZones", page=1, pagesize=2)
            return reply.status == 431 and reply.inner()["errortext"] == too_big
        assert seconds_until(capped_on_b) <= BOUND_SEC
    finally:
        admin_a.ok("updateConfiguration", name="default.page.size", value="500")
    assert seconds_until(lambda: admin_b.request("listZones", page=1, pagesize=2).status == 200) <= BOUND_SEC
