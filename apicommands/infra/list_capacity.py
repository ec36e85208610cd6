"""``listCapacity``: per zone, the primary storage in use (type 2) and allocated to volumes (type 3).

Figures come from the pools' filesystems and the volumes on them, measured at every call, so
every answer is the latest. This server has no hosts, networks or secondary storage, so it
reports no CPU, memory, IP or secondary storage capacity rather than made-up figures.
"""
from sqlalchemy import select

from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import ListCommand, ListResult, _ListParams
from cloudstack_kms.api.declare import Out, ResponseObject
from cloudstack_kms.api.listing import max_page_size, page_window
from cloudstack_kms.models import DataCenter
from cloudstack_kms.models.volume import StoragePool
from cloudstack_kms.storage import pools

from .common import INFRA_ADMINS, percent

CAPACITY_TYPE_STORAGE = 2
CAPACITY_TYPE_STORAGE_ALLOCATED = 3
NAMES = {CAPACITY_TYPE_STORAGE: "STORAGE", CAPACITY_TYPE_STORAGE_ALLOCATED: "STORAGE_ALLOCATED"}


class CapacityResponse(ResponseObject):
    object_name = "capacity"
    # Upstream's field order; the web UI's all-zones sum drops the first field of each entry.
    type = Out.integer("the capacity type")
    name = Out.string("the capacity name")
    zoneid = Out.uuid("the Zone ID")
    zonename = Out.string("the Zone name")
    podid = Out.uuid("the Pod ID")
    podname = Out.string("the Pod name")
    clusterid = Out.uuid("the Cluster ID")
    clustername = Out.string("the Cluster name")
    capacityallocated = Out.long("the capacity currently in allocated")
    capacityused = Out.long("the capacity currently in use")
    capacitytotal = Out.long("the total capacity available")
    percentused = Out.string("the percentage of capacity currently in use")


def zone_capacities(zone: DataCenter, zone_pools: list[StoragePool], use: dict[int, pools.PoolUsage]) -> list[dict]:
    """The two storage capacities of one zone. A filesystem holding several pools counts once
    in the size and the space used; the allocation is the sum over the pools."""
    filesystems: dict[int, pools.PoolUsage] = {}
    for pool in zone_pools:
        filesystems.setdefault(use[pool.id].device, use[pool.id])
    total = sum(u.capacity_bytes for u in filesystems.values())
    used = sum(u.used_bytes for u in filesystems.values())
    allocated = sum(use[pool.id].allocated_bytes for pool in zone_pools)
    figures = {CAPACITY_TYPE_STORAGE: used, CAPACITY_TYPE_STORAGE_ALLOCATED: allocated}
    return [{"type": kind, "name": NAMES[kind], "zoneid": zone.uuid, "zonename": zone.name,
             "capacityused": value, "capacitytotal": total, "percentused": percent(value, total)}
            for kind, value in figures.items()]


class ListCapacity(ListCommand):
    api_name = "listCapacity"
    description = "Lists all the system wide capacities."
    roles = INFRA_ADMINS
    response = CapacityResponse
    java_class = "org.apache.cloudstack.api.command.admin.resource.ListCapacityCmd"

    class Params(_ListParams):
        zoneid = p.uuid("lists capacity by the Zone ID", entity=DataCenter, related="listZones")
        type = p.integer("lists capacity by type* CAPACITY_TYPE_MEMORY = 0* CAPACITY_TYPE_CPU = 1"
                         "* CAPACITY_TYPE_STORAGE = 2* CAPACITY_TYPE_STORAGE_ALLOCATED = 3"
                         "* CAPACITY_TYPE_VIRTUAL_NETWORK_PUBLIC_IP = 4* CAPACITY_TYPE_PRIVATE_IP = 5"
                         "* CAPACITY_TYPE_SECONDARY_STORAGE = 6* CAPACITY_TYPE_VLAN = 7"
                         "* CAPACITY_TYPE_DIRECT_ATTACHED_PUBLIC_IP = 8* CAPACITY_TYPE_LOCAL_STORAGE = 9"
                         "* CAPACITY_TYPE_GPU = 19* CAPACITY_TYPE_CPU_CORE = 90.")
        fetchlatest = p.boolean("recalculate capacities and fetch the latest (capacities here are measured at "
                                "every call, so they are always the latest)", since="3.0.0")

    def execute(self) -> ListResult:
        session = self.ctx.session
        offset, limit = page_window(self.args, max_page_size(session))
        zones = select(DataCenter).where(DataCenter.removed.is_(None))
        if self.arg("zoneid"):
            zones = zones.where(DataCenter.id == self.args["zoneid"].id)
        zone_rows = list(session.scalars(zones))
        all_pools = list(session.scalars(select(StoragePool).where(
            StoragePool.removed.is_(None), StoragePool.data_center_id.in_([z.id for z in zone_rows]))))
        use = pools.usage(session, all_pools)
        items = []
        for zone in zone_rows:
            zone_pools = [p for p in all_pools if p.data_center_id == zone.id]
            if zone_pools:
                items += zone_capacities(zone, zone_pools, use)
        if self.arg("type") is not None:
            items = [i for i in items if i["type"] == self.args["type"]]
        # As upstream: by zone name, then by capacity type.
        items.sort(key=lambda i: (i["zonename"] or "", i["type"]))
        page = items[offset:] if limit is None else items[offset:offset + limit]
        return ListResult(CapacityResponse, page, len(items))
