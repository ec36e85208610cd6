"""API throttling (``api.throttling.*``) as upstream, counted per account across servers.

Two server processes on one database (for SQLite, one file): the calls of an account to both add
up to one limit; root admins are never limited; the refusal is upstream's 429 in JSON and XML;
a new window lets the account in again; throttling is off by default.
"""
from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET

import pytest

from tests.support.client import Client
from tests.support.server import ServerProcess
from tests.support.tenants import new_account

pytestmark = pytest.mark.slow

INTERVAL = 4
MAX = 6
TEXT = re.compile(r"^The given user has reached his/her account api limit, please retry after \[(\d+)\] ms\.$")


@pytest.fixture(scope="module")
def two_servers(env_factory):
    kms = env_factory("throttle")
    servers = [ServerProcess(kms).start(), ServerProcess(kms).start()]
    keys = kms.admin_keys()
    admins = [Client(s.url, keys["apikey"], keys["secretkey"]) for s in servers]
    yield servers, admins
    for server in servers:
        server.stop()


def configure(admin: Client, **values: str) -> None:
    for name, value in values.items():
        admin.ok("updateConfiguration", name=name, value=value)
    time.sleep(0.7)  # the other server's settings cache lives 0.5 s


def on(server: ServerProcess, client: Client) -> Client:
    return Client(server.url, client.apikey, client.secret)


def next_window(interval: int = INTERVAL) -> None:
    """Sleep until just after a window starts (windows are multiples of the interval since the
    epoch, on this host's clock, which the servers share), so a burst stays in one window."""
    now = time.time()
    time.sleep((int(now // interval) + 1) * interval - now + 0.05)


def test_off_by_default(two_servers):
    servers, admins = two_servers
    assert admins[0].ok("listConfigurations", name="api.throttling.enabled")["configuration"][0]["value"] == "false"
    _, user = new_account(admins[0])
    for _ in range(40):  # past the default limit of 25 in a second
        user.ok("listZones")


def test_limit_is_shared_by_servers_and_resets(two_servers):
    servers, admins = two_servers
    _, user = new_account(admins[0])
    users = [on(s, user) for s in servers]
    configure(admins[0], **{"api.throttling.interval": str(INTERVAL), "api.throttling.max": str(MAX),
                            "api.throttling.enabled": "true"})
    try:
        next_window()
        for i in range(MAX):  # three calls on each server: all within the limit
            users[i % 2].ok("listZones")
        for client in users:  # the seventh and eighth, one on each server, are over it
            error = client.error("listZones", 429)
            assert error["cserrorcode"] == 9999
            wait_ms = int(TEXT.match(error["errortext"]).group(1))
            assert 0 < wait_ms <= INTERVAL * 1000
        # Another account of the same domain is not affected; root admins never are.
        _, other = new_account(admins[0])
        other.ok("listZones")
        for _ in range(3 * MAX):
            admins[1].ok("listZones")
        next_window()
        users[1].ok("listZones")  # a new window: in again
    finally:
        configure(admins[0], **{"api.throttling.enabled": "false"})


def test_refusal_shape_json_and_xml(two_servers):
    servers, admins = two_servers
    _, user = new_account(admins[0])
    configure(admins[0], **{"api.throttling.interval": "60", "api.throttling.max": "1",
                            "api.throttling.enabled": "true"})
    try:
        user.ok("listZones")
        reply = user.request("listZones")
        assert reply.status == 429
        assert list(reply.body) == ["listzonesresponse"]
        inner = reply.body["listzonesresponse"]
        assert list(inner) == ["uuidList", "errorcode", "cserrorcode", "errortext"]
        assert inner["uuidList"] == [] and inner["errorcode"] == 429 and inner["cserrorcode"] == 9999
        assert TEXT.match(inner["errortext"]), inner
        assert reply.headers["X-Description"] == inner["errortext"]

        reply = on(servers[1], user).request("listZones", fmt="xml")
        assert reply.status == 429
        root = ET.fromstring(reply.text)
        assert root.tag == "listzonesresponse"
        assert root.findtext("errorcode") == "429" and root.findtext("cserrorcode") == "9999"
        assert TEXT.match(root.findtext("errortext"))
    finally:
        configure(admins[0], **{"api.throttling.enabled": "false"})
    user.ok("listZones")  # off again: the count no longer matters


def test_settings_are_validated(two_servers):
    _, admins = two_servers
    admins[0].error("updateConfiguration", 431, name="api.throttling.interval", value="0")
    admins[0].error("updateConfiguration", 431, name="api.throttling.enabled", value="maybe")
