"""HSM profiles through the real server: createHSMProfile (and its alias addHSMProfile),
listHSMProfiles, updateHSMProfile, deleteHSMProfile.

Requests go out as raw signed GET/POST requests in both CloudStack map forms and through the
real ``cs`` client. Each test makes its own tenants, tokens and profiles (random names), so the
tests share the server but no state; listings are compared on the names a test made itself.
"""
from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from cs import CloudStack, CloudStackApiException

from tests.support.client import Client
from tests.support.tenants import TenantTree, tenant_tree, unique

DEFAULT_PROFILE = "HSM Database Provider"
MASK = "*****"
DATE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


pytestmark = pytest.mark.usefixtures("immediate_key_deletion")  # upstream's immediate delete


# ------------------------------------------------------------------ helpers
def map_params(details: dict[str, str], form: str = "short", name: str = "details") -> dict[str, str]:
    """A map parameter in one of CloudStack's two forms.

    ``short``: ``details[0].K=V`` for every entry; ``keyvalue``: ``details[i].key=K&details[i].value=V``.
    """
    if form == "short":
        return {f"{name}[0].{k}": v for k, v in details.items()}
    params: dict[str, str] = {}
    for i, (k, v) in enumerate(details.items()):
        params[f"{name}[{i}].key"] = k
        params[f"{name}[{i}].value"] = v
    return params


def create_profile(admin: Client, details: dict[str, str] | None = None, form: str = "short",
                   **params: Any) -> dict:
    params.setdefault("name", unique("prof"))
    return admin.ok("createHSMProfile", **params, **map_params(details or {}, form))["hsmprofile"]


def listed(client: Client, **params: Any) -> list[dict]:
    return client.ok("listHSMProfiles", **params).get("hsmprofile", [])


def by_id(client: Client, profile_id: str, **params: Any) -> dict:
    """The listing of one profile by id, as the caller sees it (``{}`` when not visible)."""
    return client.ok("listHSMProfiles", id=profile_id, **params)


def zone_id(client: Client) -> str:
    return client.ok("listZones")["zone"][0]["id"]


def cs_client(server, keys: dict[str, str], **kwargs: Any) -> CloudStack:  # noqa: ANN001
    return CloudStack(endpoint=server.url, key=keys["apikey"], secret=keys["secretkey"], timeout=60, **kwargs)


def token(softhsm) -> tuple[str, dict[str, str]]:  # noqa: ANN001
    """A new SoftHSM token and the profile details that reach it."""
    label = unique("tok")
    softhsm.init_token(label)
    return label, softhsm.details(label)


def events_of(admin: Client, event_type: str, text: str) -> list[dict]:
    found = admin.ok("listEvents", type=event_type, listall="true", pagesize=-1).get("event", [])
    return [e for e in found if text in e["description"]]


# ------------------------------------------------------------------ tenants
@pytest.fixture(scope="module")
def tree(server, admin_keys) -> TenantTree:
    return tenant_tree(Client(server.url, admin_keys["apikey"], admin_keys["secretkey"]))


# ------------------------------------------------------------------ create
@pytest.mark.parametrize("command", ["createHSMProfile", "addHSMProfile"])
def test_create_through_cs_client_with_a_dict(server, admin_keys, softhsm, admin, command):
    label, details = token(softhsm)
    name = unique("cs-prof")
    cs = cs_client(server, admin_keys)
    reply = getattr(cs, command)(name=name, vendorname="SoftHSM", details=details)
    profile = reply["hsmprofile"]
    assert UUID_RE.match(profile["id"])
    assert profile["name"] == name
    assert profile["protocol"] == "pkcs11"  # the default protocol
    assert profile["vendor"] == "SoftHSM"
    assert profile["enabled"] is True
    assert profile["ispublic"] is False
    assert profile["account"] == "admin"
    assert profile["domain"] == "ROOT"
    assert DATE_RE.match(profile["created"])
    assert "zoneid" not in profile  # all zones
    assert profile["details"] == {"library": details["library"], "token_label": label, "pin": MASK}
    # The listing agrees, through cs as well.
    assert cs.listHSMProfiles(id=profile["id"]) == {"count": 1, "hsmprofile": [profile]}


def test_cs_client_key_value_list_and_post(server, admin_keys, softhsm, admin):
    """cs sends a list of ``{"key": K, "value": V}`` dicts as the key/value form; POST puts it in the body."""
    label, details = token(softhsm)
    cs = cs_client(server, admin_keys, method="post")
    profile = cs.createHSMProfile(name=unique("cs-kv"),
                                  details=[{"key": k, "value": v} for k, v in details.items()])["hsmprofile"]
    assert profile["details"] == {"library": details["library"], "token_label": label, "pin": MASK}
    # The profile really reaches the token with that PIN: a key can be made on it.
    key = cs.createKMSKey(name=unique("key"), zoneid=zone_id(admin), hsmprofileid=profile["id"])["kmskey"]
    assert key["hsmprofileid"] == profile["id"]
    assert cs.deleteKMSKey(id=key["id"], fetch_result=True) == {"success": True}


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("form", ["short", "keyvalue"])
def test_create_with_raw_map_forms(admin, softhsm, form, method):
    label, details = token(softhsm)
    name = unique("raw")
    reply = admin.request("createHSMProfile", method=method, name=name, **map_params(details, form))
    assert reply.status == 200, reply.text
    profile = reply.inner()["hsmprofile"]
    assert profile["details"] == {"library": details["library"], "token_label": label, "pin": MASK}
    assert by_id(admin, profile["id"])["hsmprofile"][0]["details"] == profile["details"]
    key = admin.ok("createKMSKey", name=unique("key"), zoneid=zone_id(admin), hsmprofileid=profile["id"])["kmskey"]
    admin.run_async("deleteKMSKey", id=key["id"])


def test_sensitive_details_are_a_fixed_mask(admin, softhsm):
    """Every sensitive name (pin, password, private_key, anything with 'secret') shows ``*****``:
    not the plaintext, not the stored ciphertext."""
    label, details = token(softhsm)
    secrets_sent = {"pin": details["pin"], "Password": "pw-" + uuid.uuid4().hex,
                    "private_key": "pk-" + uuid.uuid4().hex, "client_secret": "cs-" + uuid.uuid4().hex}
    sent = {**details, **secrets_sent, "max_sessions": "4"}
    reply = admin.request("createHSMProfile", name=unique("masked"), **map_params(sent, "keyvalue"))
    assert reply.status == 200, reply.text
    profile = reply.inner()["hsmprofile"]
    expected = {"library": details["library"], "token_label": label, "max_sessions": "4", "pin": MASK,
                "Password": MASK, "private_key": MASK, "client_secret": MASK}
    assert profile["details"] == expected
    listing = admin.request("listHSMProfiles", id=profile["id"])
    assert listing.inner()["hsmprofile"][0]["details"] == expected
    for secret in secrets_sent.values():
        if secret != details["pin"]:  # the test PIN (1234) is too short to search for
            assert secret not in reply.text
            assert secret not in listing.text


def test_a_group_mixing_both_map_forms_is_refused(admin):
    """Read as named entries, the PIN would be stored and shown in clear under the name ``value``."""
    name = unique("mixed")
    err = admin.error("createHSMProfile", 431, name=name, protocol="database", **{
        "details[0].key": "pin", "details[0].value": "PIN-in-clear", "details[0].note": "x"})
    assert err["errortext"] == ("Invalid details: a details[i] group holds either key and value, or named entries, "
                                "not both")
    assert "PIN-in-clear" not in str(err)
    assert admin.ok("listHSMProfiles", name=name) == {}


def test_detail_names_differing_only_in_case_are_refused(admin):
    name = unique("twice")
    err = admin.error("createHSMProfile", 431, name=name, protocol="database",
                      **map_params({"pin": "one", "PIN": "two"}, "keyvalue"))
    assert err["errortext"] == "Duplicate detail name: PIN"
    assert admin.ok("listHSMProfiles", name=name) == {}


@pytest.mark.parametrize(("details", "text"), [
    ({"token_label": "t", "pin": "1"}, "library is required for PKCS#11 HSM profile"),
    ({"library": "/x.so", "pin": "1"},
     "One of 'slot', 'slot_list_index', or 'token_label' is required for PKCS#11 HSM profile"),
    ({"library": "/x.so", "slot": "zero", "pin": "1"}, "slot must be a valid integer: zero"),
    ({"library": "/x.so", "slot_list_index": "-1", "pin": "1"}, "slot_list_index must be a non-negative integer"),
    ({"library": "/x.so", "slot_list_index": "one", "pin": "1"}, "slot_list_index must be a valid integer: one"),
    ({"library": "/x.so", "token_label": "t", "max_sessions": "0", "pin": "1"},
     "max_sessions must be greater than 0"),
    ({"library": "/x.so", "token_label": "t", "max_sessions": "many", "pin": "1"},
     "max_sessions must be a valid integer: many"),
], ids=["no-library", "no-slot", "slot", "index-negative", "index-text", "sessions-zero", "sessions-text"])
def test_pkcs11_detail_validation(admin, details, text):
    name = unique("invalid")
    err = admin.error("createHSMProfile", 431, name=name, **map_params(details))
    assert err["cserrorcode"] == 4350
    assert err["errortext"] == f"Invalid parameter: {text}"
    assert admin.ok("listHSMProfiles", name=name) == {}  # nothing was stored


def test_pkcs11_without_any_details(admin):
    err = admin.error("createHSMProfile", 431, name=unique("empty"))
    assert err["errortext"] == "Invalid parameter: library is required for PKCS#11 HSM profile"


def test_unknown_protocol(admin):
    name = unique("kmip")
    err = admin.error("createHSMProfile", 431, name=name, protocol="kmip")
    assert err["errortext"] == "No provider found for protocol: kmip"
    assert admin.ok("listHSMProfiles", name=name) == {}


def test_protocol_is_case_insensitive_and_database_needs_no_details(admin):
    profile = create_profile(admin, protocol="DATABASE")
    assert profile["protocol"] == "database"
    assert profile["details"] == {}
    key = admin.ok("createKMSKey", name=unique("key"), zoneid=zone_id(admin), hsmprofileid=profile["id"])["kmskey"]
    assert key["hsmprofile"] == profile["name"]
    admin.run_async("deleteKMSKey", id=key["id"])


@pytest.mark.parametrize("flag", ["ispublic", "system"])
def test_public_profile_by_root(admin, flag):
    profile = create_profile(admin, protocol="database", **{flag: "true"})
    assert profile["ispublic"] is True
    assert by_id(admin, profile["id"], ispublic="true")["hsmprofile"][0]["id"] == profile["id"]
    assert by_id(admin, profile["id"], ispublic="false") == {}


@pytest.mark.parametrize("role", ["dadmin", "user"])
@pytest.mark.parametrize("command", ["createHSMProfile", "addHSMProfile"])
def test_public_or_any_profile_by_non_root_is_refused(tree, role, command):
    client = getattr(tree, role)
    account = getattr(tree, f"{role}_account")["name"]
    name = unique("nope")
    for flag in ("ispublic", "system"):
        reply = client.request(command, name=name, protocol="database", **{flag: "true"})
        assert reply.status == 432
        assert reply.body == {"errorresponse": {
            "uuidList": [], "errorcode": 432, "cserrorcode": 9999,
            "errortext": f"The API [{command}] does not exist or is not available for the account {account}."}}
    assert tree.root.ok("listHSMProfiles", name=name) == {}


def test_domain_scoped_profile(tree):
    profile = create_profile(tree.root, protocol="database", domainid=tree.dom["id"])
    assert profile["domainid"] == tree.dom["id"]
    assert profile["domain"] == tree.dom["name"]
    assert profile["domainpath"] == tree.dom["path"]
    for field in ("account", "accountid", "projectid", "project"):
        assert field not in profile  # no owner account
    assert by_id(tree.root, profile["id"], domainid=tree.dom["id"])["count"] == 1


def test_domain_scoped_profile_unknown_domain(admin):
    missing = str(uuid.uuid4())
    err = admin.error("createHSMProfile", 431, name=unique("nodom"), protocol="database", domainid=missing)
    assert err["errortext"] == (
        "Unable to execute API command createhsmprofile due to invalid value. Invalid parameter domainid "
        f"value={missing} due to incorrect long value format, or entity does not exist or due to incorrect "
        "parameter annotation for the field in api cmd class.")


def test_account_owned_profile(tree):
    owner = tree.user_account
    profile = create_profile(tree.root, protocol="database", account=owner["name"], domainid=tree.dom["id"],
                             details={"note": "x"})
    assert profile["account"] == owner["name"]
    assert profile["accountid"] == owner["id"]
    assert profile["domainid"] == tree.dom["id"]
    # The owner sees it (with details) without listall; root finds it by account.
    assert by_id(tree.user, profile["id"])["hsmprofile"][0]["details"] == {"note": "x"}
    found = listed(tree.root, account=owner["name"], domainid=tree.dom["id"])
    assert [p["id"] for p in found] == [profile["id"]]


def test_account_owned_profile_errors(tree):
    err = tree.root.error("createHSMProfile", 431, name=unique("p"), protocol="database",
                          account=tree.user_account["name"])
    assert err["errortext"] == "Account name must be provided with domain ID"
    err = tree.root.error("createHSMProfile", 431, name=unique("p"), protocol="database", account="no-such-account",
                          domainid=tree.dom["id"])
    assert err["errortext"] == f"Unable to find account no-such-account in domain id={tree.dom['id']}"


def test_zone_scoped_profile(admin):
    zone = admin.ok("listZones")["zone"][0]
    profile = create_profile(admin, protocol="database", zoneid=zone["id"])
    assert (profile["zoneid"], profile["zonename"]) == (zone["id"], zone["name"])
    assert by_id(admin, profile["id"], zoneid=zone["id"])["count"] == 1
    # Global profiles (no zone) do not match a zone filter.
    glob = create_profile(admin, protocol="database")
    assert by_id(admin, glob["id"], zoneid=zone["id"]) == {}


# ------------------------------------------------------------------ list
@pytest.fixture(scope="module")
def visibility(tree) -> dict[str, dict]:
    """One profile of every kind; details on each so the limited view is visible."""
    root = tree.root
    made = {
        "public": create_profile(root, protocol="database", ispublic="true", details={"note": "pub"}),
        "root": create_profile(root, protocol="database", details={"note": "root"}),
        "dom": create_profile(root, protocol="database", domainid=tree.dom["id"], details={"note": "dom"}),
        "sub": create_profile(root, protocol="database", domainid=tree.sub["id"], details={"note": "sub"}),
        "other": create_profile(root, protocol="database", domainid=tree.other["id"], details={"note": "other"}),
        "user": create_profile(root, protocol="database", account=tree.user_account["name"],
                               domainid=tree.dom["id"], details={"note": "user"}),
        "subuser": create_profile(root, protocol="database", account=tree.subuser_account["name"],
                                  domainid=tree.sub["id"], details={"note": "subuser"}),
        "stranger": create_profile(root, protocol="database", account=tree.stranger_account["name"],
                                   domainid=tree.other["id"], details={"note": "stranger"}),
    }
    return made


# Spec §2.10: root sees all; others without listall see their own and their domain's shared
# profiles; with listall also public ones and (domain admins) those owned in their subtree.
VISIBILITY = [
    # caller      listall  visible kinds
    ("root",      False,   {"public", "root", "dom", "sub", "other", "user", "subuser", "stranger"}),
    ("root",      True,    {"public", "root", "dom", "sub", "other", "user", "subuser", "stranger"}),
    ("dadmin",    False,   {"dom"}),
    ("dadmin",    True,    {"public", "dom", "user", "subuser"}),
    ("user",      False,   {"user", "dom"}),
    ("user",      True,    {"public", "user", "dom"}),
    ("subuser",   False,   {"subuser", "sub"}),
    ("subuser",   True,    {"public", "subuser", "sub"}),
    ("stranger",  False,   {"stranger", "other"}),
    ("stranger",  True,    {"public", "stranger", "other"}),
]


@pytest.mark.parametrize(("caller", "listall", "expected"), VISIBILITY,
                         ids=[f"{c}-{'listall' if a else 'own'}" for c, a, _ in VISIBILITY])
def test_list_visibility(tree, visibility, caller, listall, expected):
    client = tree.root if caller == "root" else getattr(tree, caller)
    ids = {p["id"]: kind for kind, p in visibility.items()}
    params = {"listall": "true"} if listall else {}
    seen = {ids[p["id"]] for p in listed(client, pagesize=-1, **params) if p["id"] in ids}
    assert seen == expected
    # By id: the same answer, and ``{}`` (not an error) for what the caller may not see.
    for kind, profile in visibility.items():
        reply = by_id(client, profile["id"], **params)
        if kind in expected:
            assert reply["count"] == 1 and reply["hsmprofile"][0]["id"] == profile["id"]
        else:
            assert reply == {}, (kind, reply)


def test_default_profile_is_listed_for_everybody_with_listall(tree):
    for client in (tree.root, tree.dadmin, tree.user):
        names = [p["name"] for p in listed(client, listall="true", pagesize=-1)]
        assert names.count(DEFAULT_PROFILE) == 1


@pytest.mark.parametrize("caller", ["dadmin", "user", "stranger"])
def test_limited_view_of_public_profiles(tree, visibility, caller):
    """Public profiles show no ``details`` to callers who are neither root nor the owner."""
    client = getattr(tree, caller)
    seen = {p["id"]: p for p in listed(client, listall="true", pagesize=-1)}
    public = seen[visibility["public"]["id"]]
    assert "details" not in public
    assert public["ispublic"] is True and public["name"] == visibility["public"]["name"]
    default = next(p for p in seen.values() if p["name"] == DEFAULT_PROFILE)
    assert "details" not in default
    # Non-public profiles the caller sees keep their details.
    for profile in seen.values():
        if not profile["ispublic"]:
            assert "details" in profile, profile
    # Root sees the details of the public profile.
    assert by_id(tree.root, visibility["public"]["id"])["hsmprofile"][0]["details"] == {"note": "pub"}


def test_name_filter_finds_the_seeded_database_profile(admin, tree):
    for client, params in ((admin, {}), (tree.user, {"listall": "true"})):
        reply = client.ok("listHSMProfiles", name=DEFAULT_PROFILE, **params)
        assert reply["count"] == 1
        profile = reply["hsmprofile"][0]
        assert (profile["name"], profile["protocol"], profile["ispublic"], profile["enabled"]) == (
            DEFAULT_PROFILE, "database", True, True)
    assert admin.ok("listHSMProfiles", name=unique("no-such-profile")) == {}


def test_other_filters(admin):
    name = unique("filt")
    profile = create_profile(admin, protocol="database", name=name)
    assert by_id(admin, profile["id"], protocol="database")["count"] == 1
    assert by_id(admin, profile["id"], protocol="pkcs11") == {}
    assert by_id(admin, profile["id"], enabled="true")["count"] == 1
    assert by_id(admin, profile["id"], enabled="false") == {}
    assert [p["id"] for p in listed(admin, keyword=name[5:])] == [profile["id"]]


def kinds(visibility: dict[str, dict], profiles: list[dict]) -> set[str]:
    by_id_ = {p["id"]: kind for kind, p in visibility.items()}
    return {by_id_[p["id"]] for p in profiles if p["id"] in by_id_}


def test_domain_admin_lists_an_account_of_its_subtree(tree, visibility):
    """``account`` + ``domainid``: that account's view (its own and its domain's shared profiles)."""
    for account, domain, expected in ((tree.user_account, tree.dom, {"user", "dom"}),
                                      (tree.subuser_account, tree.sub, {"subuser", "sub"})):
        for params in ({}, {"listall": "true"}):
            found = listed(tree.dadmin, account=account["name"], domainid=domain["id"], pagesize=-1, **params)
            assert kinds(visibility, found) == expected
    err = tree.dadmin.error("listHSMProfiles", 531, account=tree.stranger_account["name"],
                            domainid=tree.other["id"])
    assert err["cserrorcode"] == 4365
    err = tree.dadmin.error("listHSMProfiles", 431, account=tree.user_account["name"])
    assert err["errortext"] == "Account name and domain id must be specified together"


def test_user_may_name_itself_and_its_domain_but_nobody_else(tree, visibility):
    own = listed(tree.user, account=tree.user_account["name"], domainid=tree.dom["id"], pagesize=-1)
    assert kinds(visibility, own) == {"user", "dom"}
    assert kinds(visibility, listed(tree.user, domainid=tree.dom["id"], pagesize=-1)) == {"user", "dom"}
    assert kinds(visibility, listed(tree.user, domainid=tree.dom["id"], listall="true", pagesize=-1)) == {
        "user", "dom"}  # the public profile lives in ROOT
    err = tree.user.error("listHSMProfiles", 531, account=tree.subuser_account["name"], domainid=tree.sub["id"])
    assert err["cserrorcode"] == 4365


def test_non_root_cannot_list_another_domain(tree):
    err = tree.user.error("listHSMProfiles", 531, domainid=tree.other["id"])
    assert err["cserrorcode"] == 4365
    err = tree.dadmin.error("listHSMProfiles", 531, domainid=tree.other["id"])
    assert err["cserrorcode"] == 4365


# ------------------------------------------------------------------ update
def test_update_name_and_enabled(admin):
    profile = create_profile(admin, protocol="database")
    new_name = unique("renamed")
    updated = admin.ok("updateHSMProfile", id=profile["id"], name=new_name)["hsmprofile"]
    assert updated["name"] == new_name and updated["enabled"] is True
    disabled = admin.ok("updateHSMProfile", id=profile["id"], enabled="false")["hsmprofile"]
    assert disabled["name"] == new_name and disabled["enabled"] is False
    assert by_id(admin, profile["id"], enabled="false")["hsmprofile"][0]["name"] == new_name

    zone = zone_id(admin)
    err = admin.error("createKMSKey", 431, name=unique("key"), zoneid=zone, hsmprofileid=profile["id"])
    assert err["errortext"] == f"HSM profile is not enabled: {new_name}"

    assert admin.ok("updateHSMProfile", id=profile["id"], enabled="true")["hsmprofile"]["enabled"] is True
    key = admin.ok("createKMSKey", name=unique("key"), zoneid=zone, hsmprofileid=profile["id"])["kmskey"]
    admin.run_async("deleteKMSKey", id=key["id"])

    update_events = events_of(admin, "HSM.PROFILE.UPDATE", profile["id"])
    assert len(update_events) == 3
    assert {e["resourcetype"] for e in update_events} == {"HsmProfile"}


def test_update_keeps_details_and_pkcs11_still_works(admin, softhsm):
    label, details = token(softhsm)
    profile = create_profile(admin, details=details)
    zone = zone_id(admin)
    first = admin.ok("createKMSKey", name=unique("key"), zoneid=zone, hsmprofileid=profile["id"])["kmskey"]
    updated = admin.ok("updateHSMProfile", id=profile["id"], name=unique("renamed"))["hsmprofile"]
    assert updated["details"] == {"library": details["library"], "token_label": label, "pin": MASK}
    # The renamed profile reconnects with the stored PIN.
    second = admin.ok("createKMSKey", name=unique("key"), zoneid=zone, hsmprofileid=profile["id"])["kmskey"]
    assert second["hsmprofile"] == updated["name"]
    for key in (first, second):
        admin.run_async("deleteKMSKey", id=key["id"])


def test_update_unknown_profile(admin):
    missing = str(uuid.uuid4())
    err = admin.error("updateHSMProfile", 431, id=missing, name="x")
    assert err["errortext"] == f"HSM Profile not found: {missing}"


# ------------------------------------------------------------------ delete
def test_default_database_profile_cannot_be_deleted(admin):
    default = admin.ok("listHSMProfiles", name=DEFAULT_PROFILE)["hsmprofile"][0]
    err = admin.error("deleteHSMProfile", 431, id=default["id"])
    assert err["errortext"] == "Default database HSM profile cannot be deleted"
    # Known by what it is, not by its name: renamed, it is still protected.
    renamed = unique("renamed-default")
    admin.ok("updateHSMProfile", id=default["id"], name=renamed)
    try:
        err = admin.error("deleteHSMProfile", 431, id=default["id"])
        assert err["errortext"] == "Default database HSM profile cannot be deleted"
    finally:
        admin.ok("updateHSMProfile", id=default["id"], name=DEFAULT_PROFILE)
    assert by_id(admin, default["id"])["hsmprofile"][0]["name"] == DEFAULT_PROFILE


def test_own_database_profile_named_like_the_default_can_be_deleted(admin):
    profile = create_profile(admin, protocol="database", name=DEFAULT_PROFILE)
    try:
        assert admin.ok("listHSMProfiles", name=DEFAULT_PROFILE)["count"] == 2
        assert admin.ok("deleteHSMProfile", id=profile["id"]) == {"success": True}
    finally:
        admin.request("deleteHSMProfile", id=profile["id"])
    assert admin.ok("listHSMProfiles", name=DEFAULT_PROFILE)["count"] == 1


def test_delete_refused_while_a_key_uses_it(admin, softhsm):
    _, details = token(softhsm)
    profile = create_profile(admin, details=details)
    zone = zone_id(admin)
    keys = [admin.ok("createKMSKey", name=unique("key"), zoneid=zone, hsmprofileid=profile["id"])["kmskey"]
            for _ in range(2)]
    err = admin.error("deleteHSMProfile", 431, id=profile["id"])
    assert err["errortext"] == (f"Cannot delete HSM profile '{profile['name']}': it is referenced by 2 KMS key(s). "
                                "Please delete or reassign those keys first.")
    admin.run_async("deleteKMSKey", id=keys[0]["id"])
    err = admin.error("deleteHSMProfile", 431, id=profile["id"])
    assert "it is referenced by 1 KMS key(s)" in err["errortext"]
    admin.run_async("deleteKMSKey", id=keys[1]["id"])

    assert admin.ok("deleteHSMProfile", id=profile["id"]) == {"success": True}
    # A deleted profile by id is an empty list, not an error (upstream), for every caller.
    assert by_id(admin, profile["id"]) == {}
    assert by_id(admin, profile["id"], listall="true") == {}
    err = admin.error("deleteHSMProfile", 431, id=profile["id"])
    assert err["errortext"] == f"HSM Profile not found: {profile['id']}"
    err = admin.error("updateHSMProfile", 431, id=profile["id"], enabled="false")
    assert err["errortext"] == f"HSM Profile not found: {profile['id']}"
    err = admin.error("createKMSKey", 431, name=unique("key"), zoneid=zone, hsmprofileid=profile["id"])
    assert err["errortext"] == f"HSM Profile not found: {profile['id']}"

    assert len(events_of(admin, "HSM.PROFILE.CREATE", profile["id"])) == 1
    deleted = events_of(admin, "HSM.PROFILE.DELETE", profile["id"])
    assert len(deleted) == 1 and deleted[0]["resourcetype"] == "HsmProfile"


def test_deleted_public_profile_is_gone_for_users_too(tree):
    profile = create_profile(tree.root, protocol="database", ispublic="true")
    assert by_id(tree.user, profile["id"], listall="true")["count"] == 1
    assert tree.root.ok("deleteHSMProfile", id=profile["id"]) == {"success": True}
    assert by_id(tree.user, profile["id"], listall="true") == {}
    assert by_id(tree.root, profile["id"]) == {}


def test_cs_client_error_for_delete_of_default(server, admin_keys, admin):
    default = admin.ok("listHSMProfiles", name=DEFAULT_PROFILE)["hsmprofile"][0]
    cs = cs_client(server, admin_keys)
    with pytest.raises(CloudStackApiException) as info:
        cs.deleteHSMProfile(id=default["id"])
    assert info.value.error["errorcode"] == 431
    assert info.value.error["errortext"] == "Default database HSM profile cannot be deleted"
