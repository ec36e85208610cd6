"""The dashboards of the real web UI, for a root admin (capacity dashboard) and for a plain user
(usage dashboard): every API the page calls answers, and what the page shows is what the server
has: its primary storage (count, measured use and size), and none of the hosts, pods, clusters,
system VMs, routers or instances it does not run."""
from __future__ import annotations

import re

from tests.support.tenants import PASSWORD, new_account

GIB = 1024 ** 3

ADMIN_DASHBOARD_CALLS = {"listCapacity", "listPods", "listClusters", "listHosts", "listStoragePools",
                         "listSystemVms", "listRouters", "listVirtualMachines", "listAlerts", "listEvents",
                         "listZones", "listNetworks", "listVPCs", "listNetworkServiceProviders"}
USER_DASHBOARD_CALLS = {"listVirtualMachines", "listNetworks", "listVPCs", "listVolumes", "listEvents",
                        "listAccounts"}


def statistic(ui, title: str) -> str:
    """The value of the dashboard statistic titled ``title``."""
    card = ui.page.locator(".ant-statistic").filter(
        has=ui.page.locator(".ant-statistic-title", has_text=re.compile(f"^{re.escape(title)}$")))
    return card.locator(".ant-statistic-content-value").first.inner_text().strip()


def wait_for_statistic(ui, title: str, value: str) -> None:
    ui.page.wait_for_function(
        """([title, value]) => [...document.querySelectorAll('.ant-statistic')].some(s =>
              s.querySelector('.ant-statistic-title')?.innerText.trim() === title &&
              s.querySelector('.ant-statistic-content-value')?.innerText.trim() === value)""",
        arg=[title, value], timeout=30000)


def statuses(ui, commands: set[str]) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {}
    for call in ui.calls:
        if call.command in commands:
            found.setdefault(call.command, set()).add(call.status)
    return found


def test_admin_dashboard(ui, kms_env, admin):
    pools = admin.ok("listStoragePools")["storagepool"]
    ui.login("admin", kms_env.admin_password)
    ui.page.wait_for_selector("text=Primary Storage used", timeout=30000)
    wait_for_statistic(ui, "Primary Storage", str(len(pools)))
    ui.settle()

    # every API of the capacity dashboard answered, none with an error
    assert statuses(ui, ADMIN_DASHBOARD_CALLS) == {c: {200} for c in ADMIN_DASHBOARD_CALLS}
    assert {c.params.get("zoneid") for c in ui.calls if c.command == "listCapacity"} == {
        z["id"] for z in admin.ok("listZones")["zone"]}

    # what the page shows is the server's state
    infra = admin.ok("listInfrastructure")["infrastructure"]
    assert statistic(ui, "Primary Storage") == str(infra["storagepools"]) == str(len(pools))
    for title in ("Pods", "Clusters", "Hosts", "Hosts in alert state", "System VMs", "Virtual Routers", "Instances"):
        assert statistic(ui, title) == "0", title
    storage = admin.ok("listCapacity", type=2)["capacity"]
    used = sum(c["capacityused"] for c in storage)
    total = sum(c["capacitytotal"] for c in storage)
    line = ui.page.locator("div", has_text=re.compile(r"^[\d.]+ GiB Used \| [\d.]+ GiB Total$")).first.inner_text()
    shown_used, shown_total = (float(x) for x in re.findall(r"[\d.]+", line))
    assert f"{shown_total:.2f}" == f"{total / GIB:.2f}"
    assert abs(shown_used - used / GIB) < 0.25  # the filesystem moves between the two measurements
    allocated = sum(c["capacityused"] for c in admin.ok("listCapacity", type=3)["capacity"])
    assert ui.page.get_by_text(f"{allocated / GIB:.2f} GiB Allocated | {total / GIB:.2f} GiB Total").count() == 1
    # no CPU or memory figures are made up
    assert ui.page.get_by_text("Memory", exact=True).count() == 0
    ui.shot("dashboard-admin")
    ui.check()


def test_plain_user_dashboard(ui, admin):
    account, client = new_account(admin)
    apis = {a["name"] for a in client.ok("listApis")["api"]}
    assert "listCapacity" not in apis and {"listVirtualMachines", "listNetworks", "listVPCs"} <= apis

    ui.login(account["user"][0]["username"], PASSWORD)
    ui.page.wait_for_selector("text=Running Instances", timeout=30000)
    ui.settle()

    # the usage dashboard's calls all answered; the root-admin-only ones were never made
    assert statuses(ui, USER_DASHBOARD_CALLS) == {c: {200} for c in USER_DASHBOARD_CALLS}
    assert not {"listCapacity", "listHosts", "listStoragePools", "listInfrastructure"} & set(ui.commands())
    # the start-up check for security groups is root-admin-only upstream too: 432, which the UI ignores
    assert statuses(ui, {"listNetworkServiceProviders"}) == {"listNetworkServiceProviders": {432}}

    # the counts are the user's (nothing but volumes exists for a user here)
    volumes = client.ok("listVolumes", listall="true").get("count", 0)
    for title, value in (("Instances", "0"), ("Volumes", str(volumes)), ("Guest Networks", "0"), ("VPCs", "0"),
                         ("Running Instances", "0"), ("Stopped Instances", "0")):
        assert statistic(ui, title) == value, title
    ui.shot("dashboard-user")
    ui.check()
