"""Commands the web UI's Storage, Offerings and Key Management pages need, through the real server:
listVolumesMetrics, destroyVolume and recoverVolume, listServiceOfferings, listStorageTags, the zones
and domains a disk offering is limited to (createDiskOffering ``zoneid``/``domainid``, honoured by
listDiskOfferings and createVolume), and ``projectid`` on the create commands whose UI form lists it.

Volumes here are metadata-only (``storage.volume.images=false``) except where the image is the point.
"""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from cloudstack_kms.storage import qemu
from tests.support.client import Client
from tests.support.dbtools import execute, query
from tests.support.tenants import new_account, new_domain, unique
from tests.support.volumes import GIB, SERVER_LOG, VolumeStore, admin_view, config, create_volume, set_config

DEFAULT_PROFILE = "HSM Database Provider"


@dataclass
class World:
    root: Client
    zone: str
    zone2: str
    dom: dict
    sub: dict
    other: dict
    user_account: dict
    user: Client
    dadmin_account: dict
    dadmin: Client
    enc: dict
    profile: str


@pytest.fixture(scope="module")
def root(server, admin_keys) -> Client:
    SERVER_LOG[:] = [server.log]
    yield Client(server.url, admin_keys["apikey"], admin_keys["secretkey"])
    SERVER_LOG.clear()


@pytest.fixture(scope="module", autouse=True)
def settings(root):
    old = {name: set_config(root, name, value) for name, value in
           {"storage.volume.images": "false", "storage.luks.iter.time.ms": "1"}.items()}
    yield
    for name, value in old.items():
        set_config(root, name, value)


@pytest.fixture(scope="module")
def world(root) -> World:
    zone = root.ok("listZones", name="zone1")["zone"][0]["id"]
    zone2 = root.ok("createZone", name=unique("zone"), dns1="8.8.8.8", internaldns1="8.8.4.4",
                    networktype="Advanced")["zone"]["id"]
    dom = new_domain(root)
    sub = new_domain(root, parent=dom["id"])
    other = new_domain(root)
    user_account, user = new_account(root, domainid=sub["id"])
    dadmin_account, dadmin = new_account(root, accounttype=2, domainid=dom["id"])
    enc = root.ok("createDiskOffering", name=unique("enc"), disksize=1, encrypt="true")["diskoffering"]
    profile = root.ok("listHSMProfiles", name=DEFAULT_PROFILE)["hsmprofile"][0]["id"]
    return World(root, zone, zone2, dom, sub, other, user_account, user, dadmin_account, dadmin, enc, profile)


# ------------------------------------------------------------------ listVolumesMetrics
def test_list_volumes_metrics_is_list_volumes_with_metrics(world):
    root, user = world.root, world.user
    key = user.ok("createKMSKey", name=unique("k"), zoneid=world.zone, hsmprofileid=world.profile)["kmskey"]
    volume = create_volume(user, name=unique("m"), zoneid=world.zone, diskofferingid=world.enc["id"],
                           kmskeyid=key["id"])
    plain = user.ok("listVolumes", id=volume["id"])["volume"][0]
    metrics = user.ok("listVolumesMetrics", id=volume["id"])
    assert metrics["count"] == 1
    listed = metrics["volume"][0]
    # every listVolumes field, the same; plus the size in GiB; a user's storage type stays plain
    assert {k: listed[k] for k in plain} == plain
    assert set(listed) - set(plain) == {"sizegb"}
    assert listed["sizegb"] == "1.00 GiB" and listed["storagetype"] == "shared"
    assert listed["kmskeyid"] == key["id"] and listed["kmskeyversion"] == 1

    admin_listed = root.ok("listVolumesMetrics", id=volume["id"], listall="true")["volume"][0]
    assert admin_listed["storagetype"] == "Shared (DATADISK)" and admin_listed["sizegb"] == "1.00 GiB"
    assert "storageid" in admin_listed and "diskiopstotal" not in admin_listed  # no disk statistics here

    # the same scope and filters as listVolumes
    assert user.ok("listVolumesMetrics", kmskeyid=key["id"])["count"] == 1
    assert root.ok("listVolumesMetrics", id=volume["id"]) == {}  # root's own volumes only, without listall
    stranger_account, stranger = new_account(root, domainid=world.other["id"])
    assert stranger.ok("listVolumesMetrics", id=volume["id"]) == {}
    assert user.request("listVolumesMetrics", page=1).status == 431


# ------------------------------------------------------------------ destroyVolume / recoverVolume
def test_destroy_then_recover_keeps_the_key_and_the_data(world, kms_env):
    user = world.user
    key = user.ok("createKMSKey", name=unique("k"), zoneid=world.zone, hsmprofileid=world.profile)["kmskey"]
    with config(world.root, "storage.volume.images", "true"):
        volume = create_volume(user, name=unique("d"), zoneid=world.zone, diskofferingid=world.enc["id"],
                               kmskeyid=key["id"])
    store = VolumeStore(kms_env)
    try:
        image = store.image(admin_view(world.root, volume["id"]))
        secret = store.secret(volume["id"])
        qemu.io(str(image), secret, "write -P 0x5a 0 64k")

        destroyed = user.run_async("destroyVolume", id=volume["id"])["volume"]
        assert destroyed["state"] == "Destroy" and destroyed["destroyed"] is True
        listed = user.ok("listVolumes", id=volume["id"])["volume"][0]
        assert listed["state"] == "Destroy" and listed["destroyed"] is True and listed["kmskeyid"] == key["id"]
        assert image.is_file()
        # a destroyed volume still uses its key
        job = user.wait_job(user.ok("deleteKMSKey", id=key["id"])["jobid"])
        assert job["jobstatus"] == 2 and "still reference this key" in job["jobresult"]["errortext"], job

        # destroying again changes nothing; recovering brings it back Ready, data and key intact
        assert user.run_async("destroyVolume", id=volume["id"])["volume"]["state"] == "Destroy"
        recovered = user.ok("recoverVolume", id=volume["id"])["volume"]
        assert recovered["state"] == "Ready" and recovered["destroyed"] is False
        assert recovered["kmskeyid"] == key["id"] and recovered["kmskeyversion"] == 1
        assert "read 65536/65536" in qemu.io(str(image), store.secret(volume["id"]), "read -P 0x5a 0 64k")
        refused = user.error("recoverVolume", 431, id=volume["id"])
        assert refused["errortext"] == "Please specify a volume in Destroy state."

        events = [e["type"] for e in world.root.ok("listEvents", listall="true", resourceid=volume["id"],
                                                     resourcetype="Volume", pagesize=100, page=1)["event"]]
        assert "VOLUME.DESTROY" in events and "VOLUME.RECOVER" in events
    finally:
        store.close()


def test_destroy_with_expunge_removes_the_volume_its_image_and_its_wrapped_key(world, kms_env):
    user = world.user
    key = user.ok("createKMSKey", name=unique("k"), zoneid=world.zone, hsmprofileid=world.profile)["kmskey"]
    with config(world.root, "storage.volume.images", "true"):
        volume = create_volume(user, name=unique("x"), zoneid=world.zone, diskofferingid=world.enc["id"],
                               kmskeyid=key["id"])
    store = VolumeStore(kms_env)
    try:
        image = store.image(admin_view(world.root, volume["id"]))
        wrapped = store.wrapped_key(volume["id"])
        expunged = user.run_async("destroyVolume", id=volume["id"], expunge="true")["volume"]
        assert expunged["state"] == "Expunged"
        assert not image.exists()
        assert store.volume_row(volume["id"])["removed"] is not None
        assert world.root.ok("listVolumes", id=volume["id"], listall="true") == {}
        assert query(kms_env, "SELECT removed FROM kms_wrapped_key WHERE id = :id", id=wrapped["id"])[0][0]
        # the key is free again
        assert user.wait_job(user.ok("deleteKMSKey", id=key["id"])["jobid"])["jobstatus"] == 1
        user.error("destroyVolume", 431, id=volume["id"])
    finally:
        store.close()


def test_an_allocated_volume_can_only_be_expunged(world, kms_env):
    user = world.user
    volume = create_volume(user, name=unique("a"), zoneid=world.zone, diskofferingid=world.enc["id"])
    assert execute(kms_env, "UPDATE volumes SET state = 'Allocated' WHERE uuid = :uuid", uuid=volume["id"]) == 1
    refused = user.error("destroyVolume", 431, id=volume["id"])
    assert refused["errortext"] == "The volume in Allocated/Uploaded state can only be expunged not destroyed/recovered"
    assert user.run_async("destroyVolume", id=volume["id"], expunge="true")["volume"]["state"] == "Expunged"


def test_destroy_and_recover_need_the_right_to_act_on_the_owner(world):
    user, root = world.user, world.root
    volume = create_volume(user, name=unique("p"), zoneid=world.zone, diskofferingid=world.enc["id"])
    stranger_account, stranger = new_account(root, domainid=world.other["id"])
    assert stranger.request("destroyVolume", id=volume["id"]).status == 531
    user.run_async("destroyVolume", id=volume["id"])
    assert stranger.request("recoverVolume", id=volume["id"]).status == 531
    assert world.dadmin.ok("recoverVolume", id=volume["id"])["volume"]["state"] == "Ready"  # above the owner


# ------------------------------------------------------------------ listServiceOfferings, listStorageTags
def test_service_offerings_are_an_honest_empty_list(world):
    root, user = world.root, world.user
    for client in (root, user, world.dadmin):
        reply = client.request("listServiceOfferings", listall="true", isrecursive="true", page=1, pagesize=20)
        assert reply.status == 200 and reply.body == {"listserviceofferingsresponse": {}}
    assert root.ok("listServiceOfferings", issystem="true", systemvmtype="domainrouter") == {}
    assert root.ok("listServiceOfferings", zoneid=world.zone, state="all", cpunumber=2) == {}
    assert root.error("listServiceOfferings", 431, id="0b6c1f9e-3d2a-4c1b-9f7e-2a5d8c4e1f00")
    assert root.error("listServiceOfferings", 431, state="broken")["errortext"] == "Invalid state value: broken"
    assert root.error("listServiceOfferings", 431, systemvmtype="nonsense")
    assert root.error("listServiceOfferings", 431, zoneid="0b6c1f9e-3d2a-4c1b-9f7e-2a5d8c4e1f00")
    assert root.error("listServiceOfferings", 431, page=1)
    user.error("listServiceOfferings", 531, domainid=world.other["id"])
    world.dadmin.error("listServiceOfferings", 531, domainid=world.other["id"])
    assert world.dadmin.ok("listServiceOfferings", domainid=world.sub["id"]) == {}


def test_storage_tags_are_an_honest_empty_list(world):
    assert world.root.request("listStorageTags").body == {"liststoragetagsresponse": {}}
    world.root.error("listStorageTags", 431, pagesize=10)
    assert world.user.request("listStorageTags").status == 432


# ------------------------------------------------------------------ disk offering zones and domains
def test_disk_offering_fields_the_ui_form_sends(world):
    root = world.root
    offering = root.ok("createDiskOffering", name=unique("ui"), displaytext="UI form", disksize=2, encrypt="true",
                       storageType="shared", cacheMode="writeback", provisioningType="sparse", customized="false",
                       disksizestrictness="true")["diskoffering"]
    expected = {"displaytext": "UI form", "disksize": 2, "encrypt": True, "storagetype": "shared",
                "cacheMode": "writeback", "provisioningtype": "sparse", "iscustomized": False,
                "disksizestrictness": True, "state": "Active"}
    assert {k: offering[k] for k in expected} == expected
    assert not {"zoneid", "zone", "domainid", "domain"} & set(offering)  # every zone, public
    assert root.ok("listDiskOfferings", id=offering["id"])["diskoffering"] == [offering]
    assert root.ok("listDiskOfferings", id=offering["id"], state="all")["diskoffering"] == [offering]
    assert root.ok("listDiskOfferings", id=offering["id"], state="Inactive") == {}
    root.error("listDiskOfferings", 431, state="gone")
    root.error("createDiskOffering", 431, name=unique("bad"), disksize=1, cachemode="sometimes")


def test_a_zone_limited_offering_is_listed_and_usable_only_there(world):
    root, user = world.root, world.user
    zone_name = root.ok("listZones", id=world.zone)["zone"][0]["name"]
    offering = root.ok("createDiskOffering", name=unique("z"), disksize=1, zoneid=world.zone)["diskoffering"]
    assert offering["zoneid"] == world.zone and offering["zone"] == zone_name
    in_zone = {o["id"] for o in user.ok("listDiskOfferings", zoneid=world.zone)["diskoffering"]}
    in_zone2 = {o["id"] for o in user.ok("listDiskOfferings", zoneid=world.zone2).get("diskoffering", [])}
    assert offering["id"] in in_zone and offering["id"] not in in_zone2
    assert world.enc["id"] in in_zone and world.enc["id"] in in_zone2  # unlimited offerings: every zone
    refused = user.error("createVolume", 531, name=unique("v"), zoneid=world.zone2, diskofferingid=offering["id"])
    assert "is not available to account" in refused["errortext"]
    assert create_volume(user, name=unique("v"), zoneid=world.zone, diskofferingid=offering["id"])["state"] == "Ready"
    root.error("createDiskOffering", 431, name=unique("z"), disksize=1, zoneid="0b6c1f9e-3d2a-4c1b-9f7e-2a5d8c4e1f00")


def test_a_domain_limited_offering_is_for_that_domain_and_below(world):
    root, user, dadmin = world.root, world.user, world.dadmin
    stranger_account, stranger = new_account(root, domainid=world.other["id"])
    # for dom (the user is in its subdomain sub), and sub given too: dropped as redundant
    offering = root.ok("createDiskOffering", name=unique("d"), disksize=1,
                       domainid=f"{world.dom['id']},{world.sub['id']}")["diskoffering"]
    assert offering["domainid"] == world.dom["id"] and offering["domain"] == world.dom["name"]
    ids = lambda client, **kw: {o["id"] for o in client.ok("listDiskOfferings", **kw).get("diskoffering", [])}  # noqa
    assert offering["id"] in ids(user) and offering["id"] in ids(dadmin)
    assert offering["id"] not in ids(stranger)
    assert offering["id"] in ids(root)
    # what an account may use, as the UI's volume form asks (account + domainid)
    assert offering["id"] in ids(root, account=world.user_account["name"], domainid=world.sub["id"])
    assert offering["id"] not in ids(root, account=stranger_account["name"], domainid=world.other["id"])
    # domainid alone: the offerings limited to exactly that domain (isrecursive: or below it)
    assert ids(root, domainid=world.dom["id"]) >= {offering["id"]} and world.enc["id"] not in ids(
        root, domainid=world.dom["id"])
    assert offering["id"] not in ids(root, domainid=world.sub["id"])
    below = root.ok("createDiskOffering", name=unique("s"), disksize=1, domainid=world.sub["id"])["diskoffering"]
    assert below["id"] in ids(root, domainid=world.dom["id"], isrecursive="true")
    assert below["id"] not in ids(dadmin) and below["id"] in ids(dadmin, isrecursive="true")
    user.error("listDiskOfferings", 531, domainid=world.other["id"])
    # createVolume: the owner must be in (or below) one of the offering's domains
    assert create_volume(user, name=unique("v"), zoneid=world.zone, diskofferingid=offering["id"])["state"] == "Ready"
    stranger.error("createVolume", 531, name=unique("v"), zoneid=world.zone, diskofferingid=offering["id"])
    root.error("createVolume", 531, name=unique("v"), zoneid=world.zone, diskofferingid=offering["id"],
               account=stranger_account["name"], domainid=world.other["id"])


def test_a_domain_admin_creates_offerings_only_for_its_domains(world):
    dadmin = world.dadmin
    public = dadmin.error("createDiskOffering", 431, name=unique("p"), disksize=1)
    assert public["errortext"].startswith("Unable to create public disk offering by admin:")
    other = dadmin.error("createDiskOffering", 431, name=unique("o"), disksize=1, domainid=world.other["id"])
    assert "Unable to create disk offering by another domain-admin" in other["errortext"]
    mine = dadmin.ok("createDiskOffering", name=unique("m"), disksize=1, domainid=world.sub["id"])["diskoffering"]
    assert mine["domainid"] == world.sub["id"]
    assert world.user.request("createDiskOffering", name=unique("u"), disksize=1).status == 432


# ------------------------------------------------------------------ projectid: no projects here
@pytest.mark.parametrize("command, params", [
    ("createHSMProfile", {"name": "p", "protocol": "database"}),
    ("addHSMProfile", {"name": "p", "protocol": "database"}),
    ("createKMSKey", {"name": "k"}),
])
def test_a_project_id_is_refused_as_unknown(world, command, params):
    """The UI's form lists ``projectid`` (it cannot be drawn without it); no project exists here, so any
    value is an unknown project, and nothing is made."""
    project = "0b6c1f9e-3d2a-4c1b-9f7e-2a5d8c4e1f00"
    extra = {"zoneid": world.zone, "hsmprofileid": world.profile} if command == "createKMSKey" else {}
    name = unique(params["name"])
    refused = world.root.error(command, 431, **{**params, **extra, "name": name, "projectid": project})
    assert refused["errortext"].endswith(f"Invalid parameter projectid value={project} due to incorrect long value "
                                         "format, or entity does not exist or due to incorrect parameter annotation "
                                         "for the field in api cmd class.")
    lister = "listKMSKeys" if command == "createKMSKey" else "listHSMProfiles"
    assert world.root.ok(lister, keyword=name, listall="true") == {}
    assert world.root.request(lister, keyword=name, listall="true").status == 200


def test_volume_sizes_in_gib(world):
    """``sizegb`` as upstream formats it: two decimals, GiB."""
    custom = world.root.ok("createDiskOffering", name=unique("c"), customized="true")["diskoffering"]
    volume = create_volume(world.user, name=unique("c"), zoneid=world.zone, diskofferingid=custom["id"], size=3)
    listed = world.user.ok("listVolumesMetrics", id=volume["id"])["volume"][0]
    assert listed["size"] == 3 * GIB and listed["sizegb"] == "3.00 GiB"


# ------------------------------------------------------------------ the Volumes and Disk Offerings search filters
def test_volume_filters_of_the_search_form(world):
    root, user = world.root, world.user
    volume = create_volume(user, name=unique("f"), zoneid=world.zone, diskofferingid=world.enc["id"])
    pool = admin_view(root, volume["id"])["storageid"]
    on_pool = {v["id"] for v in root.ok("listVolumes", storageid=pool, listall="true")["volume"]}
    assert volume["id"] in on_pool
    assert root.ok("listVolumesMetrics", storageid=pool, id=volume["id"], listall="true")["count"] == 1
    root.error("listVolumes", 431, storageid="0b6c1f9e-3d2a-4c1b-9f7e-2a5d8c4e1f00")
    assert user.error("listVolumes", 431, serviceofferingid="0b6c1f9e-3d2a-4c1b-9f7e-2a5d8c4e1f00")
    assert user.ok("listVolumes", id=volume["id"], **{"tags[0].key": "env", "tags[0].value": "prod"}) == {}
    assert user.ok("listVolumes", id=volume["id"])["count"] == 1


def test_disk_offerings_for_a_storage_pool(world):
    root = world.root
    volume = create_volume(world.user, name=unique("f"), zoneid=world.zone, diskofferingid=world.enc["id"])
    pool = admin_view(root, volume["id"])["storageid"]
    tagged = root.ok("createDiskOffering", name=unique("t"), disksize=1, tags="ssd")["diskoffering"]
    local = root.ok("createDiskOffering", name=unique("l"), disksize=1, storagetype="local")["diskoffering"]
    elsewhere = root.ok("createDiskOffering", name=unique("e"), disksize=1, zoneid=world.zone2)["diskoffering"]
    fits = {o["id"] for o in root.ok("listDiskOfferings", storageid=pool)["diskoffering"]}
    assert world.enc["id"] in fits
    assert not {tagged["id"], local["id"], elsewhere["id"]} & fits
    root.error("listDiskOfferings", 431, storageid="0b6c1f9e-3d2a-4c1b-9f7e-2a5d8c4e1f00")
