"""The deletion safety net of KMS keys (not upstream): deleteKMSKey waits
``kms.key.deletion.pending.days``, the key is PendingDeletion meanwhile, cancelKMSKeyDeletion
restores it, and the background purge destroys its KEKs once the date has passed.

Through the real server (its background worker purges); due keys are made by moving their
``deletion_date`` into the past in the database. The race of a purge and a cancel is run in this
process against the same database, on the purge's own functions.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from cloudstack_kms import create_app
from cloudstack_kms.config import Settings
from cloudstack_kms.services.kms import deletion
from cloudstack_kms.services.kms.runtime import runtime_of
from tests.apicommands.test_kms_keys import create_key, events_of, pkcs11_profile, token_keys
from tests.support.client import Client
from tests.support.dbtools import execute, query
from tests.support.kmsrig import wait_until
from tests.support.tenants import TenantTree, tenant_tree, unique
from tests.support.volumes import config

SETTING = "kms.key.deletion.pending.days"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S+0000"
#: The server checks for due keys every PurgeTask.CHECK_SEC; generous for a busy host.
PURGE_WAIT_SEC = deletion.PurgeTask.CHECK_SEC * 6


@pytest.fixture(scope="module")
def tree(server, admin_keys) -> TenantTree:
    return tenant_tree(Client(server.url, admin_keys["apikey"], admin_keys["secretkey"]))


@pytest.fixture(scope="module", autouse=True)
def seven_days(server, admin_keys):
    """The default waiting period, whatever another module left (restored after this one)."""
    with config(Client(server.url, admin_keys["apikey"], admin_keys["secretkey"]), SETTING, "7"):
        yield


@pytest.fixture(scope="module")
def encrypting_offering(tree) -> str:
    return tree.root.ok("createDiskOffering", name=unique("enc"), disksize=1, encrypt="true")["diskoffering"]["id"]


def listed(client: Client, key_id: str) -> dict | None:
    found = client.ok("listKMSKeys", id=key_id, listall="true").get("kmskey", [])
    return found[0] if found else None


def utc(text: str) -> datetime:
    return datetime.strptime(text, DATE_FORMAT).replace(tzinfo=timezone.utc)


def pending_text(key_id: str, date: str) -> str:
    return (f"KMS key is pending deletion: {key_id} (deletion date {date}); cancel the deletion with "
            "cancelKMSKeyDeletion to use it again")


def schedule(client: Client, key: dict) -> dict:
    assert client.run_async("deleteKMSKey", id=key["id"]) == {"success": True}
    view = listed(client, key["id"])
    assert view is not None and view["state"] == "PendingDeletion", view
    return view


def make_due(kms_env, key_id: str) -> None:  # noqa: ANN001
    past = (datetime.now(timezone.utc) - timedelta(minutes=1)).replace(tzinfo=None, microsecond=0)
    assert execute(kms_env, "UPDATE kms_keys SET deletion_date = :d WHERE uuid = :u", d=past, u=key_id) == 1


def key_row(kms_env, key_id: str) -> tuple:  # noqa: ANN001
    [row] = query(kms_env, "SELECT id, removed, deletion_date, enabled FROM kms_keys WHERE uuid = :u", u=key_id)
    return row


# ------------------------------------------------------------------ scheduling
def test_delete_schedules_and_lists_pending_deletion(tree, kms_env):
    key = create_key(tree.user, tree.zone, tree.default_profile)
    before = datetime.now(timezone.utc).replace(microsecond=0)
    view = schedule(tree.user, key)
    after = datetime.now(timezone.utc)
    # Seven days out, in UTC, in CloudStack's date format; the key reads as disabled meanwhile.
    assert before + timedelta(days=7) <= utc(view["deletiondate"]) <= after + timedelta(days=7)
    assert (view["enabled"], view["name"], view["version"]) == (False, key["name"], 1)
    assert "deletiondate" not in key and key["state"] == "Enabled"
    # Every caller who sees it sees the same; the enabled filter agrees with the answer.
    for client in (tree.dadmin, tree.root):
        assert listed(client, key["id"])["state"] == "PendingDeletion"
    assert key["id"] in {k["id"] for k in tree.user.ok("listKMSKeys", enabled="false")["kmskey"]}
    assert key["id"] not in {k["id"] for k in tree.user.ok("listKMSKeys", enabled="true").get("kmskey", [])}
    # Nothing is destroyed yet: the KEK and the key row are there.
    _, removed, date, _ = key_row(kms_env, key["id"])
    assert removed is None and date is not None
    assert query(kms_env, "SELECT COUNT(*) FROM kms_database_kek_objects WHERE label = :l",
                 l=listed(tree.root, key["id"])["keklabel"]) == [(1,)]
    # The job's completion event tells the date.
    done = [e for e in events_of(tree.user, "KMS.KEY.DELETE", key["id"]) if e["state"] == "Completed"]
    assert [e["description"] for e in done] == [
        f"Successfully completed scheduling deletion of KMS key: {key['id']} on {view['deletiondate']}"]


def test_the_date_is_fixed_when_scheduled(tree, admin):
    key = create_key(tree.user, tree.zone, tree.default_profile)
    date = schedule(tree.user, key)["deletiondate"]
    with config(admin, SETTING, "30"):
        assert listed(tree.user, key["id"])["deletiondate"] == date


def test_a_pending_key_refuses_every_use(tree, encrypting_offering, admin):
    key = create_key(tree.user, tree.zone, tree.default_profile)
    date = schedule(tree.user, key)["deletiondate"]
    refused = pending_text(key["id"], date)
    # updateKMSKey (enabling it again included), rotateKMSKey, migrateVolumesToKMS: refused at once.
    for command, params in (("updateKMSKey", {"enabled": "true"}), ("updateKMSKey", {"name": "again"}),
                            ("rotateKMSKey", {})):
        err = tree.user.error(command, 431, id=key["id"], **params)
        assert err["errortext"] == refused, command
    err = admin.error("migrateVolumesToKMS", 431, kmskeyid=key["id"], zoneid=tree.zone)
    assert err["errortext"] == refused
    # createVolume: refused at the request, naming the pending deletion.
    with config(admin, "storage.volume.images", "false"):
        err = tree.user.error("createVolume", 431, name=unique("vol"), zoneid=tree.zone,
                              diskofferingid=encrypting_offering, kmskeyid=key["id"])
    assert err["errortext"] == refused
    assert tree.user.ok("listVolumes", kmskeyid=key["id"]) == {}
    # Deleting it again: refused, and the date does not move.
    err = tree.user.error("deleteKMSKey", 431, id=key["id"])
    assert err["errortext"] == (f"KMS key is already pending deletion: {key['id']} (deletion date {date}); cancel "
                                "it with cancelKMSKeyDeletion")
    view = listed(tree.user, key["id"])
    assert (view["state"], view["deletiondate"], view["version"]) == ("PendingDeletion", date, 1)


# ------------------------------------------------------------------ cancelling
@pytest.mark.parametrize("enabled", [True, False])
def test_cancel_restores_the_state_it_had(tree, kms_env, encrypting_offering, admin, enabled):
    key = create_key(tree.user, tree.zone, tree.default_profile)
    if not enabled:
        tree.user.ok("updateKMSKey", id=key["id"], enabled="false")
    schedule(tree.user, key)
    restored = tree.user.ok("cancelKMSKeyDeletion", id=key["id"])["kmskey"]
    state = "Enabled" if enabled else "Disabled"
    assert (restored["state"], restored["enabled"]) == (state, enabled)
    assert "deletiondate" not in restored
    assert listed(tree.user, key["id"]) == restored
    assert key_row(kms_env, key["id"])[1:] == (None, None, enabled)
    [event] = events_of(tree.user, "KMS.KEY.DELETE.CANCEL", key["id"])
    assert event["description"] == f"Cancelled the deletion of KMS key: {key['name']} (uuid: {key['id']}, " \
                                   f"state: {state})"
    assert (event["account"], event["resourcetype"]) == (tree.user_account["name"], "KmsKey")
    # Usable again: a volume is made with it (when enabled), and it can be deleted again.
    if enabled:
        with config(admin, "storage.volume.images", "false"):
            volume = tree.user.run_async("createVolume", name=unique("vol"), zoneid=tree.zone,
                                         diskofferingid=encrypting_offering, kmskeyid=key["id"])["volume"]
        assert volume["kmskeyid"] == key["id"]
        tree.user.ok("deleteVolume", id=volume["id"])
    schedule(tree.user, key)


def test_cancel_refuses_what_is_not_pending(tree):
    key = create_key(tree.user, tree.zone, tree.default_profile)
    err = tree.user.error("cancelKMSKeyDeletion", 431, id=key["id"])
    assert err["errortext"] == f"KMS key is not pending deletion: {key['id']}"
    missing = "0b6b2f3e-0000-4000-8000-000000000000"
    err = tree.user.error("cancelKMSKeyDeletion", 431, id=missing)
    assert err["errortext"] == f"KMS key not found: {missing}"
    err = tree.user.error("cancelKMSKeyDeletion", 431)
    assert err["errortext"] == "Unable to execute API command cancelkmskeydeletion due to missing parameter id"
    # Others' keys: the access rule of every key command (a peer of the owner may not).
    schedule(tree.user, key)
    assert tree.peer.error("cancelKMSKeyDeletion", 531, id=key["id"])["cserrorcode"] == 4365
    assert listed(tree.user, key["id"])["state"] == "PendingDeletion"


def test_zero_days_deletes_at_once(tree, kms_env, admin):
    key = create_key(tree.user, tree.zone, tree.default_profile)
    label = listed(tree.root, key["id"])["keklabel"]
    with config(admin, SETTING, "0"):
        assert tree.user.run_async("deleteKMSKey", id=key["id"]) == {"success": True}
    assert listed(tree.root, key["id"]) is None
    assert key_row(kms_env, key["id"])[1] is not None
    assert query(kms_env, "SELECT COUNT(*) FROM kms_database_kek_objects WHERE label = :l", l=label) == [(0,)]


def test_setting_bounds(admin):
    for value in ("-1", "366", "x"):
        assert admin.request("updateConfiguration", name=SETTING, value=value).status == 431, value
    [setting] = [c for c in admin.ok("listConfigurations", name=SETTING)["configuration"] if c["name"] == SETTING]
    assert (setting["value"], setting["defaultvalue"]) == ("7", "7")


# ------------------------------------------------------------------ the purge
@pytest.mark.parametrize("provider", ["database", "pkcs11"])
def test_due_key_is_purged_and_a_pending_one_is_not(tree, kms_env, softhsm, provider):
    if provider == "pkcs11":
        profile, token = pkcs11_profile(tree.root, softhsm, account=tree.user_account["name"],
                                        domainid=tree.dom["id"])
        profile_id = profile["id"]
    else:
        profile_id, token = tree.default_profile, None
    due, waiting = (create_key(tree.user, tree.zone, profile_id) for _ in range(2))
    labels = {k["id"]: listed(tree.root, k["id"])["keklabel"] for k in (due, waiting)}
    schedule(tree.user, due)
    schedule(tree.user, waiting)
    make_due(kms_env, due["id"])

    wait_until(lambda: listed(tree.root, due["id"]) is None, timeout=PURGE_WAIT_SEC, what="the purge")
    assert key_row(kms_env, due["id"])[1] is not None
    assert query(kms_env, "SELECT COUNT(*) FROM kms_kek_versions v JOIN kms_keys k ON k.id = v.kms_key_id "
                          "WHERE k.uuid = :u AND v.removed IS NULL", u=due["id"]) == [(0,)]
    if token is not None:  # the KEK is gone from the SoftHSM2 token; the waiting key's is not
        on_token = token_keys(softhsm, token)
        assert labels[due["id"]] not in on_token and labels[waiting["id"]] in on_token
    else:
        count = "SELECT COUNT(*) FROM kms_database_kek_objects WHERE label = :l"
        assert query(kms_env, count, l=labels[due["id"]]) == [(0,)]
        assert query(kms_env, count, l=labels[waiting["id"]]) == [(1,)]
    purged = [e for e in events_of(tree.user, "KMS.KEY.DELETE", due["id"]) if "pending deletion period" in e["description"]]
    assert len(purged) == 1 and purged[0]["description"].startswith(
        f"Deleted KMS key: {due['name']} (uuid: {due['id']}) after its pending deletion period ended on ")
    # The key not yet due was looked at in the same round and left alone.
    assert listed(tree.root, waiting["id"])["state"] == "PendingDeletion"
    assert key_row(kms_env, waiting["id"])[1] is None


# ------------------------------------------------------------------ a purge and a cancel
@pytest.fixture(scope="module")
def local_state(kms_env):
    """This process's own app state on the shared database (no background work), for calling the purge."""
    app = create_app(Settings(db_url=kms_env.db_url, data_dir=kms_env.data_dir,
                              master_key_file=kms_env.data_dir / "master.key", start_background=False))
    state = app.extensions["cloudstack_kms"]
    yield state
    state.db.dispose()


def test_a_purge_that_read_the_key_before_a_cancel_leaves_it(tree, kms_env, local_state):
    """The purge's list of due keys is read before the cancel commits: the purge decides again on
    the locked row and keeps the key; and a key whose date is still ahead is never purged."""
    cancelled, early = (create_key(tree.user, tree.zone, tree.default_profile) for _ in range(2))
    for key in (cancelled, early):
        schedule(tree.user, key)
    ids = [key_row(kms_env, k["id"])[0] for k in (cancelled, early)]
    tree.user.ok("cancelKMSKeyDeletion", id=cancelled["id"])
    runtime = runtime_of(local_state)
    for key_id in ids:  # as if both had been read as due
        assert deletion.retrying(local_state.db, lambda s, k=key_id: deletion._purge_one(
            s, runtime, local_state.master_key, k)) is False
    assert listed(tree.user, cancelled["id"])["state"] == "Enabled"
    assert listed(tree.user, early["id"])["state"] == "PendingDeletion"


def test_a_cancel_after_the_purge_finds_no_key(tree, kms_env, local_state):
    key = create_key(tree.user, tree.zone, tree.default_profile)
    schedule(tree.user, key)
    make_due(kms_env, key["id"])
    # Purged here (or by the server's worker, whichever comes first: the lock lets one of them do it).
    deletion.purge_due(local_state)
    wait_until(lambda: listed(tree.root, key["id"]) is None, timeout=PURGE_WAIT_SEC, what="the purge")
    err = tree.user.error("cancelKMSKeyDeletion", 431, id=key["id"])
    assert err["errortext"] == f"KMS key not found: {key['id']}"
