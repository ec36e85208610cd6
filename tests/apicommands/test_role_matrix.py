"""The role matrix: every command that takes the id of a user, an account or an owned resource
(or acts for an account), called by each kind of caller on each kind of target.

The expected answer of every cell comes from the two tables below, written out by hand from the
rule (``cloudstack_kms/services/access.py``), not computed by the server's code:

* ``ACT``: changing, deleting, using or reading the secrets of the target. Own account, or root
  admin, or in scope *and* of a strictly lower role.
* ``SEE``: reading what the target's jobs did (scope only, as the list commands).

A command a role cannot call at all answers 432 to that role. A refused call changes nothing;
each command's ``after`` check proves it by looking through the root admin.

Callers log in with a password and call with the session key, as the web UI does; that keeps
them working when a cell replaces their API keys.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support.client import Client, Reply
from tests.support.tenants import PASSWORD, new_account, new_domain, unique

A, D = True, False  # allowed, denied

CALLERS = ("root", "dadmin_root", "dadmin_child", "user")
TARGETS = ("root_admin", "dadmin_root", "dadmin_child", "user_child", "user_other_child", "self")

#                 root_admin  dadmin_root  dadmin_child  user_child  user_other_child  self
ACT = {
    "root":         (A,         A,           A,            A,          A,                A),
    "dadmin_root":  (D,         D,           D,            A,          A,                A),
    "dadmin_child": (D,         D,           D,            A,          D,                A),
    "user":         (D,         D,           D,            D,          D,                A),
}
SEE = {
    "root":         (A,         A,           A,            A,          A,                A),
    "dadmin_root":  (A,         A,           A,            A,          A,                A),
    "dadmin_child": (D,         D,           A,            A,          D,                A),
    "user":         (D,         D,           D,            D,          D,                A),
}
ADMIN_ROLES = {"root", "dadmin_root", "dadmin_child"}
ALL_ROLES = set(CALLERS)
ROOT_ONLY = {"root"}


@dataclass
class Party:
    """An account with its first user, and a logged-in session client of that user."""

    account: dict
    client: Client

    @property
    def user_id(self) -> str:
        return self.account["user"][0]["id"]

    @property
    def name(self) -> str:
        return self.account["name"]

    @property
    def domain_id(self) -> str:
        return self.account["domainid"]


@dataclass
class World:
    root: Client  # the built-in admin, signed: sets things up and checks effects
    url: str
    zone: str
    profile: str
    offering: str
    child: dict
    other_child: dict
    callers: dict[str, Party] = field(default_factory=dict)
    targets: dict[str, Party] = field(default_factory=dict)  # fixed targets (not "self")

    def target(self, caller: str, kind: str) -> Party:
        return self.callers[caller] if kind == "self" else self.targets[kind]

    def fresh(self, kind: str, caller: str) -> Party:
        """A new account of the same kind as a target (for cells that delete it)."""
        if kind == "self":
            return self.callers[caller]
        accounttype, domain = {"root_admin": (1, None), "dadmin_root": (2, None),
                               "dadmin_child": (2, self.child["id"]), "user_child": (0, self.child["id"]),
                               "user_other_child": (0, self.other_child["id"])}[kind]
        return party(self.root, self.url, accounttype, domain)

    def key_of(self, owner: Party) -> dict:
        return self.root.ok("createKMSKey", name=unique("mx"), zoneid=self.zone, hsmprofileid=self.profile,
                            account=owner.name, domainid=owner.domain_id)["kmskey"]

    def volume_of(self, owner: Party) -> dict:
        return self.root.run_async("createVolume", name=unique("mx"), zoneid=self.zone, diskofferingid=self.offering,
                                   account=owner.name, domainid=owner.domain_id)["volume"]


def party(root: Client, url: str, accounttype: int, domainid: str | None, path: str = "/") -> Party:
    account, _signed = new_account(root, accounttype=accounttype, domainid=domainid)
    if domainid is not None:
        path = root.ok("listDomains", id=domainid)["domain"][0]["path"]
        path = "/" + path.split("/", 1)[1] + "/" if "/" in path else "/"  # "ROOT/a" -> "/a/"
    client = Client(url)
    client.login(account["user"][0]["username"], PASSWORD, domain=path)
    return Party(account, client)


@pytest.fixture(scope="module")
def world(server, admin_keys) -> World:
    root = Client(server.url, admin_keys["apikey"], admin_keys["secretkey"])
    child, other_child = new_domain(root), new_domain(root)
    offering = root.ok("createDiskOffering", name=unique("mx"), disksize=1)["diskoffering"]["id"]
    w = World(root, server.url, root.ok("listZones", name="zone1")["zone"][0]["id"],
              root.ok("listHSMProfiles", name="HSM Database Provider")["hsmprofile"][0]["id"], offering,
              child, other_child)
    w.callers = {"root": party(root, server.url, 1, None), "dadmin_root": party(root, server.url, 2, None),
                 "dadmin_child": party(root, server.url, 2, child["id"]),
                 "user": party(root, server.url, 0, child["id"])}
    w.targets = {"root_admin": party(root, server.url, 1, None), "dadmin_root": party(root, server.url, 2, None),
                 "dadmin_child": party(root, server.url, 2, child["id"]),
                 "user_child": party(root, server.url, 0, child["id"]),
                 "user_other_child": party(root, server.url, 0, other_child["id"])}
    return w


# ------------------------------------------------------------------ the commands
@dataclass
class Cell:
    """What one command does in one cell: its parameters, and how to check the effect."""

    params: dict[str, Any]
    after: Callable[[bool], None] = lambda allowed: None  # called with whether it was allowed


@dataclass
class Spec:
    command: str
    roles: set[str]
    rule: dict[str, tuple[bool, ...]]
    prepare: Callable[[World, str, str], Cell]
    is_async: bool = False
    skip_targets: tuple[str, ...] = ()
    denied: int = 531  # PermissionDenied; a job answers as if unknown (431), as upstream


def user_keys(w: World, target: Party) -> dict:
    return w.root.ok("getUserKeys", id=target.user_id)["userkeys"]


def prep_get_user_keys(w: World, caller: str, kind: str) -> Cell:
    return Cell({"id": w.target(caller, kind).user_id})


def prep_register_user_keys(w: World, caller: str, kind: str) -> Cell:
    target = w.target(caller, kind)
    before = user_keys(w, target)

    def after(allowed: bool) -> None:
        assert (user_keys(w, target) != before) is allowed

    return Cell({"id": target.user_id}, after)


def prep_create_user(w: World, caller: str, kind: str) -> Cell:
    target, name = w.target(caller, kind), unique("mxu")

    def after(allowed: bool) -> None:
        found = w.root.ok("listUsers", username=name, listall="true").get("user", [])
        assert len(found) == (1 if allowed else 0)

    return Cell({"account": target.name, "domainid": target.domain_id, "username": name, "password": PASSWORD,
                 "email": f"{name}@example.com", "firstname": "M", "lastname": "X"}, after)


def prep_delete_account(w: World, caller: str, kind: str) -> Cell:
    target = w.fresh(kind, caller)

    def after(allowed: bool) -> None:
        reply = w.root.request("listAccounts", id=target.account["id"], listall="true")
        assert reply.status == (431 if allowed else 200), reply.text  # a removed account's id is unknown

    return Cell({"id": target.account["id"]}, after)


def prep_create_kms_key(w: World, caller: str, kind: str) -> Cell:
    target, name = w.target(caller, kind), unique("mxk")

    def after(allowed: bool) -> None:
        found = w.root.ok("listKMSKeys", keyword=name, listall="true").get("kmskey", [])
        assert len(found) == (1 if allowed else 0)
        if allowed:
            assert found[0]["account"] == target.name

    return Cell({"name": name, "zoneid": w.zone, "hsmprofileid": w.profile, "account": target.name,
                 "domainid": target.domain_id}, after)


def key_after(w: World, key: dict, check: Callable[[dict | None], bool]) -> Callable[[bool], None]:
    def after(allowed: bool) -> None:
        found = w.root.ok("listKMSKeys", id=key["id"], listall="true").get("kmskey", [])
        assert check(found[0] if found else None) is allowed, found

    return after


def prep_update_kms_key(w: World, caller: str, kind: str) -> Cell:
    key, new_name = w.key_of(w.target(caller, kind)), unique("renamed")
    return Cell({"id": key["id"], "name": new_name}, key_after(w, key, lambda k: k is not None and k["name"] == new_name))


def prep_delete_kms_key(w: World, caller: str, kind: str) -> Cell:
    """Deleted: gone (kms.key.deletion.pending.days = 0) or pending deletion (the default)."""
    key = w.key_of(w.target(caller, kind))
    return Cell({"id": key["id"]}, key_after(w, key, lambda k: k is None or k["state"] == "PendingDeletion"))


def prep_cancel_kms_key_deletion(w: World, caller: str, kind: str) -> Cell:
    """A key of the target whose deletion the root admin requested (the default waiting period)."""
    key = w.key_of(w.target(caller, kind))
    w.root.run_async("deleteKMSKey", id=key["id"])
    pending = w.root.ok("listKMSKeys", id=key["id"], listall="true")["kmskey"][0]
    assert pending["state"] == "PendingDeletion", pending
    return Cell({"id": key["id"]}, key_after(w, key, lambda k: k is not None and k["state"] == "Enabled"))


def prep_rotate_kms_key(w: World, caller: str, kind: str) -> Cell:
    key = w.key_of(w.target(caller, kind))
    return Cell({"id": key["id"]}, key_after(w, key, lambda k: k is not None and k["version"] == 2))


def prep_migrate_volumes(w: World, caller: str, kind: str) -> Cell:
    key = w.key_of(w.target(caller, kind))
    return Cell({"kmskeyid": key["id"], "zoneid": w.zone})


def prep_create_volume(w: World, caller: str, kind: str) -> Cell:
    target, name = w.target(caller, kind), unique("mxv")

    def after(allowed: bool) -> None:
        found = w.root.ok("listVolumes", name=name, listall="true").get("volume", [])
        assert len(found) == (1 if allowed else 0)
        if allowed:
            assert found[0]["account"] == target.name

    return Cell({"name": name, "zoneid": w.zone, "diskofferingid": w.offering, "account": target.name,
                 "domainid": target.domain_id}, after)


def volume_after(w: World, volume: dict, present_when_allowed: bool) -> Callable[[bool], None]:
    def after(allowed: bool) -> None:
        found = w.root.ok("listVolumes", id=volume["id"], listall="true").get("volume", [])
        assert bool(found) == (present_when_allowed if allowed else True)

    return after


def prep_delete_volume(w: World, caller: str, kind: str) -> Cell:
    volume = w.volume_of(w.target(caller, kind))
    return Cell({"id": volume["id"]}, volume_after(w, volume, present_when_allowed=False))


def prep_check_volume(w: World, caller: str, kind: str) -> Cell:
    volume = w.volume_of(w.target(caller, kind))
    return Cell({"id": volume["id"]}, volume_after(w, volume, present_when_allowed=True))


def volume_state_after(w: World, volume: dict, when_allowed: str, otherwise: str) -> Callable[[bool], None]:
    def after(allowed: bool) -> None:
        found = w.root.ok("listVolumes", id=volume["id"], listall="true")["volume"][0]
        assert found["state"] == (when_allowed if allowed else otherwise), found

    return after


def prep_destroy_volume(w: World, caller: str, kind: str) -> Cell:
    volume = w.volume_of(w.target(caller, kind))
    return Cell({"id": volume["id"]}, volume_state_after(w, volume, "Destroy", "Ready"))


def prep_recover_volume(w: World, caller: str, kind: str) -> Cell:
    volume = w.volume_of(w.target(caller, kind))
    w.root.run_async("destroyVolume", id=volume["id"])
    return Cell({"id": volume["id"]}, volume_state_after(w, volume, "Ready", "Destroy"))


def prep_create_hsm_profile(w: World, caller: str, kind: str) -> Cell:
    target, name = w.target(caller, kind), unique("mxp")

    def after(allowed: bool) -> None:
        found = w.root.ok("listHSMProfiles", keyword=name, listall="true").get("hsmprofile", [])
        assert [p["account"] for p in found] == ([target.name] if allowed else [])

    return Cell({"name": name, "protocol": "database", "account": target.name, "domainid": target.domain_id}, after)


def user_state(w: World, user_id: str) -> str | None:
    """The user's state, or None once it is removed (its id is then unknown: 431)."""
    reply = w.root.request("listUsers", id=user_id, listall="true")
    if reply.status == 431:
        return None
    assert reply.status == 200, reply.text
    return reply.inner()["user"][0]["state"]


def state_cell(w: World, target: Party, want_when_allowed: str) -> Cell:
    """For enableUser/disableUser/lockUser on the target's own user. The built-in admin puts the user
    (and its account) back to ``enabled`` before checking, so later cells find every party usable."""
    before = user_state(w, target.user_id)

    def after(allowed: bool) -> None:
        state = user_state(w, target.user_id)
        w.root.ok("enableUser", id=target.user_id)
        assert state == (want_when_allowed if allowed else before), (state, before)

    return Cell({"id": target.user_id}, after)


def prep_disable_user(w: World, caller: str, kind: str) -> Cell:
    return state_cell(w, w.target(caller, kind), "disabled")


def prep_lock_user(w: World, caller: str, kind: str) -> Cell:
    return state_cell(w, w.target(caller, kind), "locked")


def prep_enable_user(w: World, caller: str, kind: str) -> Cell:
    target = w.target(caller, kind)
    if kind != "self":  # a caller that disabled itself could not call at all
        w.root.run_async("disableUser", id=target.user_id)
    return state_cell(w, target, "enabled")


def prep_delete_user(w: World, caller: str, kind: str) -> Cell:
    """A second user of the target's account (the first one keeps the party usable)."""
    target, name = w.target(caller, kind), unique("mxd")
    user = w.root.ok("createUser", account=target.name, domainid=target.domain_id, username=name,
                     password=PASSWORD, email=f"{name}@example.com", firstname="M", lastname="X")["user"]

    def after(allowed: bool) -> None:
        assert (user_state(w, user["id"]) is None) is allowed

    return Cell({"id": user["id"]}, after)


def prep_query_job(w: World, caller: str, kind: str) -> Cell:
    """A job the target ran itself (deleting one of its own keys)."""
    target = w.target(caller, kind)
    key = w.key_of(target)
    job = target.client.ok("deleteKMSKey", id=key["id"])["jobid"]
    target.client.wait_job(job)
    return Cell({"jobid": job})


SPECS = [
    Spec("getUserKeys", ALL_ROLES, ACT, prep_get_user_keys),
    Spec("registerUserKeys", ALL_ROLES, ACT, prep_register_user_keys),
    Spec("createUser", ADMIN_ROLES, ACT, prep_create_user),
    Spec("deleteAccount", ADMIN_ROLES, ACT, prep_delete_account, is_async=True, skip_targets=("self",)),
    Spec("createKMSKey", ALL_ROLES, ACT, prep_create_kms_key),
    Spec("updateKMSKey", ALL_ROLES, ACT, prep_update_kms_key),
    Spec("deleteKMSKey", ALL_ROLES, ACT, prep_delete_kms_key, is_async=True),
    Spec("cancelKMSKeyDeletion", ALL_ROLES, ACT, prep_cancel_kms_key_deletion),
    Spec("rotateKMSKey", ALL_ROLES, ACT, prep_rotate_kms_key, is_async=True),
    Spec("migrateVolumesToKMS", ROOT_ONLY, ACT, prep_migrate_volumes, is_async=True),
    Spec("createVolume", ALL_ROLES, ACT, prep_create_volume, is_async=True),
    Spec("deleteVolume", ALL_ROLES, ACT, prep_delete_volume),
    Spec("checkVolume", ROOT_ONLY, ACT, prep_check_volume, is_async=True),
    Spec("destroyVolume", ALL_ROLES, ACT, prep_destroy_volume, is_async=True),
    Spec("recoverVolume", ALL_ROLES, ACT, prep_recover_volume),
    Spec("createHSMProfile", ROOT_ONLY, ACT, prep_create_hsm_profile),
    Spec("queryAsyncJobResult", ALL_ROLES, SEE, prep_query_job, denied=431),
    # "self": a caller that disabled itself cannot poll its job; test_tenancy_ui covers that case
    Spec("disableUser", ADMIN_ROLES, ACT, prep_disable_user, is_async=True, skip_targets=("self",)),
    Spec("lockUser", ADMIN_ROLES, ACT, prep_lock_user),
    Spec("enableUser", ADMIN_ROLES, ACT, prep_enable_user),
    # "self": a second user of the caller's own account is a peer, not the caller (access.may_act_on_user)
    Spec("deleteUser", ADMIN_ROLES, ACT, prep_delete_user, skip_targets=("self",)),
]

CASES = [pytest.param(spec, caller, kind, id=f"{spec.command}-{caller}-on-{kind}")
         for spec in SPECS for caller in CALLERS for kind in TARGETS if kind not in spec.skip_targets]


def expected(spec: Spec, caller: str, kind: str) -> int:
    if caller not in spec.roles:
        return 432
    return 200 if spec.rule[caller][TARGETS.index(kind)] else spec.denied


def outcome(w: World, spec: Spec, reply: Reply, client: Client) -> int:
    """The status of the call, or of its job for an async command accepted at submission."""
    if reply.status != 200 or not spec.is_async:
        return reply.status
    job = client.wait_job(reply.inner()["jobid"])
    return 200 if job["jobstatus"] == 1 else job["jobresult"]["errorcode"]


@pytest.mark.parametrize("spec, caller, kind", CASES)
def test_role_matrix(world, spec: Spec, caller: str, kind: str):
    cell = spec.prepare(world, caller, kind)
    client = world.callers[caller].client
    reply = client.request(spec.command, **cell.params)
    want = expected(spec, caller, kind)
    got = outcome(world, spec, reply, client)
    assert got == want, f"{spec.command} by {caller} on {kind}: {got}, wanted {want}: {reply.text}"
    if want != 200:
        assert "secretkey" not in reply.text
    cell.after(want == 200)


#: Commands that name an account, a user or an owned resource but are not in SPECS, and why.
EXEMPT = {
    "createAccount": "creates a new account; the role-type rule of creation is tested in test_tenancy",
    "addHSMProfile": "the same declaration as createHSMProfile under the admin guide's name",
    "updateConfiguration": "root admins only; account-scoped settings are tested in test_tenancy",
    "login": "names the caller's own user",
}
OWNED_PARAMS = {"account", "accountid", "userid", "jobid", "kmskeyid", "volumeids"}
OWNED_LISTS = {"listUsers", "listAccounts", "listKMSKeys", "listVolumes", "listAsyncJobs"}


def test_the_tables_cover_every_command_that_takes_someones_id():
    """A new command that names a user, an account or an owned resource needs a row here.
    List commands only narrow by scope (``list_scope``), tested in test_tenancy and test_kms_permissions."""
    from cloudstack_kms.api.command import Registry
    covered = {spec.command for spec in SPECS}
    for name, cls in Registry.discover(extra=[]).commands.items():
        if name.startswith("list"):
            continue
        fields = cls.param_fields()
        names_owned = set(fields) & OWNED_PARAMS or any(
            f.metadata.get("related") in OWNED_LISTS for f in fields.values())
        if names_owned:
            assert name in covered or name in EXEMPT, f"{name} acts on someone's account or resource: add it to SPECS"


# ------------------------------------------------------------------ deleting a domain deletes its accounts
def test_domain_admin_cannot_remove_a_domain_holding_accounts_it_may_not_act_on(world):
    dadmin_root = world.callers["dadmin_root"].client
    dom = new_domain(world.root)
    party(world.root, world.url, 2, dom["id"])  # a domain admin there: same rank as the caller
    reply = dadmin_root.request("deleteDomain", id=dom["id"], cleanup="true")
    assert reply.status == 531, reply.text
    assert world.root.ok("listDomains", id=dom["id"])["domain"]
    # with only users below it, the same caller may
    dom2 = new_domain(world.root)
    party(world.root, world.url, 0, dom2["id"])
    job = dadmin_root.ok("deleteDomain", id=dom2["id"], cleanup="true")["jobid"]
    assert dadmin_root.wait_job(job)["jobstatus"] == 1


def test_domain_admin_cannot_remove_its_own_domain(world):
    dom = new_domain(world.root)
    dadmin = party(world.root, world.url, 2, dom["id"])
    reply = dadmin.client.request("deleteDomain", id=dom["id"], cleanup="true")
    assert reply.status == 531, reply.text
    assert world.root.ok("listDomains", id=dom["id"])["domain"]
