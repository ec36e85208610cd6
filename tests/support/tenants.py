"""Tenant factories for tests: fresh domains and accounts made through the real API.

Every name is unique (random suffix), so tests never depend on each other or on order::

    dom = new_domain(admin)                                   # a child of ROOT
    acct, user = new_account(admin)                           # a plain user in ROOT
    dadm, dadmin = new_account(admin, accounttype=2, domainid=dom["id"])   # a domain admin

``new_account`` returns the ``account`` object of ``createAccount`` (with its first user
under ``account["user"][0]``) and a signed :class:`Client` for that user. Every account
gets :data:`PASSWORD`, so a test may also ``login`` with it.
"""
from __future__ import annotations

from dataclasses import dataclass

import secrets

from .client import Client

#: The password of every user made by :func:`new_account`.
PASSWORD = "Test-Passw0rd!"


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def new_domain(admin: Client, name: str | None = None, parent: str | None = None) -> dict:
    """Create a domain (under ``parent``, a domain id; ROOT by default) and return its ``domain`` object."""
    return admin.ok("createDomain", name=name or unique("dom"), parentdomainid=parent)["domain"]


def new_account(admin: Client, accounttype: int = 0, domainid: str | None = None,
                name: str | None = None) -> tuple[dict, Client]:
    """Create an account (its user has the same name) and return it with a signed client of its user.

    ``accounttype``: 0 user, 1 root admin (ROOT only), 2 domain admin, 3 resource admin.
    ``admin`` must be allowed to create it (root admin, or a domain admin above ``domainid``).
    """
    name = name or unique("acct")
    account = admin.ok("createAccount", accounttype=accounttype, username=name, account=name, password=PASSWORD,
                       email=f"{name}@example.com", firstname="Test", lastname=name, domainid=domainid)["account"]
    user = account["user"][0]
    keys = admin.ok("registerUserKeys", id=user["id"])["userkeys"]
    return account, Client(admin.url, keys["apikey"], keys["secretkey"])


@dataclass
class TenantTree:
    """ROOT ─ dom (domain admin, user, peer) ─ sub (subuser); ROOT ─ other (stranger, other domain admin)."""

    root: Client
    zone: str
    default_profile: str
    dom: dict
    sub: dict
    other: dict
    dadmin_account: dict
    dadmin: Client
    user_account: dict
    user: Client
    peer_account: dict
    peer: Client
    subuser_account: dict
    subuser: Client
    stranger_account: dict
    stranger: Client
    other_dadmin: Client


def tenant_tree(root: Client) -> TenantTree:
    """Fresh domains and accounts for permission and visibility tests (one per test module)."""
    dom = new_domain(root)
    sub = new_domain(root, parent=dom["id"])
    other = new_domain(root)
    dadmin_account, dadmin = new_account(root, accounttype=2, domainid=dom["id"])
    user_account, user = new_account(root, domainid=dom["id"])
    peer_account, peer = new_account(root, domainid=dom["id"])
    subuser_account, subuser = new_account(root, domainid=sub["id"])
    stranger_account, stranger = new_account(root, domainid=other["id"])
    _, other_dadmin = new_account(root, accounttype=2, domainid=other["id"])
    zone = root.ok("listZones", name="zone1")["zone"][0]["id"]
    default = root.ok("listHSMProfiles", name="HSM Database Provider")["hsmprofile"][0]["id"]
    return TenantTree(root, zone, default, dom, sub, other, dadmin_account, dadmin, user_account, user, peer_account,
                      peer, subuser_account, subuser, stranger_account, stranger, other_dadmin)
