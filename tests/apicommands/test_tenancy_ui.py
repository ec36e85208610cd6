"""The commands the web UI's Domains, Accounts and Users pages call beyond the basic tenancy ones:
listDomainChildren (the domain tree), listRoles (the Add account form), and the user actions
enableUser, disableUser (async), lockUser and deleteUser.

Who may act on whom is held by the role matrix (test_role_matrix.py); here: semantics, shapes,
refusals and effects (a disabled, locked or deleted user can no longer log in nor sign requests).
"""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.support.client import Client
from tests.support.tenants import PASSWORD, new_account, new_domain, unique

ROLE_FIELDS = {"id", "name", "type", "description", "isdefault", "ispublic", "state"}
DEFAULT_ROLES = {("Root Admin", "Admin"), ("Resource Admin", "ResourceAdmin"), ("Domain Admin", "DomainAdmin"),
                 ("User", "User")}


@dataclass
class Tree:
    """ROOT ─ top ─ (mid ─ leaf), (side); ROOT ─ other. A domain admin and a user in ``top``."""

    root: Client
    top: dict
    mid: dict
    leaf: dict
    side: dict
    other: dict
    dadmin: Client
    user: Client


@pytest.fixture(scope="module")
def tree(server, admin_keys) -> Tree:
    root = Client(server.url, admin_keys["apikey"], admin_keys["secretkey"])
    top = new_domain(root, name=unique("top"))
    mid = new_domain(root, name=unique("mid"), parent=top["id"])
    leaf = new_domain(root, name=unique("leaf"), parent=mid["id"])
    side = new_domain(root, name=unique("side"), parent=top["id"])
    other = new_domain(root)
    _, dadmin = new_account(root, accounttype=2, domainid=top["id"])
    _, user = new_account(root, domainid=top["id"])
    return Tree(root, top, mid, leaf, side, other, dadmin, user)


def names(reply: dict, key: str = "domain") -> list[str]:
    return [item["name"] for item in reply.get(key, [])]


def login(server, username: str, domain_path: str = "/", password: str = PASSWORD):
    return Client(server.url).request("login", method="POST", signed=False, username=username, password=password,
                                      domain=domain_path)


def domain_login_path(domain: dict) -> str:
    """``ROOT/a/b`` -> ``/a/b/``, the form the login form's Domain field takes."""
    return "/" + domain["path"].split("/", 1)[1] + "/"


# ------------------------------------------------------------------ listDomainChildren
def test_children_of_a_domain_are_its_direct_children(tree):
    reply = tree.root.ok("listDomainChildren", id=tree.top["id"])
    assert reply["count"] == 2
    assert names(reply) == [tree.mid["name"], tree.side["name"]]  # id order
    mid = reply["domain"][0]
    assert mid["id"] == tree.mid["id"] and mid["level"] == 2
    assert mid["parentdomainid"] == tree.top["id"] and mid["parentdomainname"] == tree.top["name"]
    assert mid["path"] == f"ROOT/{tree.top['name']}/{tree.mid['name']}"
    assert mid["haschild"] is True and reply["domain"][1]["haschild"] is False
    assert mid["state"] == "Active"
    # a leaf has no children: an empty list, as upstream
    assert tree.root.ok("listDomainChildren", id=tree.leaf["id"]) == {}


def test_children_recursive_and_the_ui_tree_call(tree):
    recursive = tree.root.ok("listDomainChildren", id=tree.top["id"], isrecursive="true")
    assert names(recursive) == [tree.mid["name"], tree.leaf["name"], tree.side["name"]]
    assert recursive["count"] == 3
    # with listall, as upstream, only the first level (the UI's tree expands one level at a time)
    ui = tree.root.ok("listDomainChildren", id=tree.top["id"], listAll="true", isrecursive="true", showicon="true")
    assert names(ui) == [tree.mid["name"], tree.side["name"]]


def test_children_filters_and_paging(tree):
    assert names(tree.root.ok("listDomainChildren", id=tree.top["id"], name=tree.side["name"][:8])) == \
        [tree.side["name"]]
    assert names(tree.root.ok("listDomainChildren", id=tree.top["id"], keyword=tree.mid["name"][-8:])) == \
        [tree.mid["name"]]
    page = tree.root.ok("listDomainChildren", id=tree.top["id"], page=2, pagesize=1)
    assert page["count"] == 2 and names(page) == [tree.side["name"]]
    # without id: the children of the caller's own domain
    assert tree.top["name"] in names(tree.root.ok("listDomainChildren", pagesize=-1))
    assert names(tree.dadmin.ok("listDomainChildren")) == [tree.mid["name"], tree.side["name"]]


def test_children_scope(tree):
    assert names(tree.dadmin.ok("listDomainChildren", id=tree.mid["id"])) == [tree.leaf["name"]]
    err = tree.dadmin.error("listDomainChildren", 531, id=tree.other["id"])
    assert "does not have permission" in err["errortext"]
    tree.user.error("listDomainChildren", 432, id=tree.top["id"])
    tree.root.error("listDomainChildren", 431, id="00000000-0000-4000-8000-000000000000")


# ------------------------------------------------------------------ listRoles
def test_list_roles_shape_for_root(tree):
    reply = tree.root.ok("listRoles")
    roles = reply["role"]
    assert reply["count"] == len(roles) == 4
    assert {(r["name"], r["type"]) for r in roles} == DEFAULT_ROLES
    for role in roles:
        assert set(role) == ROLE_FIELDS, role
        assert role["isdefault"] is True and role["ispublic"] is True and role["state"] == "enabled"
        assert role["description"]
    # what the Add account form sends
    assert tree.root.ok("listRoles", state="enabled")["count"] == 4
    assert tree.root.ok("listRoles", state="Disabled") == {}
    user_role = next(r for r in roles if r["type"] == "User")
    assert tree.root.ok("listRoles", id=user_role["id"])["role"] == [user_role]


def test_list_roles_filters(tree):
    assert names(tree.root.ok("listRoles", type="DomainAdmin"), "role") == ["Domain Admin"]
    assert names(tree.root.ok("listRoles", name="Admin"), "role") == ["Root Admin", "Resource Admin", "Domain Admin"]
    assert names(tree.root.ok("listRoles", keyword="resource"), "role") == ["Resource Admin"]
    assert tree.root.ok("listRoles", page=2, pagesize=3) == {"count": 4, "role": [tree.root.ok(
        "listRoles", type="User")["role"][0]]}
    assert "Invalid role type" in tree.root.error("listRoles", 431, type="Superuser")["errortext"]
    assert "Invalid role state" in tree.root.error("listRoles", 431, state="maybe")["errortext"]


def test_list_roles_never_shows_roles_above_the_caller(tree):
    assert {r["type"] for r in tree.dadmin.ok("listRoles")["role"]} == {"DomainAdmin", "User"}
    assert tree.dadmin.ok("listRoles", type="Admin") == {}
    admin_role = next(r for r in tree.root.ok("listRoles")["role"] if r["type"] == "Admin")
    assert tree.dadmin.ok("listRoles", id=admin_role["id"]) == {}
    tree.user.error("listRoles", 432)


def test_create_account_with_a_listed_role(tree, server):
    """The Add account form: a role from listRoles, a domain from listDomains."""
    role = next(r for r in tree.root.ok("listRoles", state="enabled")["role"] if r["type"] == "User")
    name = unique("formacct")
    account = tree.root.ok("createAccount", roleid=role["id"], username=name, password=PASSWORD,
                           email=f"{name}@example.com", firstname="F", lastname="L", domainid=tree.mid["id"],
                           account=name)["account"]
    assert account["roleid"] == role["id"] and account["rolename"] == "User" and account["accounttype"] == 0
    assert login(server, name, domain_login_path(tree.mid)).status == 200


# ------------------------------------------------------------------ user states
def fresh_user(tree: Tree) -> tuple[dict, Client]:
    """A new plain user in ``top`` (its account has only it), with a signed client."""
    account, client = new_account(tree.root, domainid=tree.top["id"])
    return account, client


def user_of(client: Client, user_id: str) -> dict:
    return client.ok("listUsers", id=user_id, listall="true")["user"][0]


def account_state(tree: Tree, account: dict) -> str:
    return tree.root.ok("listAccounts", id=account["id"], listall="true")["account"][0]["state"]


def test_disable_user_is_async_and_stops_logins_and_keys(tree, server):
    account, signed = fresh_user(tree)
    user = account["user"][0]
    path = domain_login_path(tree.top)
    assert login(server, user["username"], path).status == 200
    submitted = tree.root.ok("disableUser", id=user["id"])
    assert set(submitted) == {"jobid"}
    job = tree.root.wait_job(submitted["jobid"])
    assert job["jobstatus"] == 1 and job["jobinstancetype"] == "User" and job["jobinstanceid"] == user["id"]
    disabled = job["jobresult"]["user"]
    assert disabled["id"] == user["id"] and disabled["state"] == "disabled"
    assert disabled["account"] == account["name"] and disabled["roletype"] == "User"
    assert user_of(tree.root, user["id"])["state"] == "disabled"
    assert account_state(tree, account) == "enabled"  # the account is untouched
    assert login(server, user["username"], path).status == 531
    assert signed.request("listUsers").status == 401
    # enableUser brings both back
    enabled = tree.root.ok("enableUser", id=user["id"])["user"]
    assert enabled["state"] == "enabled"
    assert login(server, user["username"], path).status == 200
    assert signed.ok("listUsers")["count"] == 1


def test_lock_user_locks_the_account_with_its_last_enabled_user(tree, server):
    account, _ = fresh_user(tree)
    first = account["user"][0]
    name = unique("second")
    second = tree.root.ok("createUser", account=account["name"], domainid=tree.top["id"], username=name,
                          password=PASSWORD, email=f"{name}@example.com", firstname="S", lastname="U")["user"]
    locked = tree.root.ok("lockUser", id=first["id"])["user"]
    assert locked["state"] == "locked"
    assert account_state(tree, account) == "enabled"  # the second user is still enabled
    assert login(server, first["username"], domain_login_path(tree.top)).status == 531
    assert tree.root.ok("lockUser", id=first["id"])["user"]["state"] == "locked"  # again: no change
    tree.root.ok("lockUser", id=second["id"])
    assert account_state(tree, account) == "locked"
    assert login(server, name, domain_login_path(tree.top)).status == 531
    # enabling one user enables the account again; the other user stays locked
    tree.root.ok("enableUser", id=second["id"])
    assert account_state(tree, account) == "enabled"
    assert user_of(tree.root, first["id"])["state"] == "locked"
    assert login(server, name, domain_login_path(tree.top)).status == 200


def test_a_disabled_user_cannot_be_locked(tree):
    account, _ = fresh_user(tree)
    user = account["user"][0]
    tree.root.run_async("disableUser", id=user["id"])
    err = tree.root.error("lockUser", 530, id=user["id"])
    assert "Unable to lock user" in err["errortext"]
    assert user_of(tree.root, user["id"])["state"] == "disabled"


def test_delete_user(tree, server):
    account, _ = fresh_user(tree)
    name = unique("gone")
    extra = tree.root.ok("createUser", account=account["name"], domainid=tree.top["id"], username=name,
                         password=PASSWORD, email=f"{name}@example.com", firstname="G", lastname="O")["user"]
    session = Client(server.url)
    session.login(name, PASSWORD, domain=domain_login_path(tree.top))
    assert tree.dadmin.ok("deleteUser", id=extra["id"]) == {"success": True}
    assert session.request("listUsers").status == 401
    assert login(server, name, domain_login_path(tree.top)).status == 531
    tree.root.error("listUsers", 431, id=extra["id"])
    tree.root.error("deleteUser", 431, id=extra["id"])  # a removed user's id is unknown
    # the account and its first user are untouched
    assert [u["id"] for u in tree.root.ok("listUsers", account=account["name"], domainid=tree.top["id"])["user"]] \
        == [account["user"][0]["id"]]


def test_built_in_users_cannot_be_deleted(tree):
    admin_user = tree.root.ok("listUsers", username="admin", domainid=tree.root.ok(
        "listDomains", name="ROOT")["domain"][0]["id"])["user"][0]
    err = tree.root.error("deleteUser", 431, id=admin_user["id"])
    assert err["errortext"] == "The user is default and can't be (re)moved"


def test_domain_admin_may_disable_itself(tree, server):
    """The role matrix skips it (the caller cannot poll its own job afterwards)."""
    account, _ = new_account(tree.root, accounttype=2, domainid=tree.top["id"])
    user = account["user"][0]
    session = Client(server.url)
    session.login(user["username"], PASSWORD, domain=domain_login_path(tree.top))
    jobid = session.ok("disableUser", id=user["id"])["jobid"]
    job = tree.root.wait_job(jobid)
    assert job["jobstatus"] == 1
    assert session.request("listUsers").status == 401


def test_user_actions_are_refused_to_users_and_need_an_id(tree):
    account, _ = fresh_user(tree)
    user_id = account["user"][0]["id"]
    for command in ("enableUser", "disableUser", "lockUser", "deleteUser"):
        tree.user.error(command, 432, id=user_id)
        err = tree.root.error(command, 431)
        assert err["errortext"] == f"Unable to execute API command {command.lower()} due to missing parameter id"


def test_user_state_events(tree):
    account, _ = fresh_user(tree)
    user = account["user"][0]
    name = unique("ev")
    extra = tree.root.ok("createUser", account=account["name"], domainid=tree.top["id"], username=name,
                         password=PASSWORD, email=f"{name}@example.com", firstname="E", lastname="V")["user"]
    tree.root.run_async("disableUser", id=user["id"])
    tree.root.ok("enableUser", id=user["id"])
    tree.root.ok("lockUser", id=user["id"])
    tree.root.ok("deleteUser", id=extra["id"])
    for event_type, target in (("USER.DISABLE", user), ("USER.ENABLE", user), ("USER.LOCK", user),
                               ("USER.DELETE", extra)):
        found = [e for e in tree.root.ok("listEvents", type=event_type, listall="true", page=1,
                                         pagesize=200).get("event", []) if target["id"] in e["description"]]
        assert found, event_type
        assert found[-1]["account"] == account["name"]  # the owner of the user acted on
        assert all(e["level"] == "INFO" for e in found)


# ------------------------------------------------------------------ resource counts (details)
FAMILIES = ("vm", "ip", "volume", "snapshot", "template", "project", "network", "vpc", "cpu", "memory",
            "primarystorage", "secondarystorage", "backup", "backupstorage", "bucket", "objectstorage", "gpu")


def test_accounts_and_domains_show_resource_counts_unless_details_is_min(tree):
    """No limit is enforced, so every limit is Unlimited; volumes and their primary storage are counted."""
    dom = new_domain(tree.root, parent=tree.top["id"])
    sub = new_domain(tree.root, parent=dom["id"])
    account, _ = new_account(tree.root, domainid=sub["id"])
    zone = tree.root.ok("listZones", name="zone1")["zone"][0]["id"]
    offering = tree.root.ok("createDiskOffering", name=unique("res"), disksize=2)["diskoffering"]["id"]
    for _ in range(2):
        tree.root.run_async("createVolume", name=unique("resvol"), zoneid=zone, diskofferingid=offering,
                            account=account["name"], domainid=sub["id"])

    listed = tree.root.ok("listAccounts", id=account["id"])["account"][0]
    for family in FAMILIES:
        assert listed[f"{family}limit"] == "Unlimited" and listed[f"{family}available"] == "Unlimited", family
    assert (listed["volumetotal"], listed["primarystoragetotal"]) == (2, 4)
    assert listed["vmtotal"] == 0 and listed["secondarystoragetotal"] == 0.0
    assert listed["vmrunning"] == 0 and listed["vmstopped"] == 0
    assert tree.root.ok("listAccounts", id=account["id"], details="resource")["account"][0]["volumetotal"] == 2
    minimal = tree.root.ok("listAccounts", id=account["id"], details="min")["account"][0]
    assert not [key for key in minimal if key.endswith(("limit", "total", "available"))]
    assert minimal["name"] == account["name"]
    # a domain counts its whole subtree
    for domain in (dom, sub):
        shown = tree.root.ok("listDomains", id=domain["id"])["domain"][0]
        assert (shown["volumetotal"], shown["primarystoragetotal"], shown["volumelimit"]) == (2, 4, "Unlimited")
    assert "volumetotal" not in tree.root.ok("listDomains", id=dom["id"], details="min")["domain"][0]
    child = tree.root.ok("listDomainChildren", id=dom["id"])["domain"][0]
    assert child["id"] == sub["id"] and "volumetotal" not in child  # as upstream: the plain domain fields
    # a new account starts at zero
    created = tree.root.ok("createAccount", accounttype=0, username=unique("zero"), password=PASSWORD,
                           email="z@example.com", firstname="Z", lastname="Z", domainid=sub["id"])["account"]
    assert created["volumetotal"] == 0 and created["volumelimit"] == "Unlimited"
    tree.root.error("listAccounts", 431, details="everything")


# ------------------------------------------------------------------ the Configure limits and Certificates tabs
RESOURCE_TYPES = ["user_vm", "public_ip", "volume", "snapshot", "template", "project", "network", "vpc", "cpu",
                  "memory", "primary_storage", "secondary_storage", "backup", "backup_storage", "bucket",
                  "object_storage", "gpu"]


def test_resource_limits_of_an_account_and_a_domain_are_unlimited(tree):
    account, _ = fresh_user(tree)
    reply = tree.root.ok("listResourceLimits", account=account["name"], domainid=tree.top["id"])
    assert reply["count"] == len(RESOURCE_TYPES)
    assert [(r["resourcetype"], r["resourcetypename"]) for r in reply["resourcelimit"]] == \
        [(str(i), name) for i, name in enumerate(RESOURCE_TYPES)]
    for limit in reply["resourcelimit"]:
        assert limit["max"] == -1
        assert (limit["account"], limit["domainid"], limit["domainpath"]) == \
            (account["name"], tree.top["id"], tree.top["path"])
    domain = tree.root.ok("listResourceLimits", domainid=tree.mid["id"])["resourcelimit"]
    assert {r["domainid"] for r in domain} == {tree.mid["id"]} and all("account" not in r for r in domain)
    own = tree.root.ok("listResourceLimits", resourcetype=2)["resourcelimit"]
    assert [(r["account"], r["resourcetypename"], r["max"]) for r in own] == [("admin", "volume", -1)]
    assert [r["resourcetype"] for r in tree.root.ok("listResourceLimits", resourcetypename="primary_storage")[
        "resourcelimit"]] == ["10"]
    assert tree.root.ok("listResourceLimits", page=2, pagesize=10)["count"] == len(RESOURCE_TYPES)
    assert len(tree.root.ok("listResourceLimits", page=2, pagesize=10)["resourcelimit"]) == 7
    assert [r["resourcetypename"] for r in tree.root.ok("listResourceLimits", keyword="storage")["resourcelimit"]] \
        == ["primary_storage", "secondary_storage", "backup_storage", "object_storage"]
    tree.root.error("listResourceLimits", 431, resourcetype=17)
    tree.root.error("listResourceLimits", 431, resourcetypename="cores")
    tree.root.error("listResourceLimits", 431, account=account["name"])  # needs domainid


def test_resource_limits_scope(tree):
    assert {r["domainid"] for r in tree.dadmin.ok("listResourceLimits", domainid=tree.leaf["id"])[
        "resourcelimit"]} == {tree.leaf["id"]}
    tree.dadmin.error("listResourceLimits", 531, domainid=tree.other["id"])
    # a user reads its own limits only
    mine = tree.user.ok("listResourceLimits")["resourcelimit"]
    assert len({r["account"] for r in mine}) == 1 and mine[0]["domainid"] == tree.top["id"]
    tree.user.error("listResourceLimits", 531, account="admin", domainid=tree.root.ok(
        "listDomains", name="ROOT")["domain"][0]["id"])


def test_ssl_certificates_of_an_account(tree):
    account, client = fresh_user(tree)
    # none can be uploaded here, so every account has none; the UI's paging parameters are ignored as upstream
    assert tree.root.ok("listSslCerts", accountid=account["id"], page=1, pageSize=10) == {}
    assert client.ok("listSslCerts", accountid=account["id"]) == {}
    assert tree.dadmin.ok("listSslCerts", accountid=account["id"]) == {}
    other, _ = new_account(tree.root, domainid=tree.other["id"])
    tree.dadmin.error("listSslCerts", 531, accountid=other["id"])
    client.error("listSslCerts", 531, accountid=other["id"])
    tree.root.error("listSslCerts", 431)
