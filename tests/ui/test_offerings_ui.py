"""The admin guide's disk-offering step in the real UI (Service Offerings → Disk Offerings): the
Offerings menu (it needs ``listServiceOfferings`` as well as ``listDiskOfferings``), its compute
offerings (none here: an honest empty list), the disk offerings list, and Add Disk Offering with
encryption, limited to a zone; the new offering is then offered by the Create Volume form.

Each step checks the page, the server (signed admin client) and ``ui.check()``.
"""
from __future__ import annotations

import secrets

from tests.support.tenants import unique


def modal(ui):
    return ui.page.locator(".ant-modal:visible")


def offerings_page(ui, item: str, command: str):
    entry = ui.page.locator(".ant-menu-item", has_text=item).first
    if not entry.is_visible():
        ui.page.locator(".ant-menu-submenu-title", has_text="Service Offerings").first.click()
    since = len(ui.calls)
    entry.click()
    answer = ui.answer(command, since)
    ui.settle()
    return answer


def test_offerings_menu_and_its_empty_compute_offerings(ui, kms_env, admin):
    ui.login("admin", kms_env.admin_password)
    listed = offerings_page(ui, "Compute offerings", "listServiceOfferings")
    assert listed.status == 200 and listed.json() == {"listserviceofferingsresponse": {}}
    assert listed.params["isrecursive"] == "true"
    ui.page.locator(".ant-table").get_by_text("No Data").wait_for()
    assert admin.ok("listServiceOfferings", listall="true") == {}
    ui.check()


def test_disk_offerings_are_listed(ui, kms_env, admin):
    offering = admin.ok("createDiskOffering", name=unique("ui-do"), displaytext="Listed in the UI",
                        disksize=1)["diskoffering"]
    ui.login("admin", kms_env.admin_password)
    listed = offerings_page(ui, "Disk offerings", "listDiskOfferings").json()["listdiskofferingsresponse"]
    assert listed["count"] == admin.ok("listDiskOfferings")["count"]
    ui.page.locator(".ant-table").get_by_text(offering["name"], exact=True).first.wait_for()
    ui.check()


def test_admin_creates_an_encrypted_disk_offering(ui, kms_env, admin):
    name = f"ui-enc-{secrets.token_hex(3)}"
    zone = admin.ok("listZones", name="zone1")["zone"][0]
    ui.login("admin", kms_env.admin_password)
    offerings_page(ui, "Disk offerings", "listDiskOfferings")
    since = len(ui.calls)
    ui.page.get_by_role("button", name="Add Disk Offering").click()
    assert ui.answer("listStorageTags", since).json() == {"liststoragetagsresponse": {}}
    ui.settle()
    ui.fill_field("name", name)
    ui.fill_field("displaytext", f"Encrypted 2 GB {name}")
    ui.page.locator("#form_item_encryptdisk").click()
    ui.page.locator("#form_item_customdisksize").click()  # a fixed size
    ui.fill_field("disksize", "2")
    # the zone select of this form has its own id
    modal(ui).locator(".ant-select", has=ui.page.locator("#zone-selection")).click()
    ui.page.locator(".ant-select-dropdown:visible .ant-select-item-option", has_text=zone["name"]).first.click()
    modal(ui).locator(".ant-modal-title").click()  # close the drop-down
    ui.shot("disk-offering-create")
    since = len(ui.calls)
    modal(ui).get_by_role("button", name="OK").click()
    created = ui.answer("createDiskOffering", since)
    assert created.status == 200, created.text
    assert created.params["encrypt"] == "true" and created.params["zoneid"] == zone["id"]
    ui.settle()
    ui.page.locator(".ant-table").get_by_text(name, exact=True).first.wait_for()

    offering = admin.ok("listDiskOfferings", name=name)["diskoffering"][0]
    expected = {"encrypt": True, "disksize": 2, "iscustomized": False, "zoneid": zone["id"], "zone": zone["name"],
                "cacheMode": "none", "disksizestrictness": False, "storagetype": "shared", "state": "Active"}
    assert {k: offering[k] for k in expected} == expected and "domainid" not in offering  # public

    since = len(ui.calls)
    ui.page.locator(".ant-table").get_by_text(name, exact=True).first.click()
    ui.answer("listDiskOfferings", since)
    ui.page.get_by_text("Encrypt", exact=True).first.wait_for()
    ui.settle()
    page = ui.page.locator(".ant-layout-content").first.inner_text()
    assert f"Encrypted 2 GB {name}" in page and zone["name"] in page

    # the Create Volume form of the zone offers it (and asks for KMS keys, as it encrypts)
    ui.open("/volume")
    since = len(ui.calls)
    ui.page.get_by_role("button", name="Create Volume").click()
    offered = ui.answer("listDiskOfferings", since)
    assert offered.params["zoneid"] == zone["id"]
    assert offering["id"] in [o["id"] for o in offered.json()["listdiskofferingsresponse"]["diskoffering"]]
    ui.settle()
    modal(ui).get_by_role("button", name="Cancel").click()
    ui.check()
