"""Attacks on the request path: smuggled parameter names, duplicated names, sessions that time
out while in use, wildcards in keyword filters, password guessing and login timing."""
from __future__ import annotations

import base64
import hashlib
import hmac
import statistics
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest
import requests

from tests.support import dbtools
from tests.support.tenants import PASSWORD, new_account, unique

VERIFY_TEXT = "unable to verify user credentials and/or request signature"


def signature(pairs: list[tuple[str, str]], secret: str) -> str:
    """CloudStack's v1/v3 signature over names as given (what the server rebuilds)."""
    text = "&".join(f"{k}={quote(v, safe='.-*_').replace('~', '%7E')}" for k, v in sorted(pairs)).lower()
    return base64.b64encode(hmac.new(secret.encode(), text.encode(), hashlib.sha1).digest()).decode()


def post_form(url: str, pairs: list[tuple[str, str]]) -> requests.Response:
    """POST ``pairs`` form-encoded: names with ``&`` or ``=`` arrive as those literal characters."""
    body = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)
    return requests.post(url, data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=30)


def past(minutes: int = 5) -> str:
    return (datetime.now(timezone.utc) - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S+0000")


# ------------------------------------------------------------------ smuggled names
def test_expired_v3_request_cannot_shed_its_signatureversion(server, admin_keys):
    """The signed string of ``response=json&signatureversion=3`` is the same whether that is two
    parameters or one parameter named ``response=json&signatureversion``; the server must not
    accept the second reading, in which it would see no ``signatureversion`` and skip the expiry."""
    secret = admin_keys["secretkey"]
    real = [("apiKey", admin_keys["apikey"]), ("command", "listZones"), ("expires", past()),
            ("response", "json"), ("signatureversion", "3")]
    sig = signature(real, secret)
    honest = post_form(server.url, real + [("signature", sig)])
    assert honest.status_code == 401, honest.text  # expired, as sent
    smuggled = real[:3] + [("response=json&signatureversion", "3"), ("signature", sig)]
    assert signature(smuggled[:-1], secret) == sig  # the attack's premise: same signed string
    resp = post_form(server.url, smuggled)
    assert resp.status_code == 401, resp.text
    assert VERIFY_TEXT in resp.text


def test_signed_parameter_cannot_be_dropped(server, admin_keys):
    """``listall=true`` signed, then hidden inside another name: the server would list less than signed."""
    secret = admin_keys["secretkey"]
    real = [("apiKey", admin_keys["apikey"]), ("command", "listAccounts"), ("listall", "true"), ("response", "json")]
    sig = signature(real, secret)
    assert post_form(server.url, real + [("signature", sig)]).status_code == 200
    smuggled = real[:2] + [("listall=true&response", "json"), ("signature", sig)]
    assert post_form(server.url, smuggled).status_code == 401


@pytest.mark.parametrize("name", ["a b", "x=y", "na&me", "é", "details[0", "details[x].key", "-x", ""])
def test_names_that_are_not_plain_are_refused(server, admin, name):
    pairs = [("command", "listZones"), ("response", "json"), ("apiKey", admin.apikey), (name, "1")]
    resp = post_form(server.url, pairs + [("signature", signature(pairs, admin.secret))])
    assert resp.status_code == 401, resp.text


def test_plain_names_with_map_indexes_still_work(server, admin):
    """``details[0].key`` is a plain CloudStack name: maps keep working."""
    reply = admin.request("createHSMProfile", name=unique("hard"), protocol="database",
                          **{"details[0].key": "note", "details[0].value": "x"})
    assert reply.status == 200, reply.text


@pytest.mark.parametrize("dup", [("apiKey", "apikey"), ("command", "COMMAND"), ("listall", "listAll")])
def test_names_sent_twice_in_any_case_are_refused(server, admin, dup):
    values = {"apiKey": admin.apikey, "apikey": admin.apikey, "command": "listAccounts", "COMMAND": "createDomain",
              "listall": "true", "listAll": "false"}
    pairs = [("command", "listAccounts"), ("response", "json"), ("apiKey", admin.apikey), ("listall", "true")]
    pairs = [p for p in pairs if p[0] != dup[0]] + [(dup[0], values[dup[0]]), (dup[1], values[dup[1]])]
    resp = post_form(server.url, pairs + [("signature", signature(pairs, admin.secret))])
    assert resp.status_code == 401, resp.text


# ------------------------------------------------------------------ sessions in use
def test_session_in_use_by_read_only_calls_does_not_expire(server, kms_env):
    """A UI that only lists and polls keeps its session: read-only calls refresh ``last_access``."""
    http = requests.Session()
    key = http.post(server.url, data={"command": "login", "username": "admin", "password": kms_env.admin_password,
                                      "response": "json"}, timeout=30).json()["loginresponse"]["sessionkey"]
    digest = hashlib.sha256(key.encode()).hexdigest()
    idle = (datetime.now(timezone.utc) - timedelta(minutes=29, seconds=30)).strftime("%Y-%m-%d %H:%M:%S.%f")
    assert dbtools.execute(kms_env, "UPDATE api_session SET last_access = :t WHERE session_key_hash = :h",
                           t=idle, h=digest) == 1
    resp = http.get(server.url, params={"command": "listZones", "response": "json", "sessionkey": key}, timeout=30)
    assert resp.status_code == 200, resp.text
    (last,) = dbtools.query(kms_env, "SELECT last_access FROM api_session WHERE session_key_hash = :h", h=digest)[0]
    last = last if isinstance(last, datetime) else datetime.fromisoformat(str(last))
    assert datetime.now(timezone.utc).replace(tzinfo=None) - last < timedelta(minutes=1), last


def test_session_activity_written_at_most_once_per_interval_per_process(server, kms_env):
    """Under load a session's cached ``last_access`` stays old for a while; its requests must not
    all write it again (each was a write transaction)."""
    http = requests.Session()
    key = http.post(server.url, data={"command": "login", "username": "admin", "password": kms_env.admin_password,
                                      "response": "json"}, timeout=30).json()["loginresponse"]["sessionkey"]
    digest = hashlib.sha256(key.encode()).hexdigest()

    def call_and_read(last_access: str) -> datetime:
        dbtools.execute(kms_env, "UPDATE api_session SET last_access = :t WHERE session_key_hash = :h",
                        t=last_access, h=digest)
        resp = http.get(server.url, params={"command": "listZones", "response": "json", "sessionkey": key},
                        timeout=30)
        assert resp.status_code == 200, resp.text
        (last,) = dbtools.query(kms_env, "SELECT last_access FROM api_session WHERE session_key_hash = :h",
                                h=digest)[0]
        return last if isinstance(last, datetime) else datetime.fromisoformat(str(last))

    ten_minutes_ago = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(minutes=10)
    stamp = ten_minutes_ago.strftime("%Y-%m-%d %H:%M:%S")
    assert call_and_read(stamp) > ten_minutes_ago + timedelta(minutes=9)  # due: written
    assert call_and_read(stamp) == ten_minutes_ago.replace(microsecond=0)  # written moments ago: not again


def test_idle_session_still_times_out(server, kms_env):
    key = requests.post(server.url, data={"command": "login", "username": "admin", "password": kms_env.admin_password,
                                          "response": "json"}, timeout=30).json()["loginresponse"]["sessionkey"]
    digest = hashlib.sha256(key.encode()).hexdigest()
    old = (datetime.now(timezone.utc) - timedelta(minutes=31)).strftime("%Y-%m-%d %H:%M:%S.%f")
    dbtools.execute(kms_env, "UPDATE api_session SET last_access = :t WHERE session_key_hash = :h", t=old, h=digest)
    resp = requests.get(server.url, params={"command": "listZones", "response": "json", "sessionkey": key}, timeout=30)
    assert resp.status_code == 401


# ------------------------------------------------------------------ keyword filters
def test_keyword_wildcards_match_themselves(server, admin):
    zone = admin.ok("listZones", name="zone1")["zone"][0]["id"]
    profile = admin.ok("listHSMProfiles", name="HSM Database Provider")["hsmprofile"][0]["id"]
    tag = unique("kw")
    literal, other = f"{tag}-a%b_c", f"{tag}-aXbYc"
    for name in (literal, other):
        admin.ok("createKMSKey", name=name, zoneid=zone, hsmprofileid=profile)
    found = admin.ok("listKMSKeys", keyword=f"{tag}-a%b_c").get("kmskey", [])
    assert [k["name"] for k in found] == [literal]
    assert admin.ok("listKMSKeys", keyword=f"{tag}-a_b").get("kmskey", []) == []


# ------------------------------------------------------------------ password guessing
def login(url: str, username: str, password: str) -> requests.Response:
    return requests.post(url, data={"command": "login", "username": username, "password": password,
                                    "response": "json"}, timeout=30)


def test_login_is_throttled_after_repeated_failures(server, admin):
    _, _client = new_account(admin)
    victim = _["user"][0]["username"]
    bystander = new_account(admin)[0]["user"][0]["username"]
    for _i in range(5):
        assert login(server.url, victim, "wrong-" + PASSWORD).status_code == 531
    refused = login(server.url, victim, PASSWORD)  # the right password, too late
    assert refused.status_code == 531
    assert refused.json()["loginresponse"]["errortext"].startswith(f"Failed to authenticate user {victim} ")
    assert login(server.url, bystander, PASSWORD).status_code == 200  # others are not affected


def test_unknown_users_answer_as_slowly_as_known_ones(server, admin):
    known = new_account(admin)[0]["user"][0]["username"]

    def timed(username: str) -> float:
        start = time.perf_counter()
        assert login(server.url, username, "not-the-password").status_code == 531
        return time.perf_counter() - start

    known_times = [timed(known) for _ in range(4)]
    unknown_times = [timed(unique("nobody")) for _ in range(4)]
    # Verifying an Argon2 hash costs tens of milliseconds; skipping it would answer several times faster.
    assert statistics.median(unknown_times) > 0.6 * statistics.median(known_times), (known_times, unknown_times)


# ------------------------------------------------------------------ transport
def test_request_line_is_bounded(server, admin):
    """A request line past 8 KiB is refused by the HTTP layer (before any code runs); the same
    parameters sent as a POST form, as clients do for long requests, are served."""
    name = "x" * 20_000
    resp = requests.get(server.url, params={"command": "listZones", "response": "json", "name": name}, timeout=30)
    assert resp.status_code in (400, 414), resp.status_code
    assert admin.request("listZones", method="POST", name=name).status in (200, 431)
    assert admin.request("listZones").status == 200


def test_secure_cookies_option(kms_env):
    """``serve --secure-cookies`` (HTTPS behind a proxy): the session cookies get ``Secure``."""
    from tests.support.server import ServerProcess
    proc = ServerProcess(kms_env, extra_args=("--secure-cookies",)).start()
    try:
        resp = requests.post(proc.url, data={"command": "login", "username": "admin",
                                             "password": kms_env.admin_password, "response": "json"}, timeout=30)
        assert resp.status_code == 200, resp.text
        headers = resp.raw.headers.getlist("Set-Cookie")
        assert len(headers) == 2 and all("secure" in [a.strip().lower() for a in h.split(";")] for h in headers)
    finally:
        proc.stop()
