"""Volumes through the real server: createDiskOffering, listDiskOfferings, createVolume (KMS, legacy
passphrase, plain), listVolumes, checkVolume, deleteVolume, and deleteKMSKey while volumes use a key.

What the API says is checked against what is really on disk: the test process finds a volume's
image through the admin view, obtains its LUKS secret the way the server does
(``services.volumes.volume_secret`` on the server's database with its master key), and writes and
reads a pattern with ``qemu-io``. Every KMS test runs with the seeded database profile and with a
``pkcs11`` profile on a fresh SoftHSM2 token.

LUKS images cost a qemu-img run each (about 2 s of CPU, mostly qemu's own PBKDF benchmark, whatever
the iter-time); tests that do not need an image run metadata-only (``storage.volume.images=false``).
"""
from __future__ import annotations

import base64
import os
import subprocess
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from cloudstack_kms.errors import CloudRuntimeError
from cloudstack_kms.storage import qemu
from tests.support.client import Client
from tests.support.dbtools import execute, query
from tests.support.tenants import new_account, new_domain, unique
from tests.support.volumes import (GIB, SERVER_LOG, ProcessScanner, VolumeStore, admin_view, config, create_volume,
                                   finish, set_config, submit_volume)

DEFAULT_PROFILE = "HSM Database Provider"
ITER_TIME_MS = "1"
PLAIN_TEXT_OFFERING = "A KMS key can only be used with a disk offering that has encryption enabled"

pytestmark = pytest.mark.skipif(qemu.available() is not None, reason=qemu.available() or "")


# ------------------------------------------------------------------ module fixtures
@dataclass
class World:
    root: Client
    zone: str
    zone2: str
    dom: dict
    owner_account: dict
    owner: Client
    peer_account: dict
    peer: Client
    enc: dict
    plain: dict
    custom_enc: dict
    db_profile: str
    profiles: dict[str, str] = field(default_factory=dict)

    def key(self, client: Client, profile: str, zone: str | None = None) -> dict:
        return client.ok("createKMSKey", name=unique("key"), zoneid=zone or self.zone,
                         hsmprofileid=profile)["kmskey"]


@pytest.fixture(scope="module")
def root(server, admin_keys) -> Client:
    SERVER_LOG[:] = [server.log]
    yield Client(server.url, admin_keys["apikey"], admin_keys["secretkey"])
    SERVER_LOG.clear()


@pytest.fixture(scope="module", autouse=True)
def volume_settings(root):
    """Fast LUKS key derivation, images on, 256-bit DEKs; the old values come back afterwards."""
    wanted = {"storage.luks.iter.time.ms": ITER_TIME_MS, "storage.volume.images": "true",
              "kms.dek.size.bits": "256"}
    old = {name: set_config(root, name, value) for name, value in wanted.items()}
    yield
    for name, value in old.items():
        set_config(root, name, value)


@pytest.fixture(scope="module")
def store(kms_env):
    store = VolumeStore(kms_env)
    yield store
    store.close()


@pytest.fixture(scope="module")
def world(root) -> World:
    zone = root.ok("listZones")["zone"][0]["id"]
    zone2 = root.ok("createZone", name=unique("zone"), dns1="8.8.8.8", internaldns1="8.8.4.4",
                    networktype="Advanced")["zone"]["id"]
    dom = new_domain(root)
    owner_account, owner = new_account(root, domainid=dom["id"])
    peer_account, peer = new_account(root, domainid=dom["id"])
    enc = root.ok("createDiskOffering", name=unique("enc"), disksize=1, encrypt="true")["diskoffering"]
    plain = root.ok("createDiskOffering", name=unique("plain"), disksize=1)["diskoffering"]
    custom_enc = root.ok("createDiskOffering", name=unique("cenc"), customized="true",
                         encrypt="true")["diskoffering"]
    db_profile = root.ok("listHSMProfiles", name=DEFAULT_PROFILE)["hsmprofile"][0]["id"]
    return World(root, zone, zone2, dom, owner_account, owner, peer_account, peer, enc, plain, custom_enc,
                 db_profile)


@pytest.fixture(params=["database", "pkcs11"])
def profile(request, world) -> str:
    """The id of an HSM profile every account may use: the seeded database one, or a pkcs11 one on a
    fresh SoftHSM2 token (made once per module)."""
    if request.param == "database":
        return world.db_profile
    if "pkcs11" not in world.profiles:
        softhsm = request.getfixturevalue("softhsm")
        label = unique("voltok")
        softhsm.init_token(label)
        details = {f"details[0].{k}": v for k, v in softhsm.details(label).items()}
        world.profiles["pkcs11"] = world.root.ok("createHSMProfile", name=unique("p11"), ispublic="true",
                                                 **details)["hsmprofile"]["id"]
    return world.profiles["pkcs11"]


@pytest.fixture()
def metadata_only(root):
    with config(root, "storage.volume.images", "false"):
        yield


# ------------------------------------------------------------------ helpers
def pattern_round_trip(image, secret: bytes | None) -> None:
    """Write 1 MiB of 0xab through qemu-io with ``secret``, read it back; a wrong pattern must fail."""
    qemu.io(str(image), secret, "write -P 0xab 0 1M")
    assert "read 1048576/1048576 bytes at offset 0" in qemu.io(str(image), secret, "read -P 0xab 0 1M")
    with pytest.raises(qemu.QemuError, match="Pattern verification failed"):
        qemu.io(str(image), secret, "read -P 0xcd 0 1M")


def wrong_secret_fails(image, secret: bytes) -> None:
    wrong = base64.b64encode(os.urandom(len(base64.b64decode(secret))))
    with pytest.raises(qemu.QemuError, match="Invalid password, cannot unlock any keyslot"):
        qemu.io(str(image), wrong, "read -P 0xab 0 1M")


def no_secret_in_argv(scan: ProcessScanner, volume_id: str, secret: bytes) -> None:
    """The server's qemu-img create for the volume was seen in the process list, without the secret."""
    creates = [argv for argv in scan.argvs() if b"create" in argv and
               any(volume_id.encode() in arg for arg in argv)]
    assert creates, f"qemu-img create for {volume_id} never seen in /proc: {scan.argvs()}"
    for argv in creates:
        assert any(arg.startswith(b"secret,id=sec0,file=/dev/fd/") for arg in argv), argv
    for argv in scan.argvs():
        assert not any(secret in arg for arg in argv), "a volume secret is on a qemu command line"


def check_volume(root: Client, volume_id: str) -> dict:
    return root.run_async("checkVolume", id=volume_id)["volume"]["volumecheckresult"]


def failed_job(client: Client, command: str, **params: Any) -> dict:
    job = client.wait_job(client.ok(command, **params)["jobid"])
    assert job["jobstatus"] == 2, f"{command} should have failed: {job}"
    return job["jobresult"]


def delete_key_refused_text(key_id: str, wrapped: int = 1) -> str:
    return f"Cannot delete KMS key: {key_id}. {wrapped} wrapped key(s) still reference this key"


# ------------------------------------------------------------------ disk offerings
def test_disk_offerings(world):
    root, enc, plain = world.root, world.enc, world.plain
    expected = {"disksize": 1, "iscustomized": False, "storagetype": "shared", "provisioningtype": "thin",
                "displayoffering": True}
    assert {k: enc[k] for k in expected} == expected and enc["encrypt"] is True
    assert plain["encrypt"] is False and world.custom_enc["iscustomized"] is True
    assert root.ok("listDiskOfferings", id=enc["id"]) == {"count": 1, "diskoffering": [enc]}
    encrypted = {o["id"] for o in root.ok("listDiskOfferings", encrypt="true", pagesize=500, page=1)["diskoffering"]}
    unencrypted = {o["id"] for o in root.ok("listDiskOfferings", encrypt="false", pagesize=500,
                                            page=1)["diskoffering"]}
    assert {enc["id"], world.custom_enc["id"]} <= encrypted and plain["id"] not in encrypted
    assert plain["id"] in unencrypted and enc["id"] not in unencrypted
    assert world.owner.ok("listDiskOfferings", id=enc["id"])["diskoffering"][0]["encrypt"] is True
    root.error("createDiskOffering", 431, name=unique("bad"), encrypt="true")


# ------------------------------------------------------------------ data through the key
def test_kms_volume_data_opens_with_the_unwrapped_key(world, store, profile):
    owner, root = world.owner, world.root
    key = world.key(owner, profile)
    name = unique("vol")
    with ProcessScanner() as scan:
        volume = create_volume(owner, name=name, zoneid=world.zone, diskofferingid=world.enc["id"],
                               kmskeyid=key["id"])
    expected = {"name": name, "state": "Ready", "size": GIB, "zoneid": world.zone, "type": "DATADISK",
                "account": world.owner_account["name"], "accountid": world.owner_account["id"],
                "domainid": world.dom["id"], "encryptformat": "LUKS", "kmskeyid": key["id"], "kmskey": key["name"],
                "kmskeyversion": 1, "diskofferingid": world.enc["id"]}
    assert {k: volume.get(k) for k in expected} == expected
    assert not {"path", "storageid", "storage"} & set(volume), "admin-only fields shown to a user"
    view = admin_view(root, volume["id"])
    assert {k: view.get(k) for k in expected} == expected

    image = store.image(view)
    assert image.is_file() and image.name == view["path"] and qemu.is_luks(str(image))
    assert image in store.files()
    secret = store.secret(volume["id"])
    assert len(secret) == 44 and len(base64.b64decode(secret, validate=True)) == 32  # 256-bit DEK as Base64
    no_secret_in_argv(scan, volume["id"], secret)
    pattern_round_trip(image, secret)
    wrong_secret_fails(image, secret)

    result = check_volume(root, volume["id"])
    assert {k: result.get(k) for k in ("encryption", "unlocked", "format", "check-errors")} == \
        {"encryption": "luks", "unlocked": "true", "format": "qcow2", "check-errors": "0"}
    assert admin_view(root, volume["id"])["volumecheckresult"] == result

    assert [v["id"] for v in owner.ok("listVolumes", kmskeyid=key["id"])["volume"]] == [volume["id"]]
    assert [v["id"] for v in root.ok("listVolumes", kmskeyid=key["id"], listall="true")["volume"]] == [volume["id"]]

    # A key a volume still uses cannot go; after the volume, it can.
    wrapped = store.wrapped_key(volume["id"])
    refused = failed_job(owner, "deleteKMSKey", id=key["id"])
    assert (refused["errorcode"], refused["errortext"]) == (431, delete_key_refused_text(key["id"]))
    assert owner.ok("deleteVolume", id=volume["id"]) == {"success": True}
    assert not image.exists()
    row = store.volume_row(volume["id"])
    assert row["state"] == "Expunged" and row["removed"] is not None
    assert query(store.kms, "SELECT removed FROM kms_wrapped_key WHERE id = :id", id=wrapped["id"])[0][0] is not None
    assert owner.ok("listVolumes", id=volume["id"]) == {}
    assert owner.run_async("deleteKMSKey", id=key["id"]) == {"success": True}
    # Accepted once nothing uses the key; with the default waiting period it is pending deletion.
    assert owner.ok("listKMSKeys", id=key["id"])["kmskey"][0]["state"] == "PendingDeletion"


def test_legacy_and_plain_volumes(world, store):
    owner, root = world.owner, world.root
    with ProcessScanner() as scan:
        legacy_job = submit_volume(owner, name=unique("legacy"), zoneid=world.zone, diskofferingid=world.enc["id"])
        plain_job = submit_volume(owner, name=unique("plain"), zoneid=world.zone, diskofferingid=world.plain["id"])
        legacy, plain = finish(owner, legacy_job), finish(owner, plain_job)
    assert legacy["encryptformat"] == "LUKS" and legacy["state"] == "Ready"
    assert not {"kmskeyid", "kmskey", "kmskeyversion"} & set(legacy)
    assert "encryptformat" not in plain and plain["state"] == "Ready"

    # Legacy: the passphrase is 48 random bytes as Base64 (64 characters), kept in `passphrase`.
    row = store.volume_row(legacy["id"])
    assert row["passphrase_id"] is not None and row["kms_wrapped_key_id"] is None and row["kms_key_id"] is None
    secret = store.secret(legacy["id"])
    assert len(secret) == 64 and len(base64.b64decode(secret, validate=True)) == 48
    no_secret_in_argv(scan, legacy["id"], secret)
    image = store.image(admin_view(root, legacy["id"]))
    assert qemu.is_luks(str(image))
    pattern_round_trip(image, secret)
    wrong_secret_fails(image, secret)
    result = check_volume(root, legacy["id"])
    assert (result["encryption"], result["unlocked"], result["check-errors"]) == ("luks", "true", "0")
    owner.error("checkVolume", 432, id=legacy["id"])  # root admins only

    # Plain: no secret at all, an unencrypted qcow2.
    assert store.secret(plain["id"]) is None
    plain_image = store.image(admin_view(root, plain["id"]))
    assert not qemu.is_luks(str(plain_image))
    pattern_round_trip(plain_image, None)
    result = check_volume(root, plain["id"])
    assert (result["encryption"], result["unlocked"], result["format"]) == ("none", "false", "qcow2")

    for volume, path in ((legacy, image), (plain, plain_image)):
        assert owner.ok("deleteVolume", id=volume["id"]) == {"success": True}
        assert not path.exists()
    assert query(store.kms, "SELECT COUNT(*) FROM passphrase WHERE id = :id", id=row["passphrase_id"])[0][0] == 0


# ------------------------------------------------------------------ refusals
def test_refused_keys_leave_nothing_behind(world, store, profile):
    owner, root = world.owner, world.root
    own = world.key(owner, profile)
    peers = world.key(world.peer, profile)
    other_zone = world.key(owner, profile, zone=world.zone2)
    disabled = world.key(owner, profile)
    assert owner.ok("updateKMSKey", id=disabled["id"], enabled="false")["kmskey"]["enabled"] is False
    unknown = str(uuid.uuid4())
    base = {"zoneid": world.zone, "diskofferingid": world.enc["id"]}
    for_owner = {"account": world.owner_account["name"], "domainid": world.dom["id"]}
    cases = [
        (owner, {"kmskeyid": peers["id"]}, 531, "KMS key does not belong to the volume owner account"),
        (root, {"kmskeyid": peers["id"], **for_owner}, 531, "KMS key does not belong to the volume owner account"),
        (owner, {"kmskeyid": other_zone["id"]}, 431,
         f"KMS key belongs to zone {world.zone2} but the target resource is in zone {world.zone}"),
        (owner, {"kmskeyid": disabled["id"]}, 431,
         f"KMS key is not enabled and cannot be used for volume encryption: {disabled['id']}"),
        (owner, {"kmskeyid": unknown}, 431, f"KMS key not found: {unknown}"),
        (owner, {"kmskeyid": own["id"], "diskofferingid": world.plain["id"]}, 431, PLAIN_TEXT_OFFERING),
    ]
    counts, files = store.counts(), store.files()
    for client, params, code, text in cases:
        error = client.error("createVolume", code, name=unique("refused"), **{**base, **params})
        assert error["errortext"] == text, params
        assert store.counts() == counts, f"rows left behind by {params}"
        assert store.files() == files, f"files left behind by {params}"

    # The same call with the owner's own key works, and is seen by the same counters (metadata-only:
    # that the file count sees images is shown by the KMS volume test).
    with config(root, "storage.volume.images", "false"):
        volume = create_volume(root, name=unique("vol"), kmskeyid=own["id"], **base, **for_owner)
    assert (volume["account"], volume["kmskeyid"]) == (world.owner_account["name"], own["id"])
    after = store.counts()
    assert (after["volumes"], after["kms_wrapped_key"]) == (counts["volumes"] + 1, counts["kms_wrapped_key"] + 1)
    root.ok("deleteVolume", id=volume["id"])


def test_create_volume_parameters(world, store, metadata_only):
    owner = world.owner
    owner.error("createVolume", 431, zoneid=world.zone)
    owner.error("createVolume", 431, diskofferingid=world.enc["id"])
    text = owner.error("createVolume", 431, zoneid=world.zone, diskofferingid=world.custom_enc["id"])["errortext"]
    assert text == "Disk offering is customized, so a size (in GB) must be specified"
    text = owner.error("createVolume", 431, zoneid=world.zone, diskofferingid=world.enc["id"], size=2)["errortext"]
    assert text == "Disk size can't be specified with a disk offering of fixed size"
    volume = create_volume(owner, zoneid=world.zone, diskofferingid=world.custom_enc["id"], size=2)
    assert volume["size"] == 2 * GIB and volume["name"].startswith("vol-") and volume["encryptformat"] == "LUKS"
    owner.ok("deleteVolume", id=volume["id"])


# ------------------------------------------------------------------ short jobs finish in their request
def test_metadata_only_create_finishes_in_its_request(world, kms_env, metadata_only, profile):
    """Without an image the job phase is a few rows and one provider call: it runs in the request's
    transaction and the job row is written finished, so the very first poll sees the volume Ready,
    with the events a worker would have recorded."""
    owner = world.owner
    key = world.key(owner, profile)
    submitted = owner.ok("createVolume", name=unique("quick"), zoneid=world.zone, diskofferingid=world.enc["id"],
                         kmskeyid=key["id"])
    job = owner.ok("queryAsyncJobResult", jobid=submitted["jobid"])
    assert job["jobstatus"] == 1 and job["jobresultcode"] == 0, job
    volume = job["jobresult"]["volume"]
    assert (volume["id"], volume["state"], volume["kmskeyid"]) == (submitted["id"], "Ready", key["id"])
    [(executing, completed_by, removed)] = query(kms_env, "SELECT job_executing_msid, job_complete_msid, removed "
                                                          "FROM async_job WHERE uuid = :u", u=submitted["jobid"])
    assert executing is None and completed_by is not None and removed is not None
    events = query(kms_env, "SELECT e.state, e.description FROM event e JOIN volumes v ON v.id = e.resource_id "
                            "WHERE e.type = 'VOLUME.CREATE' AND v.uuid = :v ORDER BY e.id", v=submitted["id"])
    assert [state for state, _ in events] == ["Scheduled", "Completed"]
    assert events[1][1].lower().startswith("successfully completed creating volume")  # as the worker writes it
    owner.ok("deleteVolume", id=submitted["id"])


def test_a_short_job_that_fails_in_its_request_is_settled_as_a_failed_job(world, kms_env, store, metadata_only):
    """A job phase that fails in the request is rolled back whole; the request is submitted again
    with its job queued, and the worker settles it as it settles any failing job."""
    root = world.root
    key = world.key(root, world.db_profile)
    demote = ("UPDATE kms_kek_versions SET status = :status WHERE kms_key_id = "
              "(SELECT id FROM kms_keys WHERE uuid = :k)")
    execute(kms_env, demote, status="Previous", k=key["id"])  # the key has no Active version now
    try:
        counts = store.counts()
        submitted = root.ok("createVolume", name=unique("fails"), zoneid=world.zone, diskofferingid=world.enc["id"],
                            kmskeyid=key["id"])
        job = root.wait_job(submitted["jobid"])
        assert job["jobstatus"] == 2 and job["jobresultcode"] == 530, job
        assert job["jobresult"]["errortext"] == f"KMS key {key['id']} has no active KEK version"
        after = store.counts()  # the volume row of the create phase stays (Allocated); no wrapped key
        assert (after["volumes"], after["kms_wrapped_key"]) == (counts["volumes"] + 1, counts["kms_wrapped_key"])
        assert store.volume_row(submitted["id"])["state"] == "Allocated"
        events = query(kms_env, "SELECT e.state, e.level FROM event e JOIN volumes v ON v.id = e.resource_id "
                                "WHERE e.type = 'VOLUME.CREATE' AND v.uuid = :v ORDER BY e.id", v=submitted["id"])
        assert events == [("Scheduled", "INFO"), ("Completed", "ERROR")]
    finally:
        execute(kms_env, demote, status="Active", k=key["id"])
    root.ok("deleteVolume", id=submitted["id"])


# ------------------------------------------------------------------ wrapped keys
def test_swapped_wrapped_blobs_never_open(world, store, profile):
    owner, root = world.owner, world.root
    key = world.key(owner, profile)
    submitted = [submit_volume(owner, name=unique("swap"), zoneid=world.zone, diskofferingid=world.enc["id"],
                               kmskeyid=key["id"]) for _ in range(2)]
    a, b = (finish(owner, s) for s in submitted)
    wa, wb = store.wrapped_key(a["id"]), store.wrapped_key(b["id"])
    assert wa["kek_version_id"] == wb["kek_version_id"]  # same KEK: only the binding to its row tells them apart
    secrets = {a["id"]: store.secret(a["id"]), b["id"]: store.secret(b["id"])}
    assert secrets[a["id"]] != secrets[b["id"]]

    store.swap_blobs(wa["id"], wb["id"])
    try:
        for volume, wrapped in ((a, wa), (b, wb)):
            error = failed_job(root, "checkVolume", id=volume["id"])
            assert error["errorcode"] == 530
            assert error["errortext"].startswith(f"Failed to unwrap key {wrapped['uuid']}: "), error
            with pytest.raises(CloudRuntimeError, match=f"Failed to unwrap key {wrapped['uuid']}"):
                store.secret(volume["id"])
    finally:
        store.swap_blobs(wa["id"], wb["id"])

    for volume in (a, b):
        assert store.secret(volume["id"]) == secrets[volume["id"]]
        assert check_volume(root, volume["id"])["unlocked"] == "true"
        owner.ok("deleteVolume", id=volume["id"])
    owner.run_async("deleteKMSKey", id=key["id"])


def test_dek_size_and_metadata_only_volumes(world, store, profile, metadata_only):
    owner, root = world.owner, world.root
    first, second = world.key(owner, profile), world.key(owner, profile)
    files = store.files()
    with config(root, "kms.dek.size.bits", "128"):
        small = [create_volume(owner, zoneid=world.zone, diskofferingid=world.enc["id"], kmskeyid=first["id"])
                 for _ in range(2)]
    big = create_volume(owner, zoneid=world.zone, diskofferingid=world.enc["id"], kmskeyid=second["id"])
    for volume in small:
        secret = store.secret(volume["id"])
        assert len(secret) == 24 and len(base64.b64decode(secret, validate=True)) == 16
    assert len(base64.b64decode(store.secret(big["id"]), validate=True)) == 32
    assert store.files() == files, "metadata-only volumes made images"
    view = admin_view(root, big["id"])
    assert view["state"] == "Ready" and "path" not in view and view["kmskeyversion"] == 1

    assert {v["id"] for v in owner.ok("listVolumes", kmskeyid=first["id"])["volume"]} == {v["id"] for v in small}
    assert [v["id"] for v in owner.ok("listVolumes", kmskeyid=second["id"])["volume"]] == [big["id"]]
    error = failed_job(root, "checkVolume", id=big["id"])
    assert (error["errorcode"], error["errortext"]) == (431, f"Volume: {big['name']} has no image on primary storage")

    for volume in (*small, big):
        owner.ok("deleteVolume", id=volume["id"])
    for key in (first, second):
        owner.run_async("deleteKMSKey", id=key["id"])


def test_delete_keeps_a_wrapped_key_another_volume_shares(world, store, metadata_only):
    owner = world.owner
    key = world.key(owner, world.db_profile)
    a, b = (create_volume(owner, zoneid=world.zone, diskofferingid=world.enc["id"], kmskeyid=key["id"])
            for _ in range(2))
    shared, own = store.wrapped_key(a["id"]), store.wrapped_key(b["id"])
    execute(store.kms, "UPDATE volumes SET kms_wrapped_key_id = :w WHERE uuid = :uuid", w=shared["id"], uuid=b["id"])
    execute(store.kms, "UPDATE kms_wrapped_key SET removed = CURRENT_TIMESTAMP WHERE id = :id", id=own["id"])

    owner.ok("deleteVolume", id=a["id"])
    assert store.wrapped_key(b["id"])["removed"] is None, "a shared wrapped key was removed"
    assert failed_job(owner, "deleteKMSKey", id=key["id"])["errortext"] == delete_key_refused_text(key["id"])
    owner.ok("deleteVolume", id=b["id"])
    assert query(store.kms, "SELECT removed FROM kms_wrapped_key WHERE id = :id", id=shared["id"])[0][0] is not None
    owner.run_async("deleteKMSKey", id=key["id"])


# ------------------------------------------------------------------ secrets in the server process
def test_secrets_stay_off_argv_and_are_zeroed_after_qemu(world, store, monkeypatch):
    """Provision and check in this process (one transaction, rolled back): every buffer handed to
    qemu is zero once the call returns, and qemu got it through an inherited pipe, not argv."""
    from sqlalchemy import select

    from cloudstack_kms.models import Account, DataCenter
    from cloudstack_kms.models.kms import KmsKey
    from cloudstack_kms.models.volume import DiskOffering
    from cloudstack_kms.services import volumes

    for size in (16, 24, 32):  # a DEK's Base64 text is built in a buffer, as base64 would write it
        data = os.urandom(size)
        assert volumes.luks_secret(bytearray(data)) == base64.b64encode(data)
    migrated = base64.b64encode(os.urandom(48))  # a legacy passphrase wrapped by migrateVolumesToKMS
    assert volumes.luks_secret(bytearray(migrated)) == migrated
    key = world.key(world.owner, world.db_profile)
    handed: list[tuple[bytearray, bytes]] = []  # (the buffer qemu got, its content at that time)
    runs: list[tuple[list[str], tuple]] = []
    real_run, real_create, real_check = subprocess.run, qemu.create, qemu.check

    def spy_run(args, **kwargs):  # noqa: ANN001, ANN202
        runs.append((list(args), tuple(kwargs.get("pass_fds", ()))))
        return real_run(args, **kwargs)

    def spy_create(path, size, secret, iter_time=2000):  # noqa: ANN001, ANN202
        handed.append((secret, bytes(secret)))
        return real_create(path, size, secret, iter_time)

    def spy_check(path, secret):  # noqa: ANN001, ANN202
        handed.append((secret, bytes(secret)))
        return real_check(path, secret)

    monkeypatch.setattr(qemu.subprocess, "run", spy_run)
    monkeypatch.setattr(qemu, "create", spy_create)
    monkeypatch.setattr(qemu, "check", spy_check)

    class Rollback(Exception):
        pass

    image = None
    try:
        with store.db.transaction() as s:
            owner = s.scalars(select(Account).where(Account.uuid == world.owner_account["id"])).one()
            zone = s.scalars(select(DataCenter).where(DataCenter.uuid == world.zone)).one()
            offering = s.scalars(select(DiskOffering).where(DiskOffering.uuid == world.enc["id"])).one()
            kms_key = s.scalars(select(KmsKey).where(KmsKey.uuid == key["id"])).one()
            volume = volumes.allocate(s, owner=owner, zone=zone, offering=offering, size_gb=None, name=None,
                                      key=kms_key)
            volumes.provision(s, store.runtime, store.master_key, volume)
            image = volumes.image_file(s, volume)
            report = volumes.check(s, store.runtime, store.master_key, volume)
            raise Rollback
    except Rollback:
        pass
    finally:
        leftover = image is not None and image.exists()
        if leftover:
            image.unlink()
    assert image is not None and not leftover, "a rolled-back provision left its image behind"
    assert report["unlocked"] == "true"
    assert len(handed) == 2  # create and check
    for buffer, content in handed:
        assert len(content) == 44 and any(content)
        assert buffer == bytearray(len(buffer)), "a secret buffer was not zeroed after the qemu call"
    secret = handed[0][1]
    qemu_runs = [(args, fds) for args, fds in runs if "--object" in args]
    # qemu-img create may run again on a busy host: its PBKDF2 benchmark failure is retried (see below)
    kinds = [args[1] for args, _ in qemu_runs]
    assert kinds.count("check") == 1 and 1 <= kinds.count("create") <= qemu.CREATE_ATTEMPTS, runs
    for args, fds in qemu_runs:
        assert not any(secret.decode() in a for a in args), "a volume secret is on a qemu command line"
        obj = args[args.index("--object") + 1]
        assert len(fds) == 1 and obj == f"secret,id=sec0,file=/dev/fd/{fds[0]},format=raw"
    assert not query(store.kms, "SELECT id FROM volumes WHERE kms_key_id = (SELECT id FROM kms_keys WHERE "
                                "uuid = :uuid)", uuid=key["id"])
    world.owner.run_async("deleteKMSKey", id=key["id"])


def test_luks_create_retries_qemus_cpu_usage_failure(tmp_path, monkeypatch):
    """qemu's PBKDF2 benchmark fails now and then on a busy host ("Unable to get accurate CPU usage"):
    that failure, and only that one, is tried again. A fake qemu-img also shows the secret arrives
    through the inherited descriptor named on the command line."""
    calls, received = tmp_path / "calls", tmp_path / "received"
    fake = tmp_path / "qemu-img"
    fake.write_text(f"""#!/bin/sh
echo call >> {calls}
fd=$(printf '%s' "$6" | sed -n 's|.*file=/dev/fd/\\([0-9]*\\),.*|\\1|p')
cat /dev/fd/$fd > {received}
if [ $(wc -l < {calls}) -lt "$FAILURES" ]; then echo "qemu-img: $9: $MESSAGE" >&2; : > "$9"; exit 1; fi
: > "$9"
""")
    fake.chmod(0o700)
    monkeypatch.setattr(qemu, "QEMU_IMG", str(fake))
    image = tmp_path / "vol.qcow2"

    def attempt(failures: int, message: str = qemu.CPU_USAGE_ERROR) -> int:
        monkeypatch.setenv("FAILURES", str(failures + 1))
        monkeypatch.setenv("MESSAGE", message)
        calls.unlink(missing_ok=True)
        try:
            qemu.create(str(image), 1024 * 1024, bytearray(b"s3cret,text"), 1)
        finally:
            count = len(calls.read_text().splitlines())
        return count

    assert attempt(2) == 3 and image.exists()
    assert received.read_bytes() == b"s3cret,text"
    with pytest.raises(qemu.QemuError, match="Unable to get accurate CPU usage"):
        attempt(qemu.CREATE_ATTEMPTS)
    assert len(calls.read_text().splitlines()) == qemu.CREATE_ATTEMPTS
    with pytest.raises(qemu.QemuError, match="No space left on device"):
        attempt(1, "No space left on device")
    assert len(calls.read_text().splitlines()) == 1
