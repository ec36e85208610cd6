"""The admin guide's volume steps in the real UI (Storage → Volumes): the list (with the Metrics view,
``listVolumesMetrics``), Create Volume with an encrypted disk offering and the KMS key chosen in the
form, the volume's page showing its key, a legacy-passphrase volume (encrypted offering, no key)
moved under a KMS key with the volume's own "Migrate to KMS" action, and destroying, recovering and
expunging a volume.

One test per step, in order, on what the earlier steps made (the module's :class:`Walk`); each
checks the page, the server (signed admin client, and the image on disk), and ``ui.check()``.
Images are real LUKS qcow2 files with a cheap key derivation (``storage.luks.iter.time.ms``).
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field

import pytest

from cloudstack_kms.storage import qemu
from tests.support.client import Client
from tests.support.tenants import unique
from tests.support.volumes import VolumeStore, admin_view, set_config

DEFAULT_PROFILE = "HSM Database Provider"

pytestmark = pytest.mark.skipif(qemu.available() is not None, reason=qemu.available() or "")


@dataclass
class Walk:
    token: str = field(default_factory=lambda: secrets.token_hex(3))
    zone: dict | None = None
    offering: dict | None = None
    key: dict | None = None
    volume: dict | None = None
    legacy: dict | None = None

    @property
    def volume_name(self) -> str:
        return f"ui-vol-{self.token}"

    @property
    def legacy_name(self) -> str:
        return f"ui-legacy-{self.token}"

    def need(self, what: str) -> dict:
        value = getattr(self, what)
        if value is None:
            pytest.fail(f"the earlier step that makes the {what} did not succeed")
        return value


@pytest.fixture(scope="module")
def root(server, admin_keys) -> Client:
    return Client(server.url, admin_keys["apikey"], admin_keys["secretkey"])


@pytest.fixture(scope="module", autouse=True)
def fast_luks(root):
    old = {name: set_config(root, name, value) for name, value in
           {"storage.luks.iter.time.ms": "10", "storage.volume.images": "true"}.items()}
    yield
    for name, value in old.items():
        set_config(root, name, value)


@pytest.fixture(scope="module")
def walk(root) -> Walk:
    walk = Walk()
    walk.zone = root.ok("listZones", name="zone1")["zone"][0]
    walk.offering = root.ok("createDiskOffering", name=unique("uienc"), displaytext=f"Encrypted {walk.token}",
                            disksize=1, encrypt="true")["diskoffering"]
    profile = root.ok("listHSMProfiles", name=DEFAULT_PROFILE)["hsmprofile"][0]["id"]
    walk.key = root.ok("createKMSKey", name=f"ui-vkey-{walk.token}", zoneid=walk.zone["id"],
                       hsmprofileid=profile)["kmskey"]
    return walk


@pytest.fixture(scope="module")
def store(kms_env):
    store = VolumeStore(kms_env)
    yield store
    store.close()


# ------------------------------------------------------------------ page helpers
def modal(ui):
    return ui.page.locator(".ant-modal:visible")


def volumes_page(ui) -> None:
    entry = ui.page.locator(".ant-menu-item", has_text="Volumes").first
    if not entry.is_visible():
        ui.page.locator(".ant-menu-submenu-title", has_text="Storage").first.click()
    since = len(ui.calls)
    entry.click()
    ui.answer("listVolumes", since)
    ui.settle()


def act(ui, icon: str) -> None:
    ui.page.locator(f"button:has(.anticon-{icon})").first.click()
    ui.page.wait_for_timeout(300)
    ui.settle()


def submit(ui, command: str):
    since = len(ui.calls)
    modal(ui).get_by_role("button", name="OK").click()
    answer = ui.answer(command, since)
    assert answer.status == 200, answer.text
    return answer


def finish_job(ui, submitted) -> dict:
    jobid = next(iter(submitted.json().values()))["jobid"]
    for _ in range(600):
        for call in ui.calls:
            if call.command == "queryAsyncJobResult" and call.params.get("jobId", call.params.get("jobid")) == jobid:
                job = call.json()["queryasyncjobresultresponse"]
                if job["jobstatus"] != 0:
                    ui.settle()
                    return job
        ui.page.wait_for_timeout(200)
    raise AssertionError(f"job {jobid} never ended in the UI")


def content(ui) -> str:
    return ui.page.locator(".ant-layout-content").first.inner_text()


def create_in_form(ui, walk: Walk, name: str, key: dict | None):
    """Fill and send Create Volume; returns the finished job."""
    since = len(ui.calls)
    ui.page.get_by_role("button", name="Create Volume").click()
    ui.answer("listDiskOfferings", since)
    ui.settle()
    ui.fill_field("name", name)
    ui.choose("zoneid", walk.zone["name"])
    ui.choose("diskofferingid", walk.offering["displaytext"])
    ui.settle()
    modal(ui).get_by_text("Select KMS Key (optional)").wait_for()  # shown for an encrypting offering
    if key is not None:
        ui.choose("kmskeyid", key["name"])
        modal(ui).locator(".ant-modal-title").click()  # close the drop-down
    return since


# ------------------------------------------------------------------ the steps
def test_volumes_are_listed_with_their_metrics(ui, kms_env, root, walk):
    volume = root.run_async("createVolume", name=unique("ui-listed"), zoneid=walk.zone["id"],
                            diskofferingid=walk.offering["id"], kmskeyid=walk.need("key")["id"])["volume"]
    ui.login("admin", kms_env.admin_password)
    volumes_page(ui)
    table = ui.page.locator(".ant-table")
    table.get_by_text(volume["name"], exact=True).wait_for()
    ui.shot("volumes")
    since = len(ui.calls)
    ui.page.get_by_role("switch").filter(has_text="Metrics").first.click()
    metrics = ui.answer("listVolumesMetrics", since)
    ui.settle()
    listed = {v["id"]: v for v in metrics.json()["listvolumesmetricsresponse"]["volume"]}
    assert listed[volume["id"]]["sizegb"] == "1.00 GiB" and listed[volume["id"]]["kmskeyid"] == walk.key["id"]
    assert metrics.json()["listvolumesmetricsresponse"]["count"] == root.ok("listVolumes", listall="true")["count"]
    table.get_by_text(volume["name"], exact=True).wait_for()
    ui.page.get_by_role("switch").filter(has_text="Metrics").first.click()  # back to the plain view
    ui.settle()
    root.run_async("destroyVolume", id=volume["id"], expunge="true")
    ui.check()


def test_admin_creates_a_volume_with_a_kms_key(ui, kms_env, root, store, walk):
    key = walk.need("key")
    ui.login("admin", kms_env.admin_password)
    volumes_page(ui)
    since = create_in_form(ui, walk, walk.volume_name, key)
    offered = ui.answer("listKMSKeys", since)
    assert offered.params["zoneid"] == walk.zone["id"]
    assert key["id"] in [k["id"] for k in offered.json()["listkmskeysresponse"]["kmskey"]]
    ui.shot("volume-create")
    submitted = submit(ui, "createVolume")
    assert submitted.params["kmskeyid"] == key["id"] and submitted.params["diskofferingid"] == walk.offering["id"]
    job = finish_job(ui, submitted)
    assert job["jobstatus"] == 1, job
    ui.page.locator(".ant-table").get_by_text(walk.volume_name, exact=True).wait_for()

    volume = root.ok("listVolumes", name=walk.volume_name, listall="true")["volume"][0]
    expected = {"state": "Ready", "encryptformat": "LUKS", "kmskeyid": key["id"], "kmskey": key["name"],
                "kmskeyversion": 1, "zoneid": walk.zone["id"], "diskofferingid": walk.offering["id"]}
    assert {k: volume[k] for k in expected} == expected
    image = store.image(admin_view(root, volume["id"]))
    assert qemu.is_luks(str(image))
    assert "read 65536/65536" in qemu.io(str(image), store.secret(volume["id"]), "read 0 64k")
    ui.check()
    walk.volume = volume


def test_volume_details_show_its_key(ui, kms_env, walk):
    volume, key = walk.need("volume"), walk.need("key")
    ui.login("admin", kms_env.admin_password)
    volumes_page(ui)
    since = len(ui.calls)
    ui.page.locator(".ant-table").get_by_text(walk.volume_name, exact=True).first.click()
    shown = ui.answer("listVolumesMetrics", since)
    ui.page.get_by_text("KMS Key", exact=True).first.wait_for()
    ui.settle()
    detail = shown.json()["listvolumesmetricsresponse"]["volume"][0]
    assert detail["id"] == volume["id"] and detail["kmskeyid"] == key["id"] and detail["kmskeyversion"] == 1
    page = content(ui)
    for text in (key["name"], "Shared (DATADISK)", "1.00 GiB", walk.offering["displaytext"]):
        assert text in page, text
    ui.shot("volume-details")
    ui.check()


def test_admin_migrates_a_legacy_volume_to_kms(ui, kms_env, root, store, walk):
    key = walk.need("key")
    ui.login("admin", kms_env.admin_password)
    volumes_page(ui)
    create_in_form(ui, walk, walk.legacy_name, None)  # no key: a legacy passphrase volume
    submitted = submit(ui, "createVolume")
    assert "kmskeyid" not in submitted.params
    assert finish_job(ui, submitted)["jobstatus"] == 1
    legacy = root.ok("listVolumes", name=walk.legacy_name, listall="true")["volume"][0]
    assert legacy["encryptformat"] == "LUKS" and "kmskeyid" not in legacy
    secret = store.secret(legacy["id"])
    assert len(secret) == 64  # upstream's legacy passphrase: 48 random bytes as Base64 text

    since = len(ui.calls)
    ui.page.locator(".ant-table").get_by_text(walk.legacy_name, exact=True).first.click()
    ui.answer("listVolumesMetrics", since)
    ui.settle()
    since = len(ui.calls)
    act(ui, "lock")  # "Migrate volume to KMS", offered for an encrypted volume without a key
    ui.answer("listKMSKeys", since)
    ui.choose("kmskeyid", key["name"])
    ui.shot("volume-migrate")
    submitted = submit(ui, "migrateVolumesToKMS")
    assert submitted.params["volumeids"] == legacy["id"] and submitted.params["kmskeyid"] == key["id"]
    job = finish_job(ui, submitted)
    assert job["jobstatus"] == 1 and job["jobresult"]["volumemigration"]["migrated"] == 1, job
    ui.page.get_by_text(key["name"], exact=True).first.wait_for()

    migrated = root.ok("listVolumes", id=legacy["id"], listall="true")["volume"][0]
    assert migrated["kmskeyid"] == key["id"] and migrated["kmskeyversion"] == 1
    assert store.volume_row(legacy["id"])["passphrase_id"] is None
    assert store.secret(legacy["id"]) == secret  # the same LUKS secret, now wrapped by the key
    image = store.image(admin_view(root, legacy["id"]))
    assert "read 65536/65536" in qemu.io(str(image), secret, "read 0 64k")
    assert ui.page.locator("button:has(.anticon-lock)").count() == 0  # nothing left to migrate
    ui.check()
    walk.legacy = migrated


def test_admin_destroys_recovers_and_expunges_a_volume(ui, kms_env, root, store, walk):
    volume = walk.need("volume")
    image = store.image(admin_view(root, volume["id"]))
    ui.login("admin", kms_env.admin_password)
    volumes_page(ui)
    table = ui.page.locator(".ant-table")
    table.get_by_text(walk.volume_name, exact=True).first.click()
    ui.settle()
    act(ui, "delete")  # destroyVolume: a Ready volume is destroyed, not deleted
    job = finish_job(ui, submit(ui, "destroyVolume"))
    assert job["jobstatus"] == 1 and job["jobresult"]["volume"]["state"] == "Destroy", job
    assert root.ok("listVolumes", id=volume["id"], listall="true")["volume"][0]["state"] == "Destroy"
    assert image.is_file()

    ui.open(f"/volume/{volume['id']}")
    ui.page.get_by_text("Destroy", exact=True).first.wait_for()
    act(ui, "medicine-box")  # recoverVolume
    recovered = submit(ui, "recoverVolume").json()["recovervolumeresponse"]["volume"]
    ui.settle()
    assert recovered["state"] == "Ready" and recovered["kmskeyid"] == walk.key["id"]
    assert root.ok("listVolumes", id=volume["id"], listall="true")["volume"][0]["state"] == "Ready"

    act(ui, "delete")
    modal(ui).get_by_text("Expunge").wait_for()
    modal(ui).locator("#form_item_expunge").click()
    submitted = submit(ui, "destroyVolume")
    assert submitted.params["expunge"] == "true"
    job = finish_job(ui, submitted)
    assert job["jobstatus"] == 1 and job["jobresult"]["volume"]["state"] == "Expunged", job
    assert root.ok("listVolumes", id=volume["id"], listall="true") == {}
    assert store.volume_row(volume["id"])["removed"] is not None and not image.exists()
    for leftover in (walk.legacy,):
        if leftover is not None:
            root.run_async("destroyVolume", id=leftover["id"], expunge="true")
    ui.check()
