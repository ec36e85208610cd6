"""Domains, accounts and users through the real server: createDomain, listDomains, deleteDomain,
createAccount, listAccounts, deleteAccount, createUser, listUsers.

Each test makes its own tenants (random names), so the tests share the server but no state.
The last section drives :mod:`cloudstack_kms.services.tenancy` directly on a real database
to prove the delete hooks, which a server subprocess cannot have registered from here.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any, Callable

import pytest
from sqlalchemy import select

from cloudstack_kms.errors import CloudRuntimeError, ResourceInUse
from cloudstack_kms.db import Database
from cloudstack_kms.models import Account, Domain, User
from cloudstack_kms.security.passwords import verify_password
from cloudstack_kms.services import bootstrap, tenancy
from tests.support.client import Client
from tests.support.tenants import PASSWORD, new_account, new_domain, unique

DATE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000$")
DELETE_REFUSED = "Please make sure all users and sub domains have been removed from the domain before deleting"


# ------------------------------------------------------------------ shared tenants
@dataclass
class Tree:
    """ROOT ─ dom (a domain admin, a user, a target account) ─ sub; ROOT ─ sibling (an account)."""

    root: Client
    dom: dict
    sub: dict
    sibling: dict
    dadmin_account: dict
    dadmin: Client
    user_account: dict
    user: Client
    target_account: dict
    sibling_account: dict

    def client(self, role: str) -> Client:
        return {"admin": self.root, "domainadmin": self.dadmin, "user": self.user}[role]

    def account_name(self, role: str) -> str:
        return {"admin": "admin", "domainadmin": self.dadmin_account["name"],
                "user": self.user_account["name"]}[role]


@pytest.fixture(scope="module")
def tree(server, admin_keys) -> Tree:
    root = Client(server.url, admin_keys["apikey"], admin_keys["secretkey"])
    dom = new_domain(root)
    sub = new_domain(root, parent=dom["id"])
    sibling = new_domain(root)
    dadmin_account, dadmin = new_account(root, accounttype=2, domainid=dom["id"])
    user_account, user = new_account(root, domainid=dom["id"])
    target_account, _ = new_account(root, domainid=dom["id"])
    sibling_account, _ = new_account(root, domainid=sibling["id"])
    return Tree(root, dom, sub, sibling, dadmin_account, dadmin, user_account, user, target_account, sibling_account)


def account_params(domainid: str | None = None, **extra: Any) -> dict[str, Any]:
    name = unique("acct")
    params = {"accounttype": 0, "username": name, "password": PASSWORD, "email": f"{name}@example.com",
              "firstname": "First", "lastname": "Last", "domainid": domainid}
    params.update(extra)
    return params


def user_params(account: dict, **extra: Any) -> dict[str, Any]:
    name = unique("usr")
    params = {"account": account["name"], "domainid": account["domainid"], "username": name, "password": PASSWORD,
              "email": f"{name}@example.com", "firstname": "Second", "lastname": "User"}
    params.update(extra)
    return params


def job_error(client: Client, command: str, **params: Any) -> dict:
    """Submit an async command that must fail; returns the job's ``jobresult``."""
    job = client.wait_job(client.ok(command, **params)["jobid"])
    assert job["jobstatus"] == 2, job
    return job["jobresult"]


def events_of(client: Client, event_type: str) -> list[dict]:
    return client.ok("listEvents", type=event_type, pagesize=200, page=1).get("event", [])


# ------------------------------------------------------------------ createDomain / listDomains
def test_create_domain_shape(admin):
    parent = new_domain(admin)
    name = unique("child")
    child = admin.ok("createDomain", name=name, parentdomainid=parent["id"], networkdomain="kms.example.org")["domain"]
    assert child["name"] == name
    assert child["level"] == 2
    assert child["path"] == f"ROOT/{parent['name']}/{name}"
    assert child["parentdomainid"] == parent["id"] and child["parentdomainname"] == parent["name"]
    assert child["haschild"] is False
    assert child["state"] == "Active"
    assert child["networkdomain"] == "kms.example.org"
    assert DATE_RE.match(child["created"])
    # The parent now reports a child.
    listed = admin.ok("listDomains", id=parent["id"])
    assert listed["count"] == 1 and listed["domain"][0]["haschild"] is True


def test_create_domain_defaults_to_root_and_accepts_custom_uuid(admin):
    custom = str(uuid.uuid4())
    domain = admin.ok("createDomain", name=unique("dom"), domainid=custom)["domain"]
    assert domain["id"] == custom
    assert domain["level"] == 1 and domain["parentdomainname"] == "ROOT"
    err = admin.error("createDomain", 431, name=unique("dom"), domainid=custom)
    assert err["errortext"] == f"Domain with UUID [{custom}] already exists"


def test_create_domain_refusals(admin):
    parent = new_domain(admin)
    name = unique("dup")
    admin.ok("createDomain", name=name, parentdomainid=parent["id"])
    err = admin.error("createDomain", 431, name=name, parentdomainid=parent["id"])
    assert err["errortext"] == f"Domain with name [{name}] already exists for the parent with ID [{parent['id']}]."
    assert err["cserrorcode"] == 4350
    # The same name under another parent is fine.
    admin.ok("createDomain", name=name)
    err = admin.error("createDomain", 431, name=unique("bad"), networkdomain="-bad-.example")
    assert err["errortext"].startswith("Invalid network domain.")
    err = admin.error("createDomain", 431, name="a/b")
    assert "cannot contain the character '/'" in err["errortext"]
    admin.error("createDomain", 431, name=unique("x"), parentdomainid="7e0a5a55-9f4c-4c87-bd6a-000000000000")


def test_list_domains_path_level_and_filters(admin):
    a = new_domain(admin)
    b = new_domain(admin, parent=a["id"])
    c = new_domain(admin, parent=b["id"])
    got = admin.ok("listDomains", id=c["id"])["domain"][0]
    assert got["path"] == f"ROOT/{a['name']}/{b['name']}/{c['name']}"
    assert got["level"] == 3 and got["parentdomainid"] == b["id"]
    root = admin.ok("listDomains", name="ROOT", level=0)["domain"][0]
    assert root["path"] == "ROOT" and root["level"] == 0
    assert "parentdomainid" not in root and "parentdomainname" not in root
    level2 = admin.ok("listDomains", level=2, listall="true")["domain"]
    assert b["id"] in {d["id"] for d in level2}
    assert all(d["level"] == 2 for d in level2)
    assert [d["id"] for d in admin.ok("listDomains", keyword=c["name"])["domain"]] == [c["id"]]
    assert [d["id"] for d in admin.ok("listDomains", name=b["name"])["domain"]] == [b["id"]]
    # Paging: count is the total, the page holds pagesize items.
    everything = admin.ok("listDomains", listall="true")
    page = admin.ok("listDomains", listall="true", page=1, pagesize=1)
    assert page["count"] == everything["count"] >= 4 and len(page["domain"]) == 1
    err = admin.error("listDomains", 431, details="everything")
    assert "The allowed values are [all, resource, min]" in err["errortext"]
    assert admin.request("listDomains", name=unique("nothing")).body == {"listdomainsresponse": {}}


# ------------------------------------------------------------------ createAccount / listAccounts
def test_create_account_shape(admin):
    dom = new_domain(admin)
    params = account_params(dom["id"], timezone="Europe/Paris", networkdomain="acct.example.org")
    reply = admin.request("createAccount", **params)
    assert reply.status == 200, reply.text
    account = reply.body["createaccountresponse"]["account"]
    assert account["name"] == params["username"]  # the account name defaults to the username
    assert account["accounttype"] == 0
    assert account["roletype"] == "User" and account["rolename"] == "User" and account["roleid"]
    assert account["domainid"] == dom["id"] and account["domain"] == dom["name"]
    assert account["domainpath"] == f"ROOT/{dom['name']}"
    assert account["state"] == "enabled" and account["isdefault"] is False
    assert account["networkdomain"] == "acct.example.org"
    assert DATE_RE.match(account["created"])
    (user,) = account["user"]
    assert user["username"] == params["username"]
    assert (user["firstname"], user["lastname"], user["email"]) == ("First", "Last", params["email"])
    assert user["accountid"] == account["id"] and user["account"] == account["name"]
    assert user["roletype"] == "User" and user["accounttype"] == 0 and user["usersource"] == "native"
    assert user["timezone"] == "Europe/Paris" and user["state"] == "enabled"
    assert PASSWORD not in reply.text and "password" not in reply.text and "secretkey" not in user


def test_create_account_types_and_roles(admin):
    dom = new_domain(admin)
    dadmin = admin.ok("createAccount", **account_params(dom["id"], accounttype=2))["account"]
    assert (dadmin["accounttype"], dadmin["roletype"]) == (2, "DomainAdmin")
    radmin = admin.ok("createAccount", **account_params(dom["id"], accounttype=3))["account"]
    assert (radmin["accounttype"], radmin["roletype"]) == (3, "ResourceAdmin")
    root = admin.ok("createAccount", **account_params(None, accounttype=1))["account"]
    assert (root["accounttype"], root["roletype"], root["domain"]) == (1, "Admin", "ROOT")
    # A role alone decides the type; with both, the role wins.
    by_role = admin.ok("createAccount", **account_params(dom["id"], accounttype=None, roleid=dadmin["roleid"]))
    assert by_role["account"]["accounttype"] == 2
    both = admin.ok("createAccount", **account_params(dom["id"], accounttype=0, roleid=dadmin["roleid"]))
    assert both["account"]["roletype"] == "DomainAdmin"
    err = admin.error("createAccount", 431, **account_params(dom["id"], accounttype=None))
    assert err["errortext"] == "Neither account type and role ID are not provided"
    err = admin.error("createAccount", 431, **account_params(dom["id"], accounttype=1))
    assert "unable to create user of admin role type in non-ROOT domain" in err["errortext"]
    admin.error("createAccount", 431, **account_params(dom["id"], accounttype=9))
    err = admin.error("createAccount", 431, **account_params(dom["id"], accounttype="x"))
    assert err["errortext"] == "Unable to execute API command createaccount due to invalid value x for parameter " \
                               "accounttype"


def test_create_account_duplicates(admin):
    dom = new_domain(admin)
    other = new_domain(admin)
    first = account_params(dom["id"])
    admin.ok("createAccount", **first)
    err = admin.error("createAccount", 431, **dict(first, account=unique("acct")))
    assert err["errortext"].startswith(f"The user {first['username']} already exists in domain ROOT/{dom['name']}")
    err = admin.error("createAccount", 431, **account_params(dom["id"], account=first["username"]))
    assert err["errortext"] == f"The specified account: {first['username']} already exists"
    # The same names are free in another domain.
    admin.ok("createAccount", **dict(first, domainid=other["id"]))


def test_list_accounts_scopes(admin, tree):
    own = admin.ok("listAccounts")
    assert [a["name"] for a in own["account"]] == ["admin"]  # without listall: the caller's own account
    assert own["account"][0]["isdefault"] is True and own["account"][0]["accounttype"] == 1
    everything = {a["id"] for a in admin.ok("listAccounts", listall="true", pagesize=-1)["account"]}
    assert {tree.user_account["id"], tree.sibling_account["id"], tree.dadmin_account["id"]} <= everything
    assert "system" not in {a["name"] for a in admin.ok("listAccounts", listall="true", pagesize=-1)["account"]}
    in_dom = admin.ok("listAccounts", domainid=tree.dom["id"])["account"]
    assert {a["domainid"] for a in in_dom} == {tree.dom["id"]}
    assert tree.user_account["id"] in {a["id"] for a in in_dom}
    by_id = admin.ok("listAccounts", id=tree.sibling_account["id"])
    assert by_id["count"] == 1 and by_id["account"][0]["user"][0]["username"] == tree.sibling_account["name"]
    by_name = admin.ok("listAccounts", name=tree.user_account["name"], domainid=tree.dom["id"])
    assert [a["id"] for a in by_name["account"]] == [tree.user_account["id"]]
    admins = admin.ok("listAccounts", listall="true", accounttype=2, pagesize=-1)["account"]
    assert tree.dadmin_account["id"] in {a["id"] for a in admins} and {a["accounttype"] for a in admins} == {2}
    assert admin.ok("listAccounts", listall="true", keyword=tree.target_account["name"])["count"] == 1


def test_user_sees_only_own_account_and_self(tree):
    for params in ({}, {"listall": "true"}):
        accounts = tree.user.ok("listAccounts", **params)
        assert [a["id"] for a in accounts["account"]] == [tree.user_account["id"]]
        users = tree.user.ok("listUsers", **params)
        assert [u["username"] for u in users["user"]] == [tree.user_account["name"]]
    tree.user.error("listAccounts", 531, id=tree.target_account["id"])
    err = tree.user.error("listUsers", 531, id=tree.target_account["user"][0]["id"])
    assert err["errortext"] == "Calling user is not authorized to see the user requested by id"
    me = tree.user.ok("listUsers", id=tree.user_account["user"][0]["id"])
    assert me["count"] == 1


# ------------------------------------------------------------------ createUser / listUsers
def test_create_user_and_list_users(admin):
    account, _ = new_account(admin, domainid=new_domain(admin)["id"])
    params = user_params(account, timezone="UTC")
    reply = admin.request("createUser", **params)
    assert reply.status == 200, reply.text
    user = reply.body["createuserresponse"]["user"]
    assert user["username"] == params["username"] and user["accountid"] == account["id"]
    assert user["domainid"] == account["domainid"] and user["roletype"] == "User"
    assert user["isdefault"] is False and user["usersource"] == "native" and user["timezone"] == "UTC"
    assert PASSWORD not in reply.text
    listed = admin.ok("listUsers", account=account["name"], domainid=account["domainid"])
    assert [u["username"] for u in listed["user"]] == [account["name"], params["username"]]
    assert len(admin.ok("listAccounts", id=account["id"])["account"][0]["user"]) == 2
    # Usernames are unique per domain, across accounts.
    err = admin.error("createUser", 431, **dict(user_params(account), username=params["username"]))
    assert err["errortext"].startswith(f"The user {params['username']} already exists in domain")
    err = admin.error("createUser", 431, **dict(user_params(account), account=unique("nobody")))
    assert err["errortext"].startswith("Unable to find account")
    # The new user can log in with its password.
    session = Client(admin.url)
    login = session.login(params["username"], PASSWORD, domain=account["domainpath"])
    assert login["username"] == params["username"]


def test_list_users_filters(admin, tree):
    username = tree.user_account["name"]
    found = admin.ok("listUsers", username=username, listall="true")
    assert [u["username"] for u in found["user"]] == [username]
    assert found["user"][0]["apikey"] and "secretkey" not in found["user"][0]
    assert admin.ok("listUsers", id=tree.user_account["user"][0]["id"])["count"] == 1
    by_type = admin.ok("listUsers", listall="true", accounttype=2, pagesize=-1)["user"]
    assert {u["accounttype"] for u in by_type} == {2}
    assert admin.ok("listUsers", listall="true", keyword=username)["count"] == 1
    assert admin.ok("listUsers", listall="true", usersource="native", username=username)["count"] == 1
    admin.error("listUsers", 431, usersource="kerberos")
    everyone = admin.ok("listUsers", listall="true", pagesize=-1)["user"]
    assert "system" not in {u["username"] for u in everyone}
    admin.error("listUsers", 431, id="6b1f3c6e-0000-4000-8000-000000000000")


def test_list_users_for_the_web_ui_after_login(admin, server):
    """The UI logs in, then reads ``listUsers&username=<name>&listall=true`` → ``user[0]``."""
    account, _ = new_account(admin, accounttype=2, domainid=new_domain(admin)["id"])
    ui = Client(server.url)
    ui.login(account["name"], PASSWORD, domain=account["domainpath"])
    users = ui.ok("listUsers", username=account["name"], listall="true")
    first = users["user"][0]
    assert (first["firstname"], first["lastname"], first["roletype"]) == ("Test", account["name"], "DomainAdmin")
    me = admin.ok("listUsers", username="admin", listall="true")["user"][0]
    assert me["roletype"] == "Admin" and me["isdefault"] is True


# ------------------------------------------------------------------ missing parameters
REQUIRED = {
    "createDomain": ["name"],
    "deleteDomain": ["id"],
    "createAccount": ["email", "firstname", "lastname", "password", "username"],
    "deleteAccount": ["id"],
    "createUser": ["account", "email", "firstname", "lastname", "password", "username"],
}


def _full_params(command: str, tree: Tree) -> dict[str, Any]:
    return {
        "createDomain": lambda: {"name": unique("dom")},
        "deleteDomain": lambda: {"id": tree.sub["id"]},
        "createAccount": lambda: account_params(tree.dom["id"]),
        "deleteAccount": lambda: {"id": tree.target_account["id"]},
        "createUser": lambda: user_params(tree.target_account),
    }[command]()


@pytest.mark.parametrize("command,param", [(c, p) for c, ps in REQUIRED.items() for p in ps])
def test_missing_required_parameter(tree, command, param):
    params = _full_params(command, tree)
    params.pop(param)
    reply = tree.root.request(command, **params)
    assert reply.status == 431, reply.text
    body = reply.body[f"{command.lower()}response"]
    assert body["errortext"] == f"Unable to execute API command {command.lower()} due to missing parameter {param}"
    assert body["cserrorcode"] == 9999


def test_declared_required_parameters_match(tree):
    apis = {a["name"]: a for a in tree.root.ok("listApis")["api"]}
    for command, required in REQUIRED.items():
        declared = sorted(p["name"] for p in apis[command]["params"] if p["required"])
        assert declared == sorted(required), command
    for command in ("deleteDomain", "deleteAccount"):
        assert apis[command]["isasync"] is True
    password = next(p for p in apis["createAccount"]["params"] if p["name"] == "password")
    assert password["type"] == "string"


# ------------------------------------------------------------------ role matrix
ALLOWED = {
    "createDomain": {"admin", "domainadmin"},
    "listDomains": {"admin", "domainadmin"},
    "deleteDomain": {"admin", "domainadmin"},
    "createAccount": {"admin", "domainadmin"},
    "listAccounts": {"admin", "domainadmin", "user"},
    "deleteAccount": {"admin", "domainadmin"},
    "createUser": {"admin", "domainadmin"},
    "listUsers": {"admin", "domainadmin", "user"},
}
ASYNC = {"deleteDomain", "deleteAccount"}


def _matrix_params(command: str, tree: Tree) -> dict[str, Any]:
    """Valid parameters inside the domain admin's subtree; fresh targets for the destructive calls."""
    makers: dict[str, Callable[[], dict[str, Any]]] = {
        "createDomain": lambda: {"name": unique("dom"), "parentdomainid": tree.dom["id"]},
        "listDomains": lambda: {"listall": "true"},
        "deleteDomain": lambda: {"id": new_domain(tree.root, parent=tree.dom["id"])["id"]},
        "createAccount": lambda: account_params(tree.dom["id"]),
        "listAccounts": lambda: {"listall": "true"},
        "deleteAccount": lambda: {"id": new_account(tree.root, domainid=tree.dom["id"])[0]["id"]},
        "createUser": lambda: user_params(tree.target_account),
        "listUsers": lambda: {"listall": "true"},
    }
    return makers[command]()


@pytest.mark.parametrize("role", ["admin", "domainadmin", "user"])
@pytest.mark.parametrize("command", sorted(ALLOWED))
def test_role_matrix(tree, command, role):
    client = tree.client(role)
    params = _matrix_params(command, tree)
    if role in ALLOWED[command]:
        if command in ASYNC:
            assert client.run_async(command, **params) == {"success": True}
        else:
            client.ok(command, **params)
        return
    reply = client.request(command, **params)
    assert reply.status == 432, reply.text
    assert reply.body["errorresponse"]["errortext"] == (
        f"The API [{command}] does not exist or is not available for the account {tree.account_name(role)}.")


# ------------------------------------------------------------------ domain admins stay in their subtree
def test_domain_admin_limited_to_subtree(tree):
    dadmin = tree.dadmin
    err = dadmin.error("createDomain", 531, name=unique("dom"))  # ROOT is above the domain admin
    assert err["errortext"].endswith(f"does not have permission to operate within domain id={_root_id(tree)}")
    dadmin.error("createDomain", 531, name=unique("dom"), parentdomainid=tree.sibling["id"])
    sub = dadmin.ok("createDomain", name=unique("dom"), parentdomainid=tree.sub["id"])["domain"]
    assert sub["level"] == 3
    dadmin.error("createAccount", 531, **account_params(tree.sibling["id"]))
    dadmin.error("createAccount", 531, **account_params(None))
    made = dadmin.ok("createAccount", **account_params(tree.sub["id"]))["account"]
    assert made["domainid"] == tree.sub["id"]
    # No account of a role type above the caller's.
    err = dadmin.error("createAccount", 531, **account_params(tree.dom["id"], accounttype=3))
    assert "has a lower role type than the user account" in err["errortext"]
    dadmin.error("createUser", 531, **user_params(tree.sibling_account))
    # Lists stop at the subtree.
    domains = {d["id"] for d in dadmin.ok("listDomains", listall="true", pagesize=-1)["domain"]}
    assert {tree.dom["id"], tree.sub["id"], sub["id"]} <= domains
    assert tree.sibling["id"] not in domains and _root_id(tree) not in domains
    assert [d["id"] for d in dadmin.ok("listDomains")["domain"]] == [tree.dom["id"]]
    dadmin.error("listDomains", 531, id=tree.sibling["id"])
    accounts = {a["id"] for a in dadmin.ok("listAccounts", listall="true", pagesize=-1)["account"]}
    assert {tree.user_account["id"], tree.dadmin_account["id"], made["id"]} <= accounts
    assert tree.sibling_account["id"] not in accounts
    users = {u["accountid"] for u in dadmin.ok("listUsers", listall="true", pagesize=-1)["user"]}
    assert tree.sibling_account["id"] not in users and tree.user_account["id"] in users
    dadmin.error("listAccounts", 531, id=tree.sibling_account["id"])
    dadmin.error("listUsers", 531, domainid=tree.sibling["id"])
    # Deletes outside the subtree are refused at submission.
    dadmin.error("deleteAccount", 531, id=tree.sibling_account["id"])
    dadmin.error("deleteDomain", 531, id=tree.sibling["id"])
    admin_account = tree.root.ok("listAccounts")["account"][0]
    dadmin.error("deleteAccount", 531, id=admin_account["id"])


def test_domain_admin_lists_stop_at_its_subtree_whatever_the_names(admin):
    """'_' and '%' in a domain name are not wildcards: ``a_1`` does not reach its sibling ``ax1``."""
    tag = unique("w").replace("-", "")
    mine = new_domain(admin, name=f"{tag}_1")
    other = new_domain(admin, name=f"{tag}x1")
    _, dadmin = new_account(admin, accounttype=2, domainid=mine["id"])
    stranger, _ = new_account(admin, domainid=other["id"])
    assert stranger["name"] not in {u["username"] for u in dadmin.ok("listUsers", listall="true")["user"]}
    assert stranger["id"] not in {a["id"] for a in dadmin.ok("listAccounts", listall="true")["account"]}
    assert other["id"] not in {d["id"] for d in dadmin.ok("listDomains", listall="true")["domain"]}


def _root_id(tree: Tree) -> str:
    return tree.root.ok("listDomains", name="ROOT")["domain"][0]["id"]


# ------------------------------------------------------------------ deleteDomain
def test_delete_domain_refused_without_cleanup(admin):
    parent = new_domain(admin)
    new_domain(admin, parent=parent["id"])
    result = job_error(admin, "deleteDomain", id=parent["id"])
    assert result["errorcode"] == 530 and DELETE_REFUSED in result["errortext"]
    assert f"Delete failed on domain {parent['name']}" in result["errortext"]
    with_account = new_domain(admin)
    new_account(admin, domainid=with_account["id"])
    result = job_error(admin, "deleteDomain", id=with_account["id"], cleanup="false")
    assert DELETE_REFUSED in result["errortext"]
    # Nothing was removed.
    assert admin.ok("listDomains", id=parent["id"])["domain"][0]["state"] == "Active"
    assert admin.ok("listAccounts", domainid=with_account["id"])["count"] == 1


def test_delete_empty_domain(admin):
    parent = new_domain(admin)
    child = new_domain(admin, parent=parent["id"])
    submitted = admin.ok("deleteDomain", id=child["id"])
    job = admin.wait_job(submitted["jobid"])
    assert job["jobstatus"] == 1 and job["jobresult"] == {"success": True}
    assert job["jobinstancetype"] == "Domain" and job["jobinstanceid"] == child["id"]
    assert job["cmd"] == "org.apache.cloudstack.api.command.admin.domain.DeleteDomainCmd"
    admin.error("listDomains", 431, id=child["id"])
    assert admin.ok("listDomains", id=parent["id"])["domain"][0]["haschild"] is False
    # The name is free again under the same parent.
    again = new_domain(admin, name=child["name"], parent=parent["id"])
    assert again["path"] == child["path"] and again["id"] != child["id"]
    deleted = [e for e in events_of(admin, "DOMAIN.DELETE") if child["id"] in e["description"]]
    assert {e["state"] for e in deleted} == {"Scheduled", "Completed"}


def test_delete_domain_with_cleanup(admin):
    top = new_domain(admin)
    mid = new_domain(admin, parent=top["id"])
    leaf = new_domain(admin, parent=mid["id"])
    top_account, top_user = new_account(admin, domainid=top["id"])
    leaf_account, leaf_user = new_account(admin, accounttype=2, domainid=leaf["id"])
    leaf_user.ok("listZones")
    assert admin.run_async("deleteDomain", id=top["id"], cleanup="true") == {"success": True}
    for domain in (top, mid, leaf):
        admin.error("listDomains", 431, id=domain["id"])
    remaining = {a["id"] for a in admin.ok("listAccounts", listall="true", pagesize=-1)["account"]}
    assert top_account["id"] not in remaining and leaf_account["id"] not in remaining
    for client in (top_user, leaf_user):
        assert client.request("listZones").status == 401
    assert admin.ok("listUsers", listall="true", username=leaf_account["name"]).get("count", 0) == 0
    completed = [e for e in events_of(admin, "DOMAIN.DELETE") if top["id"] in e["description"]]
    assert [e["state"] for e in completed] == ["Completed", "Scheduled"]  # newest first


def test_root_domain_cannot_be_deleted(admin, tree):
    err = admin.error("deleteDomain", 531, id=_root_id(tree))
    assert err["errortext"] == "Can't delete ROOT domain"
    admin.error("deleteDomain", 431, id="5d6f0000-0000-4000-8000-000000000000")


def test_domain_admin_deletes_inside_its_subtree(admin):
    dom = new_domain(admin)
    _, dadmin = new_account(admin, accounttype=2, domainid=dom["id"])
    child = dadmin.ok("createDomain", name=unique("dom"), parentdomainid=dom["id"])["domain"]
    account = dadmin.ok("createAccount", **account_params(child["id"]))["account"]
    assert dadmin.run_async("deleteDomain", id=child["id"], cleanup="true") == {"success": True}
    admin.error("listAccounts", 431, id=account["id"])


# ------------------------------------------------------------------ deleteAccount
def test_default_accounts_cannot_be_deleted(admin):
    admin_account = admin.ok("listAccounts")["account"][0]
    assert admin_account["name"] == "admin" and admin_account["isdefault"] is True
    err = admin.error("deleteAccount", 431, id=admin_account["id"])
    assert err["errortext"] == "The account is default and can't be removed"
    assert err["cserrorcode"] == 4350


def test_delete_account(admin):
    dom = new_domain(admin)
    account, client = new_account(admin, domainid=dom["id"])
    extra = admin.ok("createUser", **user_params(account))["user"]
    assert client.ok("listAccounts")["count"] == 1
    submitted = admin.ok("deleteAccount", id=account["id"])
    job = admin.wait_job(submitted["jobid"])
    assert job["jobstatus"] == 1 and job["jobresult"] == {"success": True}
    assert job["jobinstancetype"] == "Account" and job["jobinstanceid"] == account["id"]
    # Keys of the removed account stop working at once.
    reply = client.request("listAccounts")
    assert reply.status == 401 and reply.inner()["errorcode"] == 401
    admin.error("listAccounts", 431, id=account["id"])
    admin.error("listUsers", 431, id=extra["id"])
    assert admin.request("listUsers", account=account["name"], domainid=dom["id"]).status == 431
    # Its name can be used again, and the domain is now empty.
    new_account(admin, domainid=dom["id"], name=account["name"])
    events = [e for e in events_of(admin, "ACCOUNT.DELETE") if account["id"] in e["description"]]
    assert {e["state"] for e in events} == {"Scheduled", "Completed"}
    assert all(e["description"].endswith("and all corresponding users") for e in events)


def test_password_login_stops_after_delete(admin, server):
    account, _ = new_account(admin)
    ui = Client(server.url)
    ui.login(account["name"], PASSWORD)
    assert ui.ok("listUsers")["count"] == 1
    admin.run_async("deleteAccount", id=account["id"])
    assert ui.request("listUsers").status == 401
    again = Client(server.url).request("login", method="POST", signed=False, username=account["name"],
                                       password=PASSWORD, domain="/")
    assert again.status == 531


# ------------------------------------------------------------------ events
def test_tenancy_events_are_listed(admin):
    dom = new_domain(admin)
    params = account_params(dom["id"])
    account = admin.ok("createAccount", **params)["account"]
    extra = admin.ok("createUser", **user_params(account))["user"]
    assert any(dom["name"] in e["description"] for e in events_of(admin, "DOMAIN.CREATE"))
    assert any(params["username"] in e["description"] for e in events_of(admin, "ACCOUNT.CREATE"))
    user_events = [e["description"] for e in events_of(admin, "USER.CREATE")]
    assert any(params["username"] in d for d in user_events) and any(extra["username"] in d for d in user_events)
    for event_type in ("DOMAIN.CREATE", "ACCOUNT.CREATE", "USER.CREATE"):
        for event in events_of(admin, event_type):
            assert PASSWORD not in event["description"]
            assert event["account"] == "admin" and event["level"] == "INFO"


# ------------------------------------------------------------------ service hooks, on a real database
@pytest.fixture(scope="module")
def db(database_factory):
    database = Database(database_factory("tenancy"))
    database.create_schema()
    with database.transaction() as session:
        bootstrap.seed(session)
    yield database
    database.dispose()


def _make_account(db, domain_id: int = 1) -> int:
    with db.transaction() as s:
        name = unique("svc")
        account, _ = tenancy.create_account(s, caller=s.get(Account, 2), domain=s.get(Domain, domain_id),
                                            username=name, password=PASSWORD, firstname="F", lastname="L",
                                            email=None, account_type=0)
        return account.id


def test_password_is_stored_hashed(db):
    account_id = _make_account(db)
    with db.transaction() as s:
        user = s.scalars(select(User).where(User.account_id == account_id)).one()
        assert user.password != PASSWORD and verify_password(user.password, PASSWORD)
        assert user.source == "UNKNOWN"


def test_account_delete_hook_refuses_and_rolls_back(db, monkeypatch):
    account_id = _make_account(db)
    seen: list[tuple[int, bool]] = []

    def cleaner(session, account):
        seen.append((account.id, account.removed is None))

    def refuser(session, account):
        raise ResourceInUse(f"Account {account.account_name} still has KMS keys")

    monkeypatch.setattr(tenancy, "ACCOUNT_DELETE_HOOKS", [cleaner, refuser])
    with pytest.raises(ResourceInUse, match="still has KMS keys"), db.transaction() as s:
        tenancy.delete_account(s, s.get(Account, account_id))
    with db.transaction() as s:
        assert s.get(Account, account_id).removed is None
        assert s.scalars(select(User).where(User.account_id == account_id)).one().removed is None
    assert seen == [(account_id, True)]  # the hook saw the account while still live

    monkeypatch.setattr(tenancy, "ACCOUNT_DELETE_HOOKS", [cleaner])
    with db.transaction() as s:
        tenancy.delete_account(s, s.get(Account, account_id))
    with db.transaction() as s:
        account = s.get(Account, account_id)
        assert account.removed is not None and account.state == "removed"
        assert s.scalars(select(User).where(User.account_id == account_id)).one().removed is not None


def test_domain_cleanup_runs_hooks_and_checks(db, monkeypatch):
    with db.transaction() as s:
        admin = s.get(Account, 2)
        top = tenancy.create_domain(s, name=unique("top"), parent=s.get(Domain, 1), owner=admin)
        leaf = tenancy.create_domain(s, name=unique("leaf"), parent=top, owner=admin)
        top_id, leaf_id = top.id, leaf.id
    accounts = {_make_account(db, top_id), _make_account(db, leaf_id)}
    hooked_accounts: list[int] = []
    hooked_domains: list[int] = []
    checked: list[int] = []

    def refuse_leaf(session, domain):
        checked.append(domain.id)
        if domain.id == leaf_id:
            raise ResourceInUse("leaf is pinned")

    monkeypatch.setattr(tenancy, "ACCOUNT_DELETE_HOOKS", [lambda s, a: hooked_accounts.append(a.id)])
    monkeypatch.setattr(tenancy, "DOMAIN_DELETE_HOOKS", [lambda s, d: hooked_domains.append(d.id)])
    monkeypatch.setattr(tenancy, "DOMAIN_DELETE_CHECKS", [refuse_leaf])
    with pytest.raises(ResourceInUse), db.transaction() as s:
        tenancy.delete_domain(s, s.get(Domain, top_id), cleanup=True)
    assert hooked_accounts == [] and hooked_domains == []  # checks run before any change
    with db.transaction() as s:
        assert s.get(Domain, leaf_id).removed is None

    monkeypatch.setattr(tenancy, "DOMAIN_DELETE_CHECKS", [lambda s, d: checked.append(d.id)])
    with pytest.raises(CloudRuntimeError, match="Please make sure all users and sub domains"), \
            db.transaction() as s:
        tenancy.delete_domain(s, s.get(Domain, top_id), cleanup=False)
    with db.transaction() as s:
        tenancy.delete_domain(s, s.get(Domain, top_id), cleanup=True)
    assert set(hooked_accounts) == accounts
    assert hooked_domains == [leaf_id, top_id]  # deepest first
    with db.transaction() as s:
        assert all(s.get(Account, a).removed is not None for a in accounts)
        assert s.get(Domain, top_id).removed is not None and s.get(Domain, leaf_id).state == "Inactive"
        assert s.get(Domain, 1).child_count >= 0
