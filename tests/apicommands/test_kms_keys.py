"""KMS keys through the real server: createKMSKey, listKMSKeys, updateKMSKey, deleteKMSKey (async).

Keys live in the seeded ``database`` profile or in SoftHSM2 tokens through ``pkcs11`` profiles;
what the token holds is checked with python-pkcs11 from the test process. Each test makes its
own keys and tokens (random names); tenants are shared by the module.

deleteKMSKey is tested here as upstream has it, deleting at once: the module sets
``kms.key.deletion.pending.days`` to 0. The waiting period is tested in test_kms_key_deletion.py.
"""
from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from cs import CloudStack

from tests.support.client import Client
from tests.support.dbtools import query
from tests.support.tenants import TenantTree, tenant_tree, unique

DEFAULT_PROFILE = "HSM Database Provider"
DATE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
KEY_BITS_TEXT = "Key bits must be 128, 192, or 256"
HIDDEN_TEXT = "Internal error executing command, please contact your system administrator"
WRONG_PIN = "9999"


# ------------------------------------------------------------------ tenants
@pytest.fixture(scope="module")
def tree(server, admin_keys) -> TenantTree:
    return tenant_tree(Client(server.url, admin_keys["apikey"], admin_keys["secretkey"]))


pytestmark = pytest.mark.usefixtures("immediate_key_deletion")  # upstream's immediate delete


# ------------------------------------------------------------------ helpers
def detail_params(details: dict[str, str]) -> dict[str, str]:
    return {f"details[0].{k}": v for k, v in details.items()}


def pkcs11_profile(admin: Client, softhsm, pin: str | None = None, label: str | None = None,  # noqa: ANN001
                   **params: Any) -> tuple[dict, str]:
    """A pkcs11 profile on a new token (or on the token ``label``); returns it with the token label."""
    if label is None:
        label = unique("tok")
        softhsm.init_token(label)
    details = softhsm.details(label)
    if pin is not None:
        details["pin"] = pin
    profile = admin.ok("createHSMProfile", name=unique("p11"), **params, **detail_params(details))["hsmprofile"]
    return profile, label


def db_profile(admin: Client, **params: Any) -> dict:
    return admin.ok("createHSMProfile", name=unique("db"), protocol="database", **params)["hsmprofile"]


def create_key(client: Client, zone: str, profile: str, **params: Any) -> dict:
    params.setdefault("name", unique("key"))
    return client.ok("createKMSKey", zoneid=zone, hsmprofileid=profile, **params)["kmskey"]


def by_id(client: Client, key_id: str, **params: Any) -> dict:
    return client.ok("listKMSKeys", id=key_id, **params)


def ids(client: Client, **params: Any) -> set[str]:
    return {k["id"] for k in client.ok("listKMSKeys", pagesize=-1, **params).get("kmskey", [])}


def events_of(client: Client, event_type: str, text: str, **params: Any) -> list[dict]:
    found = client.ok("listEvents", type=event_type, pagesize=-1, **params).get("event", [])
    return [e for e in found if text in e["description"]]


def token_keys(softhsm, label: str) -> dict[str, dict[str, Any]]:  # noqa: ANN001
    """The secret keys on a token, read with python-pkcs11 in this process: label -> attributes."""
    import pkcs11
    from pkcs11 import Attribute, ObjectClass

    lib = pkcs11.lib(softhsm.details(label)["library"])
    try:
        token = lib.get_token(token_label=label)
    except pkcs11.exceptions.NoSuchToken:
        # This process loaded SoftHSM2 before the token existed: it reads its tokens at load time.
        lib.reinitialize()
        token = lib.get_token(token_label=label)
    with token.open(user_pin=softhsm.details(label)["pin"]) as session:
        return {obj.label: {"sensitive": obj[Attribute.SENSITIVE], "extractable": obj[Attribute.EXTRACTABLE],
                            "token": obj[Attribute.TOKEN], "bytes": obj[Attribute.VALUE_LEN]}
                for obj in session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY})}


def label_re(key: dict) -> re.Pattern:
    """``volume-kek-<domain id>-<account id>-<uuid without dashes>-v1`` (internal numeric ids)."""
    return re.compile(rf"^volume-kek-\d+-\d+-{key['id'].replace('-', '')}-v1$")


# ------------------------------------------------------------------ create
def test_create_with_the_database_profile(tree):
    name = unique("dbkey")
    key = create_key(tree.root, tree.zone, tree.default_profile, name=name, description="for volumes")
    zone = tree.root.ok("listZones")["zone"][0]
    assert UUID_RE.match(key["id"])
    expected = {
        "name": name, "description": "for volumes", "account": "admin", "domain": "ROOT", "domainpath": "ROOT",
        "zoneid": zone["id"], "zonename": zone["name"], "hsmprofileid": tree.default_profile,
        "hsmprofile": DEFAULT_PROFILE, "algorithm": "AES/GCM/NoPadding", "keybits": 256, "version": 1,
        "enabled": True, "state": "Enabled",
    }
    assert {k: key[k] for k in expected} == expected
    assert DATE_RE.match(key["created"])
    assert label_re(key).match(key["keklabel"]), key["keklabel"]
    assert set(key) == set(expected) | {"id", "accountid", "domainid", "created", "keklabel", "versions"}
    [version] = key["versions"]
    assert {k: version[k] for k in ("version", "status", "hsmprofileid", "hsmprofile", "keklabel", "wrappedkeys")} == {
        "version": 1, "status": "Active", "hsmprofileid": tree.default_profile, "hsmprofile": DEFAULT_PROFILE,
        "keklabel": key["keklabel"], "wrappedkeys": 0}
    assert by_id(tree.root, key["id"]) == {"count": 1, "kmskey": [key]}
    tree.root.run_async("deleteKMSKey", id=key["id"])


def test_create_with_pkcs11_and_delete_removes_the_kek(softhsm, tree, kms_env):
    profile, label = pkcs11_profile(tree.root, softhsm)
    key = create_key(tree.root, tree.zone, profile["id"], keybits=192)
    assert (key["hsmprofileid"], key["hsmprofile"], key["keybits"]) == (profile["id"], profile["name"], 192)
    kek = key["keklabel"]
    [(account_id, domain_id)] = query(kms_env, "SELECT id, domain_id FROM account WHERE uuid = :uuid",
                                      uuid=key["accountid"])
    assert kek == f"volume-kek-{domain_id}-{account_id}-{key['id'].replace('-', '')}-v1"
    # The KEK is a persistent, sensitive, non-extractable AES key inside the token.
    assert token_keys(softhsm, label)[kek] == {"sensitive": True, "extractable": False, "token": True, "bytes": 24}

    submitted = tree.root.ok("deleteKMSKey", id=key["id"])
    job = tree.root.wait_job(submitted["jobid"])  # polled with queryAsyncJobResult
    assert job["jobstatus"] == 1 and job["jobresultcode"] == 0, job
    assert job["jobresult"] == {"success": True}
    assert job["cmd"] == "org.apache.cloudstack.api.command.user.kms.DeleteKMSKeyCmd"
    assert (job["jobinstancetype"], job["jobinstanceid"]) == ("KmsKey", key["id"])

    assert kek not in token_keys(softhsm, label)
    assert by_id(tree.root, key["id"]) == {}


@pytest.mark.parametrize("bits", [128, 192, 256])
def test_valid_key_bits(tree, bits):
    key = create_key(tree.root, tree.zone, tree.default_profile, keybits=bits)
    assert key["keybits"] == bits
    tree.root.run_async("deleteKMSKey", id=key["id"])


@pytest.mark.parametrize("bits", [0, 64, 100, 255, 512, -256])
def test_key_bits_validation(tree, bits):
    name = unique("bits")
    err = tree.root.error("createKMSKey", 431, name=name, zoneid=tree.zone, hsmprofileid=tree.default_profile,
                          keybits=bits)
    assert err["errortext"] == KEY_BITS_TEXT
    assert err["cserrorcode"] == 4350
    assert tree.root.ok("listKMSKeys", keyword=name) == {}


def test_key_bits_must_be_an_integer(tree):
    err = tree.root.error("createKMSKey", 431, name=unique("bits"), zoneid=tree.zone,
                          hsmprofileid=tree.default_profile, keybits="big")
    assert err["errortext"] == \
        "Unable to execute API command createkmskey due to invalid value big for parameter keybits"


@pytest.mark.parametrize("missing", ["name", "zoneid", "hsmprofileid"])
def test_required_parameters(tree, missing):
    params = {"name": unique("key"), "zoneid": tree.zone, "hsmprofileid": tree.default_profile}
    del params[missing]
    err = tree.root.error("createKMSKey", 431, **params)
    assert err["errortext"] == f"Unable to execute API command createkmskey due to missing parameter {missing}"


def test_unknown_profile(tree):
    missing = str(uuid.uuid4())
    for client in (tree.root, tree.user):
        err = client.error("createKMSKey", 431, name=unique("key"), zoneid=tree.zone, hsmprofileid=missing)
        assert err["errortext"] == f"HSM Profile not found: {missing}"


def test_disabled_profile(tree):
    profile = db_profile(tree.root, ispublic="true")
    tree.root.ok("updateHSMProfile", id=profile["id"], enabled="false")
    for client in (tree.root, tree.dadmin, tree.user):
        err = client.error("createKMSKey", 431, name=unique("key"), zoneid=tree.zone, hsmprofileid=profile["id"])
        assert err["errortext"] == f"HSM profile is not enabled: {profile['name']}"
    tree.root.ok("updateHSMProfile", id=profile["id"], enabled="true")
    key = create_key(tree.user, tree.zone, profile["id"])
    tree.user.run_async("deleteKMSKey", id=key["id"])


def test_duplicate_name_in_the_account(tree):
    name = unique("dup")
    first = create_key(tree.user, tree.zone, tree.default_profile, name=name)
    err = tree.user.error("createKMSKey", 431, name=name, zoneid=tree.zone, hsmprofileid=tree.default_profile)
    assert err["errortext"] == f"A KMS key with name {name} already exists in this account"
    # The same through an admin acting for the account.
    err = tree.root.error("createKMSKey", 431, name=name, zoneid=tree.zone, hsmprofileid=tree.default_profile,
                          account=tree.user_account["name"], domainid=tree.dom["id"])
    assert err["errortext"] == f"A KMS key with name {name} already exists in this account"
    # Another account may use the name; after the delete the owner may again.
    other = create_key(tree.peer, tree.zone, tree.default_profile, name=name)
    tree.user.run_async("deleteKMSKey", id=first["id"])
    again = create_key(tree.user, tree.zone, tree.default_profile, name=name)
    assert again["id"] != first["id"]
    for client, key in ((tree.user, again), (tree.peer, other)):
        client.run_async("deleteKMSKey", id=key["id"])


def test_domainid_without_account(tree):
    for client in (tree.root, tree.dadmin, tree.user):
        err = client.error("createKMSKey", 431, name=unique("key"), zoneid=tree.zone,
                           hsmprofileid=tree.default_profile, domainid=tree.dom["id"])
        assert err["errortext"] == "Account name must be provided with domain ID"


def test_acting_for_another_account(tree):
    # Root and the domain admin above the account may; the key belongs to that account.
    for client in (tree.root, tree.dadmin):
        key = create_key(client, tree.zone, tree.default_profile, account=tree.user_account["name"],
                         domainid=tree.dom["id"])
        assert (key["account"], key["accountid"], key["domainid"]) == (
            tree.user_account["name"], tree.user_account["id"], tree.dom["id"])
        assert by_id(tree.user, key["id"])["count"] == 1
        tree.user.run_async("deleteKMSKey", id=key["id"])
    # A user may not; a domain admin may not outside the subtree.
    err = tree.user.error("createKMSKey", 531, name=unique("key"), zoneid=tree.zone,
                          hsmprofileid=tree.default_profile, account=tree.peer_account["name"],
                          domainid=tree.dom["id"])
    assert err["cserrorcode"] == 4365
    err = tree.dadmin.error("createKMSKey", 531, name=unique("key"), zoneid=tree.zone,
                            hsmprofileid=tree.default_profile, account=tree.stranger_account["name"],
                            domainid=tree.other["id"])
    assert err["cserrorcode"] == 4365


# ------------------------------------------------------------------ profile scope (spec §7.2)
def test_domain_scoped_profile_rules(tree):
    profile = db_profile(tree.root, domainid=tree.dom["id"])
    name = profile["name"]
    outside = f"HSM profile '{name}' is domain-scoped and can only be used by accounts in its domain"
    # Accounts directly in the domain may use it, for themselves or through their domain admin.
    made = [create_key(tree.user, tree.zone, profile["id"]), create_key(tree.dadmin, tree.zone, profile["id"]),
            create_key(tree.root, tree.zone, profile["id"], account=tree.peer_account["name"],
                       domainid=tree.dom["id"])]
    # Callers outside the domain (subdomains included) may not use it.
    for client in (tree.stranger, tree.subuser, tree.other_dadmin):
        err = client.error("createKMSKey", 531, name=unique("key"), zoneid=tree.zone, hsmprofileid=profile["id"])
        assert err["errortext"] == "Access denied to HSM profile"
    # Owners outside the domain do not fit it, whoever asks (root included).
    for owner, domain in ((tree.stranger_account, tree.other), (tree.subuser_account, tree.sub)):
        err = tree.root.error("createKMSKey", 431, name=unique("key"), zoneid=tree.zone, hsmprofileid=profile["id"],
                              account=owner["name"], domainid=domain["id"])
        assert err["errortext"] == outside
    err = tree.root.error("createKMSKey", 431, name=unique("key"), zoneid=tree.zone, hsmprofileid=profile["id"])
    assert err["errortext"] == outside
    err = tree.dadmin.error("createKMSKey", 431, name=unique("key"), zoneid=tree.zone, hsmprofileid=profile["id"],
                            account=tree.subuser_account["name"], domainid=tree.sub["id"])
    assert err["errortext"] == outside
    for key in made:
        tree.root.run_async("deleteKMSKey", id=key["id"])


def test_owned_profile_rules(tree):
    profile = db_profile(tree.root, account=tree.user_account["name"], domainid=tree.dom["id"])
    name = profile["name"]
    other_owner = f"HSM profile '{name}' is owned by another account and cannot be used for this key's owner"
    made = [create_key(tree.user, tree.zone, profile["id"]),
            create_key(tree.dadmin, tree.zone, profile["id"], account=tree.user_account["name"],
                       domainid=tree.dom["id"])]
    # Another owner does not fit, even when the caller may use the profile (root, the domain admin).
    err = tree.root.error("createKMSKey", 431, name=unique("key"), zoneid=tree.zone, hsmprofileid=profile["id"],
                          account=tree.peer_account["name"], domainid=tree.dom["id"])
    assert err["errortext"] == other_owner
    err = tree.dadmin.error("createKMSKey", 431, name=unique("key"), zoneid=tree.zone, hsmprofileid=profile["id"])
    assert err["errortext"] == other_owner
    # Callers who cannot reach the owner may not use it at all.
    for client, account in ((tree.peer, tree.peer_account), (tree.stranger, tree.stranger_account)):
        err = client.error("createKMSKey", 531, name=unique("key"), zoneid=tree.zone, hsmprofileid=profile["id"])
        assert err["errortext"] == f"Account {account['name']} does not have permission to use HSM profile {name}"
    err = tree.other_dadmin.error("createKMSKey", 531, name=unique("key"), zoneid=tree.zone,
                                  hsmprofileid=profile["id"])
    assert err["cserrorcode"] == 4365
    for key in made:
        tree.root.run_async("deleteKMSKey", id=key["id"])


def test_public_profile_fits_everybody(tree):
    profile = db_profile(tree.root, ispublic="true")
    made = [create_key(client, tree.zone, profile["id"])
            for client in (tree.root, tree.dadmin, tree.user, tree.subuser, tree.stranger)]
    assert len({k["account"] for k in made}) == 5
    for key in made:
        tree.root.run_async("deleteKMSKey", id=key["id"])


def test_private_root_profile_is_not_for_users(tree):
    profile = db_profile(tree.root)
    err = tree.user.error("createKMSKey", 531, name=unique("key"), zoneid=tree.zone, hsmprofileid=profile["id"])
    assert err["errortext"] == f"Account {tree.user_account['name']} does not have permission to use HSM profile " \
                               f"{profile['name']}"


# ------------------------------------------------------------------ provider failures
def test_wrong_pin_is_a_530_with_the_provider_text(softhsm, tree):
    profile, _ = pkcs11_profile(tree.root, softhsm, pin=WRONG_PIN)
    name = unique("badpin")
    err = tree.root.error("createKMSKey", 530, name=name, zoneid=tree.zone, hsmprofileid=profile["id"])
    assert err["cserrorcode"] == 4250
    assert err["errortext"] == "Failed to create KMS key: Incorrect PIN for HSM authentication"
    assert tree.root.ok("listKMSKeys", keyword=name, listall="true") == {}
    assert events_of(tree.root, "KMS.KEY.CREATE", name, listall="true") == []


def test_wrong_pin_text_is_hidden_from_users(softhsm, tree):
    """Upstream hides the text of 530 errors from callers who are not root admins."""
    profile, _ = pkcs11_profile(tree.root, softhsm, pin=WRONG_PIN, account=tree.user_account["name"],
                                domainid=tree.dom["id"])
    name = unique("badpin")
    err = tree.user.error("createKMSKey", 530, name=name, zoneid=tree.zone, hsmprofileid=profile["id"])
    assert err["errortext"] == HIDDEN_TEXT
    assert tree.user.ok("listKMSKeys", keyword=name) == {}


def test_wrong_pin_is_refused_while_another_profile_is_logged_in(softhsm, tree):
    """A second profile on the same token must not ride on the first one's login."""
    good, label = pkcs11_profile(tree.root, softhsm)
    key = create_key(tree.root, tree.zone, good["id"])  # the good profile is now logged in
    bad, _ = pkcs11_profile(tree.root, softhsm, pin=WRONG_PIN, label=label)
    name = unique("badpin")
    err = tree.root.error("createKMSKey", 530, name=name, zoneid=tree.zone, hsmprofileid=bad["id"])
    assert err["errortext"] == "Failed to create KMS key: Incorrect PIN for HSM authentication"
    assert tree.root.ok("listKMSKeys", keyword=name, listall="true") == {}
    tree.root.run_async("deleteKMSKey", id=key["id"])


def test_unknown_token_is_a_530(softhsm, tree):
    details = softhsm.details("no-such-token")
    profile = tree.root.ok("createHSMProfile", name=unique("nottoken"), **detail_params(details))["hsmprofile"]
    tree.root.ok("updateConfiguration", name="kms.retry.count", value="0")
    try:
        err = tree.root.error("createKMSKey", 530, name=unique("key"), zoneid=tree.zone, hsmprofileid=profile["id"])
    finally:
        tree.root.ok("updateConfiguration", name="kms.retry.count", value="3")
    assert err["errortext"].startswith("Failed to create KMS key: ")


# ------------------------------------------------------------------ list, update, delete
def test_list_filters(softhsm, tree):
    profile, _ = pkcs11_profile(tree.root, softhsm)
    word = uuid.uuid4().hex[:10]
    by_name = create_key(tree.root, tree.zone, profile["id"], name=f"k-{word}")
    by_text = create_key(tree.root, tree.zone, tree.default_profile, description=f"about {word}")
    assert ids(tree.root, keyword=word) == {by_name["id"], by_text["id"]}
    assert ids(tree.root, keyword=word, hsmprofileid=profile["id"]) == {by_name["id"]}
    assert ids(tree.root, keyword=word, zoneid=tree.zone) == {by_name["id"], by_text["id"]}
    tree.root.ok("updateKMSKey", id=by_text["id"], enabled="false")
    assert ids(tree.root, keyword=word, enabled="false") == {by_text["id"]}
    assert ids(tree.root, keyword=word, enabled="true") == {by_name["id"]}
    # Ordered by creation (internal id).
    listed = tree.root.ok("listKMSKeys", keyword=word)["kmskey"]
    assert [k["id"] for k in listed] == [by_name["id"], by_text["id"]]
    for key in (by_name, by_text):
        tree.root.run_async("deleteKMSKey", id=key["id"])


def test_update(tree):
    key = create_key(tree.user, tree.zone, tree.default_profile, description="first")
    new_name = unique("renamed")
    updated = tree.user.ok("updateKMSKey", id=key["id"], name=new_name, description="second")["kmskey"]
    assert (updated["name"], updated["description"], updated["enabled"]) == (new_name, "second", True)
    disabled = tree.user.ok("updateKMSKey", id=key["id"], enabled="false")["kmskey"]
    assert (disabled["name"], disabled["description"], disabled["enabled"]) == (new_name, "second", False)
    assert disabled["state"] == "Disabled"
    assert by_id(tree.user, key["id"])["kmskey"][0] == disabled
    assert tree.user.ok("updateKMSKey", id=key["id"], enabled="true")["kmskey"]["enabled"] is True
    tree.user.run_async("deleteKMSKey", id=key["id"])


def test_unknown_key(tree):
    missing = str(uuid.uuid4())
    err = tree.root.error("updateKMSKey", 431, id=missing, name="x")
    assert err["errortext"] == f"KMS key not found: {missing}"
    err = tree.user.error("deleteKMSKey", 431, id=missing)
    assert err["errortext"] == f"KMS key not found: {missing}"
    assert by_id(tree.root, missing) == {}


def test_delete_with_cs_fetch_result(server, admin_keys, tree):
    key = create_key(tree.root, tree.zone, tree.default_profile)
    cs = CloudStack(endpoint=server.url, key=admin_keys["apikey"], secret=admin_keys["secretkey"], timeout=60)
    assert cs.deleteKMSKey(id=key["id"], fetch_result=True) == {"success": True}
    assert cs.listKMSKeys(id=key["id"]) == {}


def test_deleted_key_by_id_is_an_empty_list(tree):
    key = create_key(tree.user, tree.zone, tree.default_profile)
    tree.user.run_async("deleteKMSKey", id=key["id"])
    for client, params in ((tree.user, {}), (tree.dadmin, {"listall": "true"}), (tree.root, {}),
                           (tree.root, {"listall": "true"})):
        assert by_id(client, key["id"], **params) == {}
    assert key["id"] not in ids(tree.root, listall="true")
    err = tree.user.error("updateKMSKey", 431, id=key["id"], name="again")
    assert err["errortext"] == f"KMS key not found: {key['id']}"
    err = tree.user.error("deleteKMSKey", 431, id=key["id"])
    assert err["errortext"] == f"KMS key not found: {key['id']}"


# ------------------------------------------------------------------ who sees what
def test_keklabel_only_for_the_root_admin(tree):
    for client, owner in ((tree.root, None), (tree.dadmin, None), (tree.user, None), (tree.dadmin, tree.user_account)):
        params = {"account": owner["name"], "domainid": tree.dom["id"]} if owner else {}
        key = create_key(client, tree.zone, tree.default_profile, **params)
        root_view = by_id(tree.root, key["id"])["kmskey"][0]
        assert label_re(key).match(root_view["keklabel"])
        if client is tree.root:
            assert key["keklabel"] == root_view["keklabel"]
        else:
            listed = by_id(client, key["id"], listall="true")["kmskey"][0]
            updated = client.ok("updateKMSKey", id=key["id"], description="x")["kmskey"]
            for view in (key, listed, updated):
                assert "keklabel" not in view and "versions" not in view, view
            # Everything else is the same as root's view.
            assert {k: v for k, v in root_view.items() if k not in ("keklabel", "versions", "description")} == \
                {k: v for k, v in listed.items() if k != "description"}
        tree.root.run_async("deleteKMSKey", id=key["id"])


def test_users_see_only_their_own_keys(tree):
    mine = create_key(tree.user, tree.zone, tree.default_profile)
    peers = create_key(tree.peer, tree.zone, tree.default_profile)
    strangers = create_key(tree.stranger, tree.zone, tree.default_profile)
    subusers = create_key(tree.subuser, tree.zone, tree.default_profile)
    everyone = {mine["id"], peers["id"], strangers["id"], subusers["id"]}
    for params in ({}, {"listall": "true"}, {"listall": "true", "isrecursive": "true"}):
        assert ids(tree.user, **params) & everyone == {mine["id"]}
        assert ids(tree.stranger, **params) & everyone == {strangers["id"]}
    # Another account's key by id: an empty list, not an error (same domain or another one).
    for key in (peers, strangers, subusers):
        assert by_id(tree.user, key["id"]) == {}
        assert by_id(tree.user, key["id"], listall="true") == {}
    # A domain admin sees its subtree with listall; never another domain.
    assert ids(tree.dadmin, listall="true") & everyone == {mine["id"], peers["id"], subusers["id"]}
    assert ids(tree.dadmin) & everyone == set()
    assert by_id(tree.dadmin, mine["id"])["count"] == 1
    assert by_id(tree.dadmin, strangers["id"]) == {}
    assert by_id(tree.dadmin, strangers["id"], listall="true") == {}
    assert ids(tree.other_dadmin, listall="true") & everyone == {strangers["id"]}
    # Root sees all.
    assert ids(tree.root, listall="true") >= everyone
    for key in (mine, peers, strangers, subusers):
        assert by_id(tree.root, key["id"])["count"] == 1
    for key in (mine, peers, strangers, subusers):
        tree.root.run_async("deleteKMSKey", id=key["id"])


def test_acting_on_keys_of_others(tree):
    users_key = create_key(tree.user, tree.zone, tree.default_profile)
    strangers_key = create_key(tree.stranger, tree.zone, tree.default_profile)
    # Same-domain peers and other domains are refused; the key stays as it was.
    for client, key in ((tree.peer, users_key), (tree.user, strangers_key), (tree.dadmin, strangers_key),
                        (tree.other_dadmin, users_key)):
        err = client.error("updateKMSKey", 531, id=key["id"], name="stolen")
        assert err["cserrorcode"] == 4365
        err = client.error("deleteKMSKey", 531, id=key["id"])
        assert err["cserrorcode"] == 4365
    assert by_id(tree.root, users_key["id"])["kmskey"][0]["name"] == users_key["name"]
    # The domain admin above the owner may.
    assert tree.dadmin.ok("updateKMSKey", id=users_key["id"], enabled="false")["kmskey"]["enabled"] is False
    assert tree.dadmin.run_async("deleteKMSKey", id=users_key["id"]) == {"success": True}
    assert tree.root.run_async("deleteKMSKey", id=strangers_key["id"]) == {"success": True}


# ------------------------------------------------------------------ events
def test_events_for_every_change(softhsm, tree):
    profile, _ = pkcs11_profile(tree.root, softhsm)
    renamed = unique("renamed")
    tree.root.ok("updateHSMProfile", id=profile["id"], name=renamed)
    name = unique("evkey")
    key = create_key(tree.user, tree.zone, tree.default_profile, name=name)
    tree.user.ok("updateKMSKey", id=key["id"], enabled="false")
    tree.user.run_async("deleteKMSKey", id=key["id"])
    tree.root.ok("deleteHSMProfile", id=profile["id"])

    # The key's events belong to its owner: the user sees them, and so does root with listall.
    for client, params in ((tree.user, {}), (tree.root, {"listall": "true"})):
        created = events_of(client, "KMS.KEY.CREATE", key["id"], **params)
        assert [(e["description"], e["account"], e["resourcetype"], e["level"], e["state"]) for e in created] == [
            (f"Created KMS key: {name} (uuid: {key['id']})", tree.user_account["name"], "KmsKey", "INFO",
             "Completed")]
        updated = events_of(client, "KMS.KEY.UPDATE", key["id"], **params)
        assert [e["description"] for e in updated] == [f"Updated KMS key: {name} (uuid: {key['id']}, enabled: false)"]
        deleted = events_of(client, "KMS.KEY.DELETE", key["id"], **params)
        assert sorted(e["state"] for e in deleted) == ["Completed", "Scheduled"]
        assert {e["account"] for e in deleted} == {tree.user_account["name"]}

    created = events_of(tree.root, "HSM.PROFILE.CREATE", profile["id"])
    assert [e["description"] for e in created] == [f"Created HSM profile: {profile['name']} (uuid: {profile['id']})"]
    assert len(events_of(tree.root, "HSM.PROFILE.UPDATE", profile["id"])) == 1
    assert len(events_of(tree.root, "HSM.PROFILE.DELETE", profile["id"])) == 1
    for event_type in ("HSM.PROFILE.CREATE", "HSM.PROFILE.UPDATE", "HSM.PROFILE.DELETE"):
        assert events_of(tree.root, event_type, profile["id"])[0]["resourcetype"] == "HsmProfile"
    # Users do not see the root admin's profile events.
    assert events_of(tree.user, "HSM.PROFILE.CREATE", profile["id"]) == []
