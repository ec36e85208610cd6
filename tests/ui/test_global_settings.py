"""Configuration → Global Settings in the real web UI: the ``kms.*`` settings are found with the
search box and under their group (Storage → KMS), one is changed with the page's own edit
control, the server stores it, and it takes effect at once: a volume created right after (by
another server process) gets a DEK of the new size, without any restart."""
from __future__ import annotations

import base64
import re

from tests.support.tenants import unique
from tests.support.volumes import VolumeStore, set_config

KMS_SETTINGS = ["kms.dek.size.bits", "kms.key.deletion.pending.days", "kms.operation.timeout.sec", "kms.retry.count",
                "kms.retry.delay.ms", "kms.rewrap.batch.size", "kms.rewrap.interval.ms"]
SETTING = "kms.dek.size.bits"
#: A row of the settings table on screen (the page keeps the tables of other tabs, hidden).
ROW = ".ant-table-row:visible"


def shown_settings(ui) -> set[str]:
    """The setting names in the table: each row shows ``<display text> (<name>)``."""
    names = ui.page.locator(ROW).all_inner_texts()
    return {text.split("(", 1)[1].split(")", 1)[0] for text in names if "(" in text}


CUSTOM_NAME = "hypervisor.custom.display.name"


def answer(ui, command: str, since: int, timeout_ms: int = 30000, where=lambda call: True):
    """The first answer to ``command`` (that ``where`` accepts) among the calls recorded after the
    first ``since``."""
    for _ in range(timeout_ms // 100):
        for call in ui.calls[since:]:
            if call.command == command and where(call):
                return call
        ui.page.wait_for_timeout(100)
    raise AssertionError(f"the UI did not call {command}")


def value_of(admin, name: str) -> str:
    return admin.ok("listConfigurations", name=name)["configuration"][0]["value"]


def test_find_the_kms_settings_and_edit_one(ui, kms_env, admin):
    old = value_of(admin, SETTING)
    new = "128" if old != "128" else "192"
    ui.login("admin", kms_env.admin_password)
    ui.open("/globalsetting")
    ui.page.wait_for_selector(ROW)

    # the search box
    search = ui.page.get_by_placeholder("Search")
    search.fill("kms")
    seen = len(ui.calls)
    search.press("Enter")
    call = answer(ui, "listConfigurations", seen)
    ui.settle()
    assert call.status == 200 and call.params.get("keyword") == "kms"
    listed = {c["name"] for c in call.json()["listconfigurationsresponse"]["configuration"]}
    assert set(KMS_SETTINGS) <= listed
    ui.page.locator(ROW, has_text=f"({KMS_SETTINGS[-1]})").wait_for()
    assert set(KMS_SETTINGS) <= shown_settings(ui) == listed
    ui.shot("global-settings")

    # the group they are filed under: Storage, subgroup KMS
    search.fill("")
    seen = len(ui.calls)
    ui.page.get_by_role("tab", name="Storage", exact=True).click()
    call = answer(ui, "listConfigurations", seen)
    ui.settle()
    assert (call.params.get("group"), call.params.get("subgroup")) == ("Storage", "KMS")
    ui.page.locator(ROW, has_text=f"({SETTING})").wait_for()
    assert shown_settings(ui) == set(KMS_SETTINGS)

    # edit through the page: kms.dek.size.bits is a drop-down of its allowed values
    row = ui.page.locator(ROW, has_text=f"({SETTING})")
    try:
        row.locator(".ant-select").click()
        ui.page.locator(".ant-select-dropdown:visible .ant-select-item-option",
                        has_text=re.compile(f"^{new}$")).click()
        seen = len(ui.calls)
        row.locator(".anticon-check-circle").click()
        update = answer(ui, "updateConfiguration", seen)
        # the page's confirmation, looked for at once: the notification goes away after a few seconds
        ui.page.get_by_text(f"Setting Updated: {SETTING}").wait_for(timeout=10000)
        # Saving makes the UI refresh its features, reading hypervisor.custom.display.name: with no
        # such setting that failed in the browser ("reading '0'"), which ui.check() below reports.
        refresh = answer(ui, "listConfigurations", seen, where=lambda c: c.params.get("name") == CUSTOM_NAME)
        ui.settle()
        assert [c["value"] for c in refresh.json()["listconfigurationsresponse"]["configuration"]] == ["Custom"]
        assert update.status == 200 and update.params["name"] == SETTING and update.params["value"] == new
        assert update.json()["updateconfigurationresponse"]["configuration"]["value"] == new
        # a dynamic setting is not announced as needing a restart
        assert ui.page.get_by_text("Please restart your management server").count() == 0
        assert row.locator(".ant-select-selection-item").inner_text() == new
        ui.shot("global-settings-edit")

        # the server has it, for every process
        assert value_of(admin, SETTING) == new
        ui.check()
        assert_live(admin, kms_env, int(new))
    finally:
        set_config(admin, SETTING, old)
    assert value_of(admin, SETTING) == old


def assert_live(admin, kms_env, bits: int) -> None:
    """A KMS volume created now, through the other server process, gets a DEK of ``bits`` bits
    (metadata only: no image, so no qemu needed)."""
    zone = admin.ok("listZones", name="zone1")["zone"][0]["id"]
    profile = admin.ok("listHSMProfiles", name="HSM Database Provider")["hsmprofile"][0]["id"]
    offering = admin.ok("createDiskOffering", name=unique("ui"), disksize=1, encrypt="true")["diskoffering"]
    key = admin.ok("createKMSKey", name=unique("ui"), zoneid=zone, hsmprofileid=profile)["kmskey"]
    images = set_config(admin, "storage.volume.images", "false")
    store = VolumeStore(kms_env)
    try:
        volume = admin.run_async("createVolume", name=unique("ui"), zoneid=zone, diskofferingid=offering["id"],
                                 kmskeyid=key["id"])["volume"]
        secret = store.secret(volume["id"])
        assert secret is not None and len(base64.b64decode(secret, validate=True)) * 8 == bits
        admin.ok("deleteVolume", id=volume["id"])
        admin.run_async("deleteKMSKey", id=key["id"])
    finally:
        store.close()
        set_config(admin, "storage.volume.images", images)
