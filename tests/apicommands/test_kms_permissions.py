"""The permission matrix of the KMS commands: root admin, domain admin and user × every command.

HSM profile writes are root-admin only; every other role gets CloudStack's 432 "does not exist
or is not available" answer, and nothing changes. listHSMProfiles and the KMS key commands are
open to all roles (each acting on what it owns). A second table covers acting on a key that
belongs to somebody else.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.client import Client, Reply
from tests.support.tenants import PASSWORD, new_account, new_domain, unique

DEFAULT_PROFILE = "HSM Database Provider"
ROLES = ("root", "domainadmin", "user")
ALLOW, DENY = "allow", "deny"

# The matrix of the issue: who may call what.
MATRIX = {
    #  command              root    domainadmin  user
    "createHSMProfile":   (ALLOW,  DENY,        DENY),
    "addHSMProfile":      (ALLOW,  DENY,        DENY),
    "listHSMProfiles":    (ALLOW,  ALLOW,       ALLOW),
    "updateHSMProfile":   (ALLOW,  DENY,        DENY),
    "deleteHSMProfile":   (ALLOW,  DENY,        DENY),
    "createKMSKey":       (ALLOW,  ALLOW,       ALLOW),
    "listKMSKeys":        (ALLOW,  ALLOW,       ALLOW),
    "updateKMSKey":       (ALLOW,  ALLOW,       ALLOW),
    "deleteKMSKey":       (ALLOW,  ALLOW,       ALLOW),
}
CASES = [(command, role, allowed[i]) for command, allowed in MATRIX.items() for i, role in enumerate(ROLES)]


@dataclass
class World:
    root: Client
    zone: str
    default_profile: str
    dom: dict
    accounts: dict[str, dict]   # role -> account (root: none)
    clients: dict[str, Client]  # role -> signed client

    def account_name(self, role: str) -> str:
        return "admin" if role == "root" else self.accounts[role]["name"]


pytestmark = pytest.mark.usefixtures("immediate_key_deletion")  # upstream's immediate delete


@pytest.fixture(scope="module")
def world(server, admin_keys) -> World:
    root = Client(server.url, admin_keys["apikey"], admin_keys["secretkey"])
    dom = new_domain(root)
    dadmin_account, dadmin = new_account(root, accounttype=2, domainid=dom["id"])
    user_account, user = new_account(root, domainid=dom["id"])
    zone = root.ok("listZones")["zone"][0]["id"]
    default = root.ok("listHSMProfiles", name=DEFAULT_PROFILE)["hsmprofile"][0]["id"]
    return World(root, zone, default, dom, {"domainadmin": dadmin_account, "user": user_account},
                 {"root": root, "domainadmin": dadmin, "user": user})


def denied_body(command: str, account: str) -> dict:
    return {"errorresponse": {"uuidList": [], "errorcode": 432, "cserrorcode": 9999,
                              "errortext": f"The API [{command}] does not exist or is not available for the "
                                           f"account {account}."}}


def root_profile(world: World, **params: Any) -> dict:
    return world.root.ok("createHSMProfile", name=unique("perm"), protocol="database", **params)["hsmprofile"]


def own_key(world: World, role: str) -> dict:
    return world.clients[role].ok("createKMSKey", name=unique("perm"), zoneid=world.zone,
                                  hsmprofileid=world.default_profile)["kmskey"]


# ------------------------------------------------------------------ one call per command
# Each entry: (call, check). ``call(world, role)`` makes what the call needs and returns
# (reply, state); ``check(world, role, reply, state, allowed)`` asserts the outcome beyond the
# status code: the effect when allowed, the absence of any effect when denied.
def call_create_profile(command: str) -> Callable:
    def call(world: World, role: str) -> tuple[Reply, Any]:
        name = unique("perm")
        return world.clients[role].request(command, name=name, protocol="database"), name

    def check(world: World, role: str, reply: Reply, name: str, allowed: bool) -> None:
        stored = world.root.ok("listHSMProfiles", name=name)
        if allowed:
            assert reply.inner()["hsmprofile"]["name"] == name
            assert stored["count"] == 1
            world.root.ok("deleteHSMProfile", id=stored["hsmprofile"][0]["id"])
        else:
            assert stored == {}

    return call, check


def call_list_profiles(world: World, role: str) -> tuple[Reply, Any]:
    return world.clients[role].request("listHSMProfiles", listall="true"), None


def check_list_profiles(world: World, role: str, reply: Reply, _: Any, allowed: bool) -> None:
    assert DEFAULT_PROFILE in [p["name"] for p in reply.inner()["hsmprofile"]]


def call_update_profile(world: World, role: str) -> tuple[Reply, Any]:
    profile = root_profile(world, ispublic="true")
    return world.clients[role].request("updateHSMProfile", id=profile["id"], name=unique("renamed"),
                                       enabled="false"), profile


def check_update_profile(world: World, role: str, reply: Reply, profile: dict, allowed: bool) -> None:
    now = world.root.ok("listHSMProfiles", id=profile["id"])["hsmprofile"][0]
    if allowed:
        assert (now["name"], now["enabled"]) == (reply.inner()["hsmprofile"]["name"], False)
    else:
        assert (now["name"], now["enabled"]) == (profile["name"], True)
    world.root.ok("deleteHSMProfile", id=profile["id"])


def call_delete_profile(world: World, role: str) -> tuple[Reply, Any]:
    profile = root_profile(world, domainid=world.dom["id"])
    return world.clients[role].request("deleteHSMProfile", id=profile["id"]), profile


def check_delete_profile(world: World, role: str, reply: Reply, profile: dict, allowed: bool) -> None:
    listed = world.root.ok("listHSMProfiles", id=profile["id"])
    if allowed:
        assert reply.inner() == {"success": True}
        assert listed == {}
    else:
        assert listed["count"] == 1
        world.root.ok("deleteHSMProfile", id=profile["id"])


def call_create_key(world: World, role: str) -> tuple[Reply, Any]:
    name = unique("perm")
    return world.clients[role].request("createKMSKey", name=name, zoneid=world.zone,
                                       hsmprofileid=world.default_profile), name


def check_create_key(world: World, role: str, reply: Reply, name: str, allowed: bool) -> None:
    key = reply.inner()["kmskey"]
    assert (key["name"], key["account"]) == (name, world.account_name(role))
    world.root.run_async("deleteKMSKey", id=key["id"])


def call_list_keys(world: World, role: str) -> tuple[Reply, Any]:
    key = own_key(world, role)
    return world.clients[role].request("listKMSKeys"), key


def check_list_keys(world: World, role: str, reply: Reply, key: dict, allowed: bool) -> None:
    assert key["id"] in [k["id"] for k in reply.inner()["kmskey"]]
    world.root.run_async("deleteKMSKey", id=key["id"])


def call_update_key(world: World, role: str) -> tuple[Reply, Any]:
    key = own_key(world, role)
    return world.clients[role].request("updateKMSKey", id=key["id"], enabled="false"), key


def check_update_key(world: World, role: str, reply: Reply, key: dict, allowed: bool) -> None:
    assert reply.inner()["kmskey"]["enabled"] is False
    world.root.run_async("deleteKMSKey", id=key["id"])


def call_delete_key(world: World, role: str) -> tuple[Reply, Any]:
    key = own_key(world, role)
    return world.clients[role].request("deleteKMSKey", id=key["id"]), key


def check_delete_key(world: World, role: str, reply: Reply, key: dict, allowed: bool) -> None:
    job = world.clients[role].wait_job(reply.inner()["jobid"])
    assert (job["jobstatus"], job["jobresult"]) == (1, {"success": True})
    assert world.root.ok("listKMSKeys", id=key["id"]) == {}


CALLS = {
    "createHSMProfile": call_create_profile("createHSMProfile"),
    "addHSMProfile": call_create_profile("addHSMProfile"),
    "listHSMProfiles": (call_list_profiles, check_list_profiles),
    "updateHSMProfile": (call_update_profile, check_update_profile),
    "deleteHSMProfile": (call_delete_profile, check_delete_profile),
    "createKMSKey": (call_create_key, check_create_key),
    "listKMSKeys": (call_list_keys, check_list_keys),
    "updateKMSKey": (call_update_key, check_update_key),
    "deleteKMSKey": (call_delete_key, check_delete_key),
}


def test_every_command_of_the_matrix_has_a_call():
    assert set(CALLS) == set(MATRIX)


@pytest.mark.parametrize(("command", "role", "expected"), CASES, ids=[f"{c}-{r}" for c, r, _ in CASES])
def test_permission_matrix(world, command, role, expected):
    call, check = CALLS[command]
    reply, state = call(world, role)
    if expected == ALLOW:
        assert reply.status == 200, reply.text
    else:
        assert reply.status == 432, reply.text
        assert reply.body == denied_body(command, world.account_name(role))
    check(world, role, reply, state, expected == ALLOW)


@pytest.mark.parametrize("role", ROLES)
def test_list_apis_matches_the_matrix(world, role):
    """What ``listApis`` offers each role is exactly the allowed column."""
    offered = {api["name"] for api in world.clients[role].ok("listApis")["api"]}
    allowed = {command for command, row in MATRIX.items() if row[ROLES.index(role)] == ALLOW}
    assert offered & set(MATRIX) == allowed


def test_denied_in_a_login_session_too(world):
    """The answer does not depend on how the caller authenticated."""
    session = Client(world.root.url)
    account = world.accounts["user"]
    session.login(account["user"][0]["username"], PASSWORD, domain=f"/{world.dom['name']}/")
    reply = session.request("createHSMProfile", method="POST", name=unique("perm"), protocol="database")
    assert (reply.status, reply.body) == (432, denied_body("createHSMProfile", account["name"]))
    assert session.request("listHSMProfiles", listall="true").status == 200


# ------------------------------------------------------------------ keys of somebody else
VISIBLE, EMPTY = "visible", "empty"

# A key owned by a user of the domain, acted on by each kind of caller.
KEY_ACCESS = [
    # actor              listKMSKeys id=   updateKMSKey  deleteKMSKey
    ("root",             VISIBLE,          200,          200),
    ("domainadmin",      VISIBLE,          200,          200),   # the domain's admin
    ("owner",            VISIBLE,          200,          200),
    ("peer",             EMPTY,            531,          531),   # another user of the same domain
    ("other_dadmin",     EMPTY,            531,          531),   # the admin of another domain
    ("stranger",         EMPTY,            531,          531),   # a user of another domain
]


@pytest.fixture(scope="module")
def outsiders(world) -> dict[str, Client]:
    other = new_domain(world.root)
    _, peer = new_account(world.root, domainid=world.dom["id"])
    _, other_dadmin = new_account(world.root, accounttype=2, domainid=other["id"])
    _, stranger = new_account(world.root, domainid=other["id"])
    return {"root": world.root, "domainadmin": world.clients["domainadmin"], "owner": world.clients["user"],
            "peer": peer, "other_dadmin": other_dadmin, "stranger": stranger}


@pytest.mark.parametrize(("actor", "listing", "update", "delete"), KEY_ACCESS, ids=[row[0] for row in KEY_ACCESS])
def test_acting_on_a_key_of_a_user(world, outsiders, actor, listing, update, delete):
    key = own_key(world, "user")
    client = outsiders[actor]
    for params in ({}, {"listall": "true"}):
        found = client.ok("listKMSKeys", id=key["id"], **params)
        if listing == VISIBLE:
            assert [k["id"] for k in found["kmskey"]] == [key["id"]]
        else:
            assert found == {}  # an empty list, not an error

    reply = client.request("updateKMSKey", id=key["id"], description="changed")
    assert reply.status == update, reply.text
    description = world.root.ok("listKMSKeys", id=key["id"])["kmskey"][0].get("description")
    assert description == ("changed" if update == 200 else None)

    reply = client.request("deleteKMSKey", id=key["id"])
    assert reply.status == delete, reply.text
    if delete == 200:
        assert client.wait_job(reply.inner()["jobid"])["jobresult"] == {"success": True}
        assert world.root.ok("listKMSKeys", id=key["id"]) == {}
    else:
        assert reply.inner()["cserrorcode"] == 4365
        assert world.root.ok("listKMSKeys", id=key["id"])["count"] == 1
        world.root.run_async("deleteKMSKey", id=key["id"])
