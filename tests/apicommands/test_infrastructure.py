"""The infrastructure commands the web UI's dashboards and Global Settings page read, through the
real server with a signed client: response names, object names and fields as upstream, the real
figures (zones, primary storage measured on its filesystem, volumes allocated on it, live
management servers), honest empty lists for what this server does not run, every declared
parameter doing what it says, and upstream's roles.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.support.client import Client
from tests.support.dbtools import query
from tests.support.tenants import new_account, unique
from tests.support.volumes import config

GIB = 1024 ** 3
KMS_SETTINGS = {"kms.dek.size.bits", "kms.retry.count", "kms.retry.delay.ms", "kms.operation.timeout.sec",
                "kms.rewrap.batch.size", "kms.rewrap.interval.ms", "kms.key.deletion.pending.days"}

#: Lists of things this server does not have: (command, object name, parameters the UI sends).
EMPTY_LISTS = [
    ("listPods", "pod", {}),
    ("listClusters", "cluster", {}),
    ("listHosts", "host", {"listall": "true", "details": "min", "type": "routing", "state": "alert", "page": 1,
                           "pagesize": 1}),
    ("listSystemVms", "systemvm", {}),
    ("listRouters", "router", {"listall": "true", "projectid": "-1"}),
    ("listAlerts", "alert", {"page": 1, "pagesize": 8, "listall": "true"}),
    ("listNetworkServiceProviders", "networkserviceprovider", {"name": "SecurityGroupProvider", "state": "Enabled"}),
    ("listNetworks", "network", {"restartrequired": "true", "forvpc": "false"}),
    ("listVPCs", "vpc", {"restartrequired": "true"}),
    ("listVirtualMachines", "virtualmachine", {"listall": "true", "details": "min", "state": "running", "page": 1,
                                               "pagesize": 1}),
]


def filesystem(path: str) -> tuple[int, int]:
    """(size, used) of the filesystem holding ``path`` (or its nearest existing parent)."""
    where = Path(path)
    while not where.exists():
        where = where.parent
    st = os.statvfs(where)
    return st.f_blocks * st.f_frsize, (st.f_blocks - st.f_bfree) * st.f_frsize


@pytest.fixture(scope="module")
def zone(admin_keys, server) -> dict:
    root = Client(server.url, admin_keys["apikey"], admin_keys["secretkey"])
    return root.ok("listZones", name="zone1")["zone"][0]


@pytest.fixture(scope="module")
def user(server, admin_keys) -> Client:
    return new_account(Client(server.url, admin_keys["apikey"], admin_keys["secretkey"]))[1]


# ------------------------------------------------------------------ primary storage
def test_storage_pools_are_the_servers_with_measured_figures(admin, zone, kms_env):
    reply = admin.request("listStoragePools")
    assert reply.status == 200 and list(reply.body) == ["liststoragepoolsresponse"]
    body = reply.inner()
    rows = query(kms_env, "SELECT uuid, name, path FROM storage_pool WHERE removed IS NULL")
    assert body["count"] == len(rows) == len(body["storagepool"])
    by_id = {p["id"]: p for p in body["storagepool"]}
    for uuid_, name, path in rows:
        pool = by_id[uuid_]
        assert pool["name"] == name and pool["path"] == path
        assert {"zoneid", "zonename", "ipaddress", "created", "type", "state", "scope", "provider"} <= set(pool)
        size, used = filesystem(path)
        assert pool["disksizetotal"] == size
        assert abs(pool["disksizeused"] - used) < 256 * 1024 * 1024  # the filesystem may move meanwhile
        assert 0 <= pool["disksizeallocated"]
        assert (pool["type"], pool["state"], pool["scope"], pool["managed"]) == ("Filesystem", "Up", "ZONE", False)
    mine = [p for p in body["storagepool"] if p["zoneid"] == zone["id"]]
    assert mine and mine[0]["zonename"] == "zone1"


def test_storage_pool_filters(admin, zone):
    pool = admin.ok("listStoragePools", zoneid=zone["id"])["storagepool"][0]
    assert [p["id"] for p in admin.ok("listStoragePools", id=pool["id"])["storagepool"]] == [pool["id"]]
    assert pool["id"] in {p["id"] for p in admin.ok("listStoragePools", name=pool["name"])["storagepool"]}
    assert pool["id"] in {p["id"] for p in admin.ok("listStoragePools", keyword=pool["name"][2:])["storagepool"]}
    assert admin.ok("listStoragePools", name=unique("none")) == {}
    other = admin.ok("createZone", name=unique("zone"), dns1="8.8.8.8", networktype="Advanced")["zone"]
    assert admin.ok("listStoragePools", zoneid=other["id"]) == {}  # a zone gets its pool with its first volume
    admin.error("listStoragePools", 431, zoneid="7b6c2a4e-0000-4000-8000-000000000000")
    admin.error("listStoragePools", 431, id="7b6c2a4e-0000-4000-8000-000000000000")
    admin.error("listStoragePools", 431, page=1)  # page needs pagesize


def test_allocated_storage_follows_the_volumes(admin, zone):
    """A 2 GiB volume on the pool shows in ``disksizeallocated`` and in the STORAGE_ALLOCATED capacity,
    and leaves them when it is deleted (metadata-only volume: no image is written)."""
    offering = admin.ok("createDiskOffering", name=unique("cap"), disksize=2)["diskoffering"]

    def figures():
        pool = admin.ok("listStoragePools", zoneid=zone["id"])["storagepool"][0]
        cap = admin.ok("listCapacity", zoneid=zone["id"], type=3)["capacity"][0]
        return pool["disksizeallocated"], cap["capacityused"]

    with config(admin, "storage.volume.images", "false"):
        before = figures()
        volume = admin.run_async("createVolume", name=unique("cap"), zoneid=zone["id"],
                                 diskofferingid=offering["id"])["volume"]
        try:
            assert figures() == (before[0] + 2 * GIB, before[1] + 2 * GIB)
        finally:
            admin.ok("deleteVolume", id=volume["id"])
    assert figures() == before


# ------------------------------------------------------------------ capacity
def test_capacity_is_primary_storage_per_zone(admin, zone):
    reply = admin.request("listCapacity", zoneid=zone["id"], fetchlatest="false")
    assert reply.status == 200 and list(reply.body) == ["listcapacityresponse"]
    body = reply.inner()
    assert body["count"] == 2
    storage, allocated = body["capacity"]
    # Upstream's field order: the UI's all-zones sum drops the first field of each entry.
    assert list(storage)[0] == "type"
    assert (storage["type"], storage["name"], allocated["type"], allocated["name"]) == (
        2, "STORAGE", 3, "STORAGE_ALLOCATED")
    pools = admin.ok("listStoragePools", zoneid=zone["id"])["storagepool"]
    size, used = filesystem(pools[0]["path"])
    for cap in (storage, allocated):
        assert (cap["zoneid"], cap["zonename"]) == (zone["id"], "zone1")
        assert cap["capacitytotal"] == size  # the zone's pools share one filesystem: counted once
        assert set(cap) == {"type", "name", "zoneid", "zonename", "capacityused", "capacitytotal", "percentused"}
        expected = round(cap["capacityused"] * 100 / cap["capacitytotal"], 2)
        assert float(cap["percentused"]) == pytest.approx(expected, abs=0.006)
        assert not re.search(r"\.\d*0$|\.$", cap["percentused"]), cap["percentused"]  # no trailing zeros
    assert abs(storage["capacityused"] - used) < 256 * 1024 * 1024
    assert allocated["capacityused"] == sum(p["disksizeallocated"] for p in pools)


def test_capacity_filters(admin, zone):
    assert [c["type"] for c in admin.ok("listCapacity", zoneid=zone["id"], type=2)["capacity"]] == [2]
    assert admin.ok("listCapacity", zoneid=zone["id"], type=0) == {}  # no memory: no made-up figures
    assert admin.ok("listCapacity", zoneid=zone["id"], type=1) == {}
    everything = admin.ok("listCapacity", fetchlatest="true")
    zones_with_pools = {p["zoneid"] for p in admin.ok("listStoragePools")["storagepool"]}
    assert {c["zoneid"] for c in everything["capacity"]} == zones_with_pools
    assert everything["count"] == 2 * len(zones_with_pools)
    names = [(c["zonename"], c["type"]) for c in everything["capacity"]]
    assert names == sorted(names)
    page = admin.ok("listCapacity", page=1, pagesize=1)
    assert page["count"] == everything["count"] and len(page["capacity"]) == 1
    admin.error("listCapacity", 431, zoneid="7b6c2a4e-0000-4000-8000-000000000000")
    admin.error("listCapacity", 431, type="memory")


# ------------------------------------------------------------------ infrastructure counts
def test_infrastructure_counts(admin, kms_env):
    reply = admin.request("listInfrastructure")
    assert reply.status == 200 and list(reply.body) == ["listinfrastructureresponse"]
    infra = reply.inner()["infrastructure"]
    assert set(infra) == {"zones", "pods", "clusters", "hosts", "storagepools", "imagestores", "backuprepositories",
                          "objectstores", "systemvms", "routers", "ilbvms", "cpusockets", "managementservers",
                          "alerts", "imagecachestores"}
    assert all(isinstance(v, int) for v in infra.values())
    assert infra["zones"] == admin.ok("listZones")["count"]
    assert infra["storagepools"] == admin.ok("listStoragePools")["count"]
    live = query(kms_env, "SELECT COUNT(*) FROM mshost WHERE state = 'Up' AND removed IS NULL")[0][0]
    assert infra["managementservers"] == live >= 1
    for none in ("pods", "clusters", "hosts", "imagestores", "systemvms", "routers", "cpusockets", "alerts"):
        assert infra[none] == 0, none


# ------------------------------------------------------------------ what this server does not run
@pytest.mark.parametrize("command, object_name, params", EMPTY_LISTS, ids=[c for c, _, _ in EMPTY_LISTS])
def test_lists_of_what_the_server_does_not_run_are_empty(admin, zone, command, object_name, params):
    zoneid = None if command in ("listAlerts", "listNetworkServiceProviders") else zone["id"]
    reply = admin.request(command, zoneid=zoneid, **params)
    assert reply.status == 200, reply.text
    assert reply.body == {f"{command.lower()}response": {}}
    api = admin.ok("listApis", name=command)["api"][0]
    assert {r["name"] for r in api["response"]} >= {"id", "name"}
    assert api["isasync"] is False


@pytest.mark.parametrize("command", ["listPods", "listHosts", "listNetworks", "listVirtualMachines", "listAlerts"])
def test_empty_lists_still_check_their_parameters(admin, command):
    admin.error(command, 431, page=1)  # page needs pagesize
    admin.error(command, 431, pagesize=0, page=1)
    if command != "listAlerts":
        admin.error(command, 431, zoneid="7b6c2a4e-0000-4000-8000-000000000000")


def test_details_must_be_known_values(admin):
    assert admin.ok("listHosts", details="min,capacity") == {}
    text = admin.error("listHosts", 431, details="min,everything")["errortext"]
    assert text == ("The details parameter contains a non permitted value. The allowed values are "
                    "[all, capacity, events, stats, min]")
    assert admin.ok("listVirtualMachines", details="min") == {}
    assert "non permitted value" in admin.error("listVirtualMachines", 431, details="bogus")["errortext"]


def test_owned_lists_check_the_account_scope(admin, user, server, admin_keys):
    other, _ = new_account(admin)
    for command in ("listNetworks", "listVPCs", "listVirtualMachines"):
        assert user.ok(command, listall="true") == {}
        user.error(command, 531, account=other["name"], domainid=other["domainid"])
        admin.error(command, 431, account=unique("nobody"), domainid=other["domainid"])
        assert admin.ok(command, account=other["name"], domainid=other["domainid"]) == {}


def test_resource_icons(admin, user):
    reply = user.request("listResourceIcon", resourceids="a,b", resourcetype="Account")
    assert reply.status == 200 and reply.body == {"listresourceiconresponse": {}}
    assert admin.ok("listResourceIcon", resourceids="x", resourcetype="zone") == {}
    assert admin.error("listResourceIcon", 431, resourceids="x", resourcetype="Bogus")["errortext"] == (
        "Invalid resource type: Bogus")
    admin.error("listResourceIcon", 431, resourcetype="Zone")  # resourceids is required


# ------------------------------------------------------------------ roles (upstream's default rules)
ROOT_ONLY = ["listInfrastructure", "listNetworkServiceProviders", "listConfigurationGroups"]
INFRA_ADMINS = ["listPods", "listClusters", "listHosts", "listStoragePools", "listSystemVms", "listCapacity",
                "listAlerts"]
ALL = ["listNetworks", "listVPCs", "listVirtualMachines", "listResourceIcon"]


def test_roles_as_upstream(admin):
    accounts = {kind: new_account(admin, accounttype=kind)[1] for kind in (0, 2, 3)}
    user, domain_admin, resource_admin = accounts[0], accounts[2], accounts[3]
    listed = {name: {a["name"] for a in client.ok("listApis")["api"]}
              for name, client in (("user", user), ("dadmin", domain_admin), ("radmin", resource_admin),
                                   ("root", admin))}
    for command in ROOT_ONLY + INFRA_ADMINS + ALL + ["listRouters"]:
        assert command in listed["root"]
    for command in ROOT_ONLY:
        assert command not in listed["radmin"] | listed["dadmin"] | listed["user"], command
    for command in INFRA_ADMINS:
        assert command in listed["radmin"] and command not in listed["dadmin"] | listed["user"], command
    assert "listRouters" in listed["dadmin"] & listed["radmin"] and "listRouters" not in listed["user"]
    for command in ALL:
        assert command in listed["user"] & listed["dadmin"] & listed["radmin"], command
    text = user.error("listCapacity", 432)["errortext"]
    assert text.startswith("The API [listCapacity] does not exist or is not available for the account")
    user.error("listNetworkServiceProviders", 432)
    assert resource_admin.ok("listHosts") == {}
    assert domain_admin.ok("listRouters", listall="true") == {}
    resource_admin.error("listInfrastructure", 432)


def test_listapis_declares_what_the_commands_honour(admin):
    def params(name: str) -> set[str]:
        return {p["name"] for p in admin.ok("listApis", name=name)["api"][0]["params"]}

    assert params("listCapacity") == {"zoneid", "type", "fetchlatest", "keyword", "page", "pagesize"}
    assert params("listInfrastructure") == set()
    assert params("listResourceIcon") == {"resourceids", "resourcetype"}
    assert params("listStoragePools") == {"id", "name", "zoneid", "keyword", "page", "pagesize"}
    assert params("listConfigurationGroups") == {"group", "keyword", "page", "pagesize"}


# ------------------------------------------------------------------ Global Settings: groups
def test_configuration_groups(admin):
    reply = admin.request("listConfigurationGroups", pagesize=-1)
    assert reply.status == 200 and list(reply.body) == ["listconfigurationgroupsresponse"]
    groups = reply.inner()["configurationgroup"]
    assert reply.inner()["count"] == len(groups)
    assert [g["precedence"] for g in groups] == sorted(g["precedence"] for g in groups)
    for group in groups:
        assert set(group) == {"name", "description", "precedence", "subgroup"}
        assert group["subgroup"], group  # the page opens a group on its first subgroup
        assert all(set(s) == {"name", "precedence"} for s in group["subgroup"])
    by_name = {g["name"]: g for g in groups}
    assert [s["name"] for s in by_name["Storage"]["subgroup"]] == ["KMS"]
    assert by_name["Miscellaneous"]["precedence"] == 999
    assert [g["name"] for g in admin.ok("listConfigurationGroups", group="storage")["configurationgroup"]] == [
        "Storage"]
    # Only the display name the web UI reads after each saved setting is in the Hypervisor group.
    assert [g["name"] for g in admin.ok("listConfigurationGroups", group="Hypervisor")["configurationgroup"]] == [
        "Hypervisor"]
    assert [c["name"] for c in admin.ok("listConfigurations", group="Hypervisor", pagesize=-1)["configuration"]] == [
        "hypervisor.custom.display.name"]
    assert [g["name"] for g in admin.ok("listConfigurationGroups", keyword="kms")["configurationgroup"]] == ["Storage"]
    # every listed setting is in a listed group and subgroup
    settings = admin.ok("listConfigurations", pagesize=-1)["configuration"]
    pairs = {(g["name"], s["name"]) for g in groups for s in g["subgroup"]}
    assert {(c["group"], c["subgroup"]) for c in settings} == pairs


def test_the_kms_settings_are_under_storage_kms(admin):
    body = admin.ok("listConfigurations", group="Storage", subgroup="KMS", pagesize=-1)
    assert {c["name"] for c in body["configuration"]} == KMS_SETTINGS and body["count"] == len(KMS_SETTINGS)
    for c in body["configuration"]:
        assert (c["group"], c["subgroup"], c["isdynamic"], c["component"]) == ("Storage", "KMS", True, "cloud-kms")
    # a group is listed whole, whatever the page size
    assert len(admin.ok("listConfigurations", group="storage", page=1, pagesize=2)["configuration"]) == len(KMS_SETTINGS)
    found = {c["name"] for c in admin.ok("listConfigurations", keyword="kms")["configuration"]}
    assert KMS_SETTINGS <= found
    dek = admin.ok("listConfigurations", name="kms.dek.size.bits")["configuration"][0]
    # a Select setting: the UI shows a drop-down of the options
    assert (dek["type"], dek["options"], dek["displaytext"]) == ("Select", "128,192,256", "Kms dek size bits")
    count = admin.ok("listConfigurations", name="kms.retry.count")["configuration"][0]
    assert (count["type"], count["displaytext"]) == ("Number", "Kms retry count")


def test_configuration_filters(admin, zone):
    assert admin.error("listConfigurations", 431, subgroup="KMS")["errortext"] == (
        "Configuration group name must be specified with the subgroup name")
    assert admin.error("listConfigurations", 431, group="Nothing")["errortext"] == (
        "Invalid configuration group: Nothing")
    admin.error("listConfigurations", 431, group="Storage", subgroup="Nothing")
    assert admin.ok("listConfigurations", group="Storage", subgroup="Images") == {}
    assert admin.ok("listConfigurations", parent="kms.retry.count") == {}  # no setting is nested here
    # every setting here is global: none can be set for a zone, an account or a domain
    assert admin.ok("listConfigurations", zoneid=zone["id"]) == {}
    account = admin.ok("listAccounts", name="admin")["account"][0]
    assert admin.ok("listConfigurations", accountid=account["id"]) == {}
    assert admin.ok("listConfigurations", domainid=account["domainid"]) == {}
    admin.error("listConfigurations", 431, zoneid=zone["id"], accountid=account["id"])
    admin.error("listConfigurations", 431, zoneid="7b6c2a4e-0000-4000-8000-000000000000")
    page = admin.ok("listConfigurations", page=2, pagesize=3)
    assert len(page["configuration"]) == 3 and page["count"] == admin.ok("listConfigurations")["count"]
