"""The PIN of an HSM profile never shows: not in a response, an event, a job, a log line or the
database (spec §7.1; the issue: "never plaintext, never ciphertext" in responses).

A private server carries only this module's traffic, so its log can be scanned whole. The traffic
uses profiles whose PIN is distinctive (``PIN-<random hex>``): created through GET (the PIN in the
query string, both map forms), POST and the ``cs`` client, then used to create, list, update and
delete keys, with failures on the way (a wrong PIN, invalid details, a bad signature, a caller
without the API). Each sink is then searched for the PINs.
"""
from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from typing import Any

import pytest
from cs import CloudStack
from sqlalchemy import MetaData, create_engine, select

from tests.support.client import Client, Reply
from tests.support.dbtools import query
from tests.support.server import KmsEnv, ServerProcess
from tests.support.tenants import new_account, new_domain, unique

MASK = "*****"


class RecordingClient(Client):
    """A client that keeps every answer it got: status, headers and body."""

    def __init__(self, *args: Any, seen: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen = seen

    def request(self, command: str, method: str = "GET", signed: bool = True, fmt: str = "json",
                **params: Any) -> Reply:
        reply = super().request(command, method=method, signed=signed, fmt=fmt, **params)
        self.seen.append(f"{command} {reply.status} {reply.headers} {reply.text}")
        return reply


@dataclass
class Traffic:
    kms: KmsEnv
    server: ServerProcess
    root: RecordingClient
    pins: list[str]
    profile_ids: list[str]
    seen: list[str] = field(default_factory=list)  # every answer of the run


def details(softhsm, label: str, pin: str, form: str = "short") -> dict[str, str]:  # noqa: ANN001
    values = softhsm.details(label, pin=pin)
    if form == "short":
        return {f"details[0].{k}": v for k, v in values.items()}
    params = {}
    for i, (k, v) in enumerate(values.items()):
        params[f"details[{i}].key"], params[f"details[{i}].value"] = k, v
    return params


@pytest.fixture(scope="module")
def traffic(env_factory, softhsm) -> Traffic:
    pin, wrong_pin = f"PIN-{secrets.token_hex(8)}", f"PIN-{secrets.token_hex(8)}"
    good_token, other_token = unique("sec"), unique("sec")
    softhsm.init_token(good_token, pin=pin)
    softhsm.init_token(other_token, pin=pin)

    kms = env_factory("secrets")
    server = ServerProcess(kms).start()
    keys = kms.admin_keys()
    seen: list[str] = []
    root = RecordingClient(server.url, keys["apikey"], keys["secretkey"], seen=seen)
    zone = root.ok("listZones")["zone"][0]["id"]
    try:
        # Profiles with the PIN in the query string (both forms), in a POST body, through cs, by the alias.
        made = [
            root.ok("createHSMProfile", name=unique("get-short"), **details(softhsm, good_token, pin)),
            root.ok("createHSMProfile", name=unique("get-kv"), **details(softhsm, good_token, pin, "keyvalue")),
            root.ok("createHSMProfile", method="POST", name=unique("post"), **details(softhsm, good_token, pin)),
            root.ok("addHSMProfile", name=unique("alias"), ispublic="true", **details(softhsm, good_token, pin)),
        ]
        cs = CloudStack(endpoint=server.url, key=keys["apikey"], secret=keys["secretkey"], timeout=60)
        reply = cs.createHSMProfile(name=unique("cs"), details=softhsm.details(good_token, pin=pin))
        seen.append(repr(reply))
        made.append(reply)
        profile_ids = [m["hsmprofile"]["id"] for m in made]
        first, public = profile_ids[0], profile_ids[3]

        # Use them: keys on several profiles, lists, updates; a rename makes the server reconnect.
        made_keys = [root.ok("createKMSKey", name=unique("key"), zoneid=zone, hsmprofileid=pid)["kmskey"]
                     for pid in profile_ids]
        root.ok("listHSMProfiles")
        root.ok("listHSMProfiles", id=first)
        root.request("listHSMProfiles", fmt="xml")
        root.ok("listHSMProfiles", **details(softhsm, good_token, pin))  # an ignored map in a GET
        root.ok("listKMSKeys", listall="true")
        root.ok("updateKMSKey", id=made_keys[0]["id"], description="used", **details(softhsm, good_token, pin))
        root.ok("updateHSMProfile", id=first, name=unique("renamed"))
        made_keys.append(root.ok("createKMSKey", name=unique("key"), zoneid=zone, hsmprofileid=first)["kmskey"])

        # Failures: a wrong PIN (fresh token, and a token already logged in), invalid details, a bad
        # signature, a caller without the API.
        for token in (other_token, good_token):
            bad = root.ok("createHSMProfile", name=unique("wrong"), **details(softhsm, token, wrong_pin))
            root.error("createKMSKey", 530, name=unique("key"), zoneid=zone, hsmprofileid=bad["hsmprofile"]["id"])
        root.error("createHSMProfile", 431, name=unique("invalid"), **{"details[0].token_label": good_token,
                                                                         "details[0].pin": pin})
        forged = RecordingClient(server.url, keys["apikey"], "not-the-secret", seen=seen)
        forged.error("createHSMProfile", 401, name=unique("forged"), **details(softhsm, good_token, pin))
        domain = new_domain(root)
        _, user = new_account(root, accounttype=2, domainid=domain["id"])
        user = RecordingClient(user.url, user.apikey, user.secret, seen=seen)
        user.error("createHSMProfile", 432, name=unique("user"), **details(softhsm, good_token, pin))
        assert "details" not in user.ok("listHSMProfiles", id=public, listall="true")["hsmprofile"][0]
        user_key = user.ok("createKMSKey", name=unique("key"), zoneid=zone, hsmprofileid=public)["kmskey"]
        user.run_async("deleteKMSKey", id=user_key["id"])

        # Deleting (async jobs), polled with queryAsyncJobResult.
        for key in made_keys:
            root.run_async("deleteKMSKey", id=key["id"])
        yield Traffic(kms, server, root, [pin, wrong_pin], profile_ids, seen)
    finally:
        server.stop()


def assert_no_pin(text: str, pins: list[str], where: str) -> None:
    for pin in pins:
        assert pin not in text, f"a PIN appears in {where}"
        assert pin.lower() not in text.lower(), f"a PIN (in other case) appears in {where}"


def test_the_traffic_carried_the_pins(traffic):
    """The PINs reached the server and the good one worked: every key of the traffic was made."""
    assert all(len(pin) == 20 for pin in traffic.pins)
    created = [e for e in traffic.root.ok("listEvents", type="KMS.KEY.CREATE", listall="true")["event"]]
    assert len(created) == 7  # five profiles, the renamed one again, and the user's key


def test_no_pin_in_any_response(traffic):
    assert len(traffic.seen) > 30
    assert_no_pin("\n".join(traffic.seen), traffic.pins, "a response")
    # The sensitive detail is the mask in every full view.
    for profile_id in traffic.profile_ids:
        listed = traffic.root.ok("listHSMProfiles", id=profile_id)["hsmprofile"][0]
        assert listed["details"]["pin"] == MASK


def test_no_pin_in_events(traffic):
    events = traffic.root.request("listEvents", listall="true", pagesize=-1)
    assert events.status == 200 and events.inner()["count"] > 10
    assert_no_pin(events.text, traffic.pins, "listEvents")


def test_no_pin_in_async_jobs(traffic):
    jobs = traffic.root.request("listAsyncJobs", listall="true", pagesize=-1)
    assert jobs.status == 200 and jobs.inner()["count"] >= 7
    assert_no_pin(jobs.text, traffic.pins, "listAsyncJobs")
    for job in jobs.inner()["asyncjobs"]:
        result = traffic.root.request("queryAsyncJobResult", jobid=job["jobid"])
        assert_no_pin(result.text, traffic.pins, "queryAsyncJobResult")


def test_no_pin_in_the_server_log(traffic):
    log = traffic.server.log()
    # The GETs with a PIN in the query string are in the access log, redacted.
    assert "command=createHSMProfile" in log
    assert "details%5B0%5D.pin=*****" in log
    assert_no_pin(log, traffic.pins, "the server log")


def test_no_pin_in_the_database(traffic):
    """The stored PIN is sealed (neither plaintext nor a trivial encoding); nothing else stores it."""
    engine = create_engine(traffic.kms.db_url)
    try:
        meta = MetaData()
        meta.reflect(engine)
        with engine.connect() as conn:
            details = meta.tables["kms_hsm_profile_details"]
            pins = list(conn.execute(select(details.c.value).where(details.c.name == "pin")))
            assert len(pins) >= 4  # deleted profiles lose their details; the others keep a sealed PIN
            pin = traffic.pins[0]
            encodings = [pin, pin.encode().hex(), base64.b64encode(pin.encode()).decode().rstrip("=")]
            for (value,) in pins:
                assert value != MASK
                for encoded in encodings:
                    assert encoded.lower() not in value.lower()
            libraries = {row[0] for row in conn.execute(select(details.c.value).where(details.c.name == "library"))}
            assert len(libraries) == 1  # non-sensitive details are stored as given
            for table in meta.sorted_tables:
                for row in conn.execute(select(table)):
                    for value in row:
                        if isinstance(value, (bytes, bytearray, memoryview)):
                            value = bytes(value).decode("latin-1")
                        if isinstance(value, str):
                            assert_no_pin(value, traffic.pins, f"table {table.name}")
    finally:
        engine.dispose()


def test_secrets_sent_to_an_async_command_are_not_stored_in_clear(traffic):
    """A PIN sent by mistake to an async command (whose parameters wait in ``async_job``) is not
    stored in clear. Runs last: it sends a secret of its own, so the scans above stay about the
    profile PINs."""
    secret = f"PIN-{secrets.token_hex(8)}"
    zone = traffic.root.ok("listZones")["zone"][0]["id"]
    default = traffic.root.ok("listHSMProfiles", name="HSM Database Provider")["hsmprofile"][0]["id"]
    key = traffic.root.ok("createKMSKey", name=unique("key"), zoneid=zone, hsmprofileid=default)["kmskey"]
    reply = traffic.root.request("deleteKMSKey", id=key["id"], pin=secret, password=secret,
                                 **{"details[0].pin": secret})
    job = traffic.root.wait_job(reply.inner()["jobid"])
    assert job["jobresult"] == {"success": True}
    assert_no_pin(reply.text + str(job), [secret], "the job's answers")
    assert_no_pin(traffic.server.log(), [secret], "the server log")
    rows = query(traffic.kms, "SELECT job_cmd_info FROM async_job")
    assert_no_pin("\n".join(str(r[0]) for r in rows), [secret], "async_job.job_cmd_info")
