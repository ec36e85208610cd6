"""The admin guide's Key Management walk-through in the real UI (Key Management → HSM Profile and
→ KMS Keys): the root admin adds a PKCS#11 HSM profile on a SoftHSM2 token, looks at it (the PIN
masked), renames, disables and enables it; creates a KMS key in it, filters the key list by zone and
by HSM profile, looks at the key (version, KEK label, key bits, events, its volumes), updates,
rotates it, migrates a legacy volume to it and deletes it; then deletes the profile. Last, a plain
user finds KMS Keys in its menu (a public profile exists) and creates a key there.

One test per step, in order; each works on what the earlier steps made through the UI (kept in the
module's :class:`Walk`), and checks what the page shows, what the server now holds (through the
signed admin client), and that the UI met no API error and no page error (``ui.check()``).
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest

from cloudstack_kms.services.kms import deletion
from tests.support.client import Client
from tests.support.dbtools import execute
from tests.support.kmsrig import wait_until
from tests.support.tenants import PASSWORD, new_account, unique
from tests.support.volumes import set_config

DEFAULT_PROFILE = "HSM Database Provider"


@dataclass
class Walk:
    token: str = field(default_factory=lambda: secrets.token_hex(3))
    pin: str = field(default_factory=lambda: f"pin-{secrets.token_hex(6)}")
    zone: dict | None = None
    profile: dict | None = None
    key: dict | None = None
    legacy: dict | None = None

    @property
    def label(self) -> str:
        return f"uitok-{self.token}"

    @property
    def profile_name(self) -> str:
        return f"ui-hsm-{self.token}"

    @property
    def key_name(self) -> str:
        return f"ui-key-{self.token}"

    def need(self, what: str) -> dict:
        value = getattr(self, what)
        if value is None:
            pytest.fail(f"the earlier step that makes the {what} did not succeed")
        return value


@pytest.fixture(scope="module")
def root(server, admin_keys) -> Client:
    return Client(server.url, admin_keys["apikey"], admin_keys["secretkey"])


@pytest.fixture(scope="module")
def walk(root) -> Walk:
    walk = Walk()
    walk.zone = root.ok("listZones", name="zone1")["zone"][0]
    return walk


@pytest.fixture(scope="module", autouse=True)
def fast_luks(root):
    """Real LUKS images, with a cheap key derivation; the old value comes back afterwards."""
    old = set_config(root, "storage.luks.iter.time.ms", "10")
    yield
    set_config(root, "storage.luks.iter.time.ms", old)


# ------------------------------------------------------------------ page helpers
def modal(ui):
    return ui.page.locator(".ant-modal:visible")


def menu(ui, group: str, item: str) -> None:
    """Open ``group`` → ``item`` in the side menu, as a person would."""
    entry = ui.page.locator(".ant-menu-item", has_text=item).first
    if not entry.is_visible():
        ui.page.locator(".ant-menu-submenu-title", has_text=group).first.click()
    entry.click()
    ui.settle()


def act(ui, icon: str) -> None:
    """Click the action button with ``icon`` on a resource's page."""
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
    """The job the UI polls for ``submitted`` (an async command's answer), once it has ended."""
    jobid = next(iter(submitted.json().values()))["jobid"]
    since = 0
    for _ in range(600):
        for call in ui.calls[since:]:
            if call.command == "queryAsyncJobResult" and call.params.get("jobId", call.params.get("jobid")) == jobid:
                job = call.json()["queryasyncjobresultresponse"]
                if job["jobstatus"] != 0:
                    ui.settle()
                    return job
        since = len(ui.calls)
        ui.page.wait_for_timeout(200)
    raise AssertionError(f"job {jobid} never ended in the UI")


def open_row(ui, name: str) -> None:
    ui.page.locator(".ant-table").get_by_text(name, exact=True).first.click()
    ui.page.wait_for_timeout(300)
    ui.settle()


def content(ui) -> str:
    return ui.page.locator(".ant-layout-content").first.inner_text()


# ------------------------------------------------------------------ HSM profiles
def test_hsm_profiles_are_listed(ui, kms_env, admin):
    ui.login("admin", kms_env.admin_password)
    since = len(ui.calls)
    menu(ui, "Key Management", "HSM Profile")
    listed = ui.answer("listHSMProfiles", since).json()["listhsmprofilesresponse"]
    ui.page.locator(".ant-table").get_by_text(DEFAULT_PROFILE, exact=True).wait_for()
    ui.shot("hsm-profiles")
    server = admin.ok("listHSMProfiles", listall="true")
    assert listed["count"] == server["count"] and DEFAULT_PROFILE in [p["name"] for p in listed["hsmprofile"]]
    ui.check()


def test_admin_adds_a_pkcs11_hsm_profile(ui, kms_env, admin, softhsm, walk):
    softhsm.init_token(walk.label, pin=walk.pin)
    ui.login("admin", kms_env.admin_password)
    menu(ui, "Key Management", "HSM Profile")
    ui.page.get_by_role("button", name="Add HSM Profile").click()
    ui.settle()
    ui.fill_field("name", walk.profile_name)
    ui.choose("zoneid", walk.zone["name"])
    ui.fill_field("vendorname", "SoftHSM")
    for key, value in softhsm.details(walk.label, pin=walk.pin).items():
        entry = modal(ui).locator(".ant-select-selection-search-input:not([id^=form_item])").first
        entry.click()
        entry.fill(key)
        modal(ui).get_by_placeholder("Value").fill(value)
        modal(ui).get_by_role("button", name="Add", exact=True).click()
    ui.page.locator("#form_item_ispublic").click()  # the admin guide's "System"
    for key in ("library", "token_label", "pin"):
        modal(ui).locator(".ant-table").get_by_text(key, exact=True).wait_for()
    ui.shot("hsm-profile-add")
    created = submit(ui, "createHSMProfile")
    assert created.params["details[0].token_label"] == walk.label and created.params["ispublic"] == "true"
    ui.settle()
    ui.page.locator(".ant-table").get_by_text(walk.profile_name, exact=True).wait_for()

    profile = admin.ok("listHSMProfiles", name=walk.profile_name)["hsmprofile"][0]
    expected = {"protocol": "pkcs11", "vendor": "SoftHSM", "zoneid": walk.zone["id"], "ispublic": True,
                "enabled": True, "account": "admin"}
    assert {k: profile[k] for k in expected} == expected
    assert profile["details"]["token_label"] == walk.label and profile["details"]["pin"] != walk.pin
    ui.check()
    walk.profile = profile


def test_hsm_profile_details_mask_the_pin(ui, kms_env, walk):
    profile = walk.need("profile")
    ui.login("admin", kms_env.admin_password)
    menu(ui, "Key Management", "HSM Profile")
    open_row(ui, walk.profile_name)
    ui.page.get_by_text("Configuration Details").wait_for()
    page = content(ui)
    assert walk.label in page and "libsofthsm2.so" in page and "pkcs11" in page
    assert "*****" in page and walk.pin not in page
    assert not [c.command for c in ui.calls if walk.pin in c.text], "an API answer carried the PIN"
    assert ui.page.get_by_role("link", name="View KMS Keys").get_attribute("href").endswith(
        f"/kmskey?hsmprofileid={profile['id']}")
    ui.shot("hsm-profile-details")

    since = len(ui.calls)
    ui.page.get_by_role("tab", name="Events").click()
    events = ui.answer("listEvents", since)
    assert events.params["resourceid"] == profile["id"] and events.params["resourcetype"] == "HsmProfile"
    assert "HSM.PROFILE.CREATE" in [e["type"] for e in events.json()["listeventsresponse"]["event"]]
    ui.settle()
    ui.check()


def test_admin_renames_disables_and_enables_the_profile(ui, kms_env, admin, walk):
    profile = walk.need("profile")
    ui.login("admin", kms_env.admin_password)
    ui.open(f"/hsmprofile/{profile['id']}")
    act(ui, "edit")
    renamed = walk.profile_name + "-b"
    ui.fill_field("name", renamed)
    ui.page.locator("#form_item_enabled").click()
    updated = submit(ui, "updateHSMProfile")
    assert (updated.params["id"], updated.params["name"], updated.params["enabled"]) == (profile["id"], renamed,
                                                                                          "false")
    ui.settle()
    server = admin.ok("listHSMProfiles", id=profile["id"])["hsmprofile"][0]
    assert server["name"] == renamed and server["enabled"] is False
    assert "false" in content(ui)

    act(ui, "edit")
    ui.fill_field("name", walk.profile_name)
    ui.page.locator("#form_item_enabled").click()
    assert submit(ui, "updateHSMProfile").params["enabled"] == "true"
    ui.settle()
    server = admin.ok("listHSMProfiles", id=profile["id"])["hsmprofile"][0]
    assert server["name"] == walk.profile_name and server["enabled"] is True
    ui.check()


# ------------------------------------------------------------------ KMS keys
def test_admin_creates_a_kms_key_in_the_profile(ui, kms_env, admin, walk):
    profile = walk.need("profile")
    ui.login("admin", kms_env.admin_password)
    since = len(ui.calls)
    menu(ui, "Key Management", "KMS Keys")
    ui.answer("listKMSKeys", since)
    ui.shot("kms-keys")
    since = len(ui.calls)
    ui.page.get_by_role("button", name="Create KMS Key").click()
    offered = ui.answer("listHSMProfiles", since)
    assert offered.params["enabled"] == "true"
    assert walk.profile_name in [p["name"] for p in offered.json()["listhsmprofilesresponse"]["hsmprofile"]]
    ui.settle()
    ui.choose("zoneid", walk.zone["name"])
    ui.fill_field("name", walk.key_name)
    ui.fill_field("description", "made in the UI")
    ui.choose("hsmprofileid", walk.profile_name)
    ui.fill_field("keybits", "128")
    ui.shot("kms-key-create")
    created = submit(ui, "createKMSKey").json()["createkmskeyresponse"]["kmskey"]
    ui.settle()
    ui.page.locator(".ant-table").get_by_text(walk.key_name, exact=True).wait_for()

    key = admin.ok("listKMSKeys", id=created["id"])["kmskey"][0]
    expected = {"name": walk.key_name, "description": "made in the UI", "zoneid": walk.zone["id"],
                "hsmprofileid": profile["id"], "hsmprofile": walk.profile_name, "keybits": 128, "version": 1,
                "enabled": True, "account": "admin"}
    assert {k: key[k] for k in expected} == expected
    assert key["keklabel"].endswith("-v1")
    ui.check()
    walk.key = key


def test_kms_keys_filter_by_zone_and_hsm_profile(ui, kms_env, admin, walk):
    key = walk.need("key")
    zone2 = admin.ok("createZone", name=unique("uizone"), dns1="8.8.8.8", internaldns1="8.8.4.4",
                     networktype="Advanced")["zone"]
    default = admin.ok("listHSMProfiles", name=DEFAULT_PROFILE)["hsmprofile"][0]
    other = admin.ok("createKMSKey", name=unique("ui-key-z2"), zoneid=zone2["id"],
                     hsmprofileid=default["id"])["kmskey"]
    ui.login("admin", kms_env.admin_password)
    menu(ui, "Key Management", "KMS Keys")
    table = ui.page.locator(".ant-table")

    def search(field_id: str, text: str) -> list[str]:
        ui.page.locator("button:has(.anticon-filter)").first.click()
        ui.settle()
        ui.choose(field_id, text)
        since = len(ui.calls)
        ui.page.locator(".ant-popover:visible").get_by_role("button", name="Search").click()
        listed = ui.answer("listKMSKeys", since)
        ui.settle()
        return [listed.params.get(field_id)] + [k["name"] for k in
                                               listed.json()["listkmskeysresponse"].get("kmskey", [])]

    by_zone = search("zoneid", zone2["name"])
    assert by_zone == [zone2["id"], other["name"]]
    table.get_by_text(other["name"], exact=True).wait_for()
    assert table.get_by_text(walk.key_name, exact=True).count() == 0

    ui.open("/kmskey")
    by_profile = search("hsmprofileid", walk.profile_name)
    assert by_profile == [walk.profile["id"], key["name"]]
    table.get_by_text(walk.key_name, exact=True).wait_for()
    assert table.get_by_text(other["name"], exact=True).count() == 0
    assert [k["name"] for k in admin.ok("listKMSKeys", listall="true", hsmprofileid=walk.profile["id"])["kmskey"]] \
        == [walk.key_name]
    admin.run_async("deleteKMSKey", id=other["id"])
    ui.check()


def test_kms_key_details(ui, kms_env, admin, walk):
    key = walk.need("key")
    offering = admin.ok("createDiskOffering", name=unique("uienc"), disksize=1, encrypt="true")["diskoffering"]
    volume = admin.run_async("createVolume", name=unique("uivol"), zoneid=walk.zone["id"],
                             diskofferingid=offering["id"], kmskeyid=key["id"])["volume"]
    ui.login("admin", kms_env.admin_password)
    menu(ui, "Key Management", "KMS Keys")
    open_row(ui, walk.key_name)
    ui.page.get_by_text("KEK Label").wait_for()
    page = content(ui)
    for shown in ("Version", "Key Bits", "128", key["keklabel"], walk.profile_name, "made in the UI"):
        assert shown in page, shown
    ui.shot("kms-key-details")

    since = len(ui.calls)
    ui.page.get_by_role("tab", name="Events").click()
    events = ui.answer("listEvents", since)
    assert events.params["resourcetype"] == "KmsKey" and events.params["resourceid"] == key["id"]
    assert "KMS.KEY.CREATE" in [e["type"] for e in events.json()["listeventsresponse"]["event"]]
    ui.settle()

    since = len(ui.calls)
    ui.page.get_by_text("View Volumes").first.click()
    related = ui.answer("listVolumes", since)
    assert related.params["kmskeyid"] == key["id"]
    assert [v["id"] for v in related.json()["listvolumesresponse"]["volume"]] == [volume["id"]]
    ui.page.locator(".ant-table").get_by_text(volume["name"], exact=True).wait_for()
    ui.settle()
    admin.ok("deleteVolume", id=volume["id"])
    ui.check()


def test_admin_updates_the_key(ui, kms_env, admin, walk):
    key = walk.need("key")
    ui.login("admin", kms_env.admin_password)
    ui.open(f"/kmskey/{key['id']}")
    act(ui, "edit")
    ui.fill_field("description", "updated in the UI")
    ui.page.locator("#form_item_enabled").click()
    updated = submit(ui, "updateKMSKey")
    assert updated.params["enabled"] == "false" and updated.params["description"] == "updated in the UI"
    ui.settle()
    server = admin.ok("listKMSKeys", id=key["id"])["kmskey"][0]
    assert server["enabled"] is False and server["description"] == "updated in the UI"

    act(ui, "edit")
    ui.page.locator("#form_item_enabled").click()
    assert submit(ui, "updateKMSKey").params["enabled"] == "true"
    ui.settle()
    assert admin.ok("listKMSKeys", id=key["id"])["kmskey"][0]["enabled"] is True
    ui.check()


def test_admin_rotates_the_key(ui, kms_env, admin, walk):
    key = walk.need("key")
    ui.login("admin", kms_env.admin_password)
    ui.open(f"/kmskey/{key['id']}")
    act(ui, "sync")
    ui.fill_field("keybits", "256")
    ui.shot("kms-key-rotate")
    job = finish_job(ui, submit(ui, "rotateKMSKey"))
    assert job["jobstatus"] == 1, job
    ui.page.get_by_text(key["keklabel"][:-1] + "2").wait_for()
    server = admin.ok("listKMSKeys", id=key["id"])["kmskey"][0]
    assert server["version"] == 2 and server["keklabel"].endswith("-v2")
    assert server["hsmprofileid"] == walk.profile["id"]
    versions = {v["version"]: v["status"] for v in server["versions"]}
    assert versions[2] == "Active" and versions[1] in ("Previous", "Archived")
    ui.check()
    walk.key = server


def test_admin_migrates_a_legacy_volume_to_the_key(ui, kms_env, admin, walk):
    key = walk.need("key")
    offering = admin.ok("createDiskOffering", name=unique("uienc"), disksize=1, encrypt="true")["diskoffering"]
    legacy = admin.run_async("createVolume", name=unique("uilegacy"), zoneid=walk.zone["id"],
                             diskofferingid=offering["id"])["volume"]
    assert legacy["encryptformat"] == "LUKS" and "kmskeyid" not in legacy
    ui.login("admin", kms_env.admin_password)
    ui.open(f"/kmskey/{key['id']}")
    since = len(ui.calls)
    act(ui, "swap")
    offered = ui.answer("listVolumes", since)
    assert offered.params["account"] == "admin" and offered.params["zoneid"] == walk.zone["id"]
    ui.choose("volumeids", legacy["name"])
    modal(ui).locator(".ant-modal-title").click()  # close the drop-down
    ui.shot("kms-key-migrate")
    submitted = submit(ui, "migrateVolumesToKMS")
    assert submitted.params["kmskeyid"] == key["id"] and submitted.params["volumeids"] == legacy["id"]
    job = finish_job(ui, submitted)
    assert job["jobstatus"] == 1 and job["jobresult"]["volumemigration"]["migrated"] == 1, job

    migrated = admin.ok("listVolumes", id=legacy["id"], listall="true")["volume"][0]
    assert migrated["kmskeyid"] == key["id"] and migrated["kmskeyversion"] == 2
    check = admin.run_async("checkVolume", id=legacy["id"])["volume"]["volumecheckresult"]
    assert check["encryption"] == "luks" and check["unlocked"] == "true"  # the same LUKS secret, now wrapped
    ui.check()
    walk.legacy = migrated


def test_admin_deletes_the_key(ui, kms_env, admin, walk):
    key, legacy = walk.need("key"), walk.need("legacy")
    admin.ok("deleteVolume", id=legacy["id"])  # refused while a volume uses the key
    ui.login("admin", kms_env.admin_password)
    ui.open(f"/kmskey/{key['id']}")
    act(ui, "delete")
    job = finish_job(ui, submit(ui, "deleteKMSKey"))
    assert job["jobstatus"] == 1, job
    # Not upstream: the key waits kms.key.deletion.pending.days (7) before its KEKs are destroyed;
    # meanwhile it is PendingDeletion, which the page (it shows ``enabled``) shows as disabled.
    [pending] = admin.ok("listKMSKeys", listall="true", keyword=walk.key_name)["kmskey"]
    assert (pending["state"], pending["enabled"]) == ("PendingDeletion", False), pending
    ui.open(f"/kmskey/{key['id']}")  # what an operator sees of it meanwhile
    ui.shot("kms-key-pending-deletion")
    # Its date passed (moved in the database), the server's background purge deletes it.
    past = (datetime.now(timezone.utc) - timedelta(minutes=1)).replace(tzinfo=None, microsecond=0)
    assert execute(kms_env, "UPDATE kms_keys SET deletion_date = :d WHERE uuid = :u", d=past, u=key["id"]) == 1
    wait_until(lambda: admin.ok("listKMSKeys", listall="true", keyword=walk.key_name) == {},
               timeout=deletion.PurgeTask.CHECK_SEC * 6, what="the purge of the key")
    ui.check()


def test_admin_deletes_the_profile(ui, kms_env, admin, walk):
    profile = walk.need("profile")
    walk.need("key")
    ui.login("admin", kms_env.admin_password)
    ui.open(f"/hsmprofile/{profile['id']}")
    act(ui, "delete")
    submit(ui, "deleteHSMProfile")
    ui.settle()
    assert admin.ok("listHSMProfiles", listall="true", keyword=walk.profile_name) == {}
    ui.check()


def test_a_user_finds_kms_keys_when_a_public_profile_exists(ui, admin, walk):
    account, _ = new_account(admin)
    default = admin.ok("listHSMProfiles", name=DEFAULT_PROFILE)["hsmprofile"][0]
    assert default["ispublic"] and default["enabled"]
    ui.login(account["user"][0]["username"], PASSWORD)
    probe = ui.last("listHSMProfiles")  # the UI's start-up check that opens Key Management to users
    assert probe.params["listall"] == "true" and probe.json()["listhsmprofilesresponse"]["count"] >= 1
    since = len(ui.calls)  # before the submenu: with one entry in it, opening it may open the page
    kms_keys = ui.page.locator(".ant-menu-item", has_text="KMS Keys").first
    if not kms_keys.is_visible():
        ui.page.locator(".ant-menu-submenu-title", has_text="Key Management").first.click()
    kms_keys.wait_for(state="visible")
    assert ui.page.locator(".ant-menu-item", has_text="HSM Profile").count() == 0
    if not ui.page.url.endswith("/kmskey"):
        kms_keys.click()
    ui.answer("listKMSKeys", since)
    ui.settle()
    ui.page.get_by_role("button", name="Create KMS Key").click()
    ui.settle()
    assert modal(ui).locator("#form_item_account").count() == 0  # a user's form has no owner fields
    name = unique("ui-user-key")
    ui.choose("zoneid", walk.zone["name"])
    ui.fill_field("name", name)
    ui.choose("hsmprofileid", DEFAULT_PROFILE)
    created = submit(ui, "createKMSKey").json()["createkmskeyresponse"]["kmskey"]
    ui.settle()
    ui.page.locator(".ant-table").get_by_text(name, exact=True).wait_for()
    assert created["account"] == account["name"] and "keklabel" not in created
    server = admin.ok("listKMSKeys", id=created["id"])["kmskey"][0]
    assert server["account"] == account["name"] and server["keybits"] == 256 and server["version"] == 1
    ui.check()
