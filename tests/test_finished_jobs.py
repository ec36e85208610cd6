"""Jobs finished in their request (a metadata-only createVolume) and their first poll.

The process that finished such a job keeps its answer for a few seconds and answers the job's own
account from it without a query (``jobs.queue.FinishedJobs``). These tests hold that answer to the
one the database gives (read through a second server process, which never saw the job), and make
sure the kept answer is never shown to another account.
"""
from __future__ import annotations

import pytest

from tests.support.client import Client
from tests.support.dbtools import execute
from tests.support.server import ServerProcess
from tests.support.tenants import new_account, new_domain, unique
from tests.support.volumes import config

BAD_JOBID = ("Unable to execute API command queryasyncjobresult due to invalid value. Invalid parameter jobid "
             "value={} due to incorrect long value format, or entity does not exist or due to incorrect parameter "
             "annotation for the field in api cmd class.")


@pytest.fixture(scope="module")
def other_server(kms_env):
    proc = ServerProcess(kms_env).start()
    yield proc
    proc.stop()


def _on(server: ServerProcess, client: Client) -> Client:
    return Client(server.url, client.apikey, client.secret)


def test_first_poll_answered_as_the_database_would_and_only_to_the_owner(server, admin, other_server, kms_env):
    dom = new_domain(admin)
    owner_account, owner = new_account(admin, domainid=dom["id"])
    _, stranger = new_account(admin, domainid=dom["id"])
    _, dadmin = new_account(admin, accounttype=2, domainid=dom["id"])
    zone = admin.ok("listZones")["zone"][0]["id"]
    offering = admin.ok("createDiskOffering", name=unique("enc"), disksize=1, encrypt="true")["diskoffering"]["id"]
    profile = admin.ok("listHSMProfiles", name="HSM Database Provider")["hsmprofile"][0]["id"]
    key = owner.ok("createKMSKey", name=unique("key"), zoneid=zone, hsmprofileid=profile)["kmskey"]["id"]
    with config(admin, "storage.volume.images", "false"):
        submitted = owner.ok("createVolume", name=unique("vol"), zoneid=zone, diskofferingid=offering, kmskeyid=key)
    jobid = submitted["jobid"]

    kept = owner.ok("queryAsyncJobResult", jobid=jobid)  # the process that finished it
    from_database = _on(other_server, owner).ok("queryAsyncJobResult", jobid=jobid)
    assert kept["jobstatus"] == 1 and kept["jobresult"]["volume"]["id"] == submitted["id"]
    assert kept["jobinstanceid"] == submitted["id"] and kept["accountid"] == owner_account["id"]
    assert kept == from_database
    # A domain admin above the owner is answered from the database, through the access rule.
    assert dadmin.ok("queryAsyncJobResult", jobid=jobid) == from_database

    # The row is gone from the database: the owner is still answered from what the process kept
    # (so the answer is kept, and what follows is a real test of who gets it) ...
    assert execute(kms_env, "DELETE FROM async_job WHERE uuid = :uuid", uuid=jobid) == 1
    assert owner.ok("queryAsyncJobResult", jobid=jobid) == kept
    # ... but never another account, not even a domain admin who could see the job before.
    for client in (stranger, dadmin, _on(other_server, owner)):
        assert client.error("queryAsyncJobResult", 431, jobid=jobid)["errortext"] == BAD_JOBID.format(jobid)
