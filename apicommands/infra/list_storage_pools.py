"""``listStoragePools``: the server's primary storage, with its size and use measured on the filesystem."""
from sqlalchemy import select

from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import ListCommand, ListResult, _ListParams
from cloudstack_kms.api.declare import Out, ResponseObject
from cloudstack_kms.api.listing import keyword_filter, paged
from cloudstack_kms.models import DataCenter
from cloudstack_kms.models.volume import StoragePool
from cloudstack_kms.storage import pools

from .common import INFRA_ADMINS


class StoragePoolResponse(ResponseObject):
    object_name = "storagepool"
    id = Out.uuid("the ID of the storage pool")
    name = Out.string("the name of the storage pool")
    zoneid = Out.uuid("the Zone ID of the storage pool")
    zonename = Out.string("the Zone name of the storage pool")
    ipaddress = Out.string("the IP address of the storage pool")
    path = Out.string("the storage pool path")
    created = Out.date("the date and time the storage pool was created")
    type = Out.string("the storage pool type")
    disksizetotal = Out.long("the total disk size of the storage pool")
    disksizeallocated = Out.long("the host's currently allocated disk size")
    disksizeused = Out.long("the host's currently used disk size")
    state = Out.string("the state of the storage pool")
    scope = Out.string("the scope of the storage pool")
    provider = Out.string("Storage provider for this pool")
    managed = Out.boolean("whether this pool is managed or not")
    hasannotations = Out.boolean("true if the entity/resource has annotations")


def storage_pool_view(pool: StoragePool, zone: DataCenter | None, use: pools.PoolUsage) -> dict:
    return {
        "id": pool.uuid, "name": pool.name, "zoneid": zone.uuid if zone else None,
        "zonename": zone.name if zone else None, "ipaddress": pool.host_address, "path": pool.path,
        "created": pool.created, "type": pool.pool_type, "disksizetotal": use.capacity_bytes,
        "disksizeallocated": use.allocated_bytes, "disksizeused": use.used_bytes, "state": pool.status,
        "scope": pool.scope, "provider": pool.storage_provider_name, "managed": False, "hasannotations": False,
    }


class ListStoragePools(ListCommand):
    api_name = "listStoragePools"
    description = "Lists storage pools."
    roles = INFRA_ADMINS
    response = StoragePoolResponse
    java_class = "org.apache.cloudstack.api.command.admin.storage.ListStoragePoolsCmd"

    class Params(_ListParams):
        id = p.uuid("the ID of the storage pool", entity=StoragePool, related="listStoragePools")
        name = p.string("the name of the storage pool")
        zoneid = p.uuid("the Zone ID for the storage pool", entity=DataCenter, related="listZones")

    def execute(self) -> ListResult:
        session = self.ctx.session
        stmt = select(StoragePool).where(StoragePool.removed.is_(None))
        if self.arg("id"):
            stmt = stmt.where(StoragePool.id == self.args["id"].id)
        if self.arg("name"):
            stmt = stmt.where(StoragePool.name == self.args["name"])
        if self.arg("zoneid"):
            stmt = stmt.where(StoragePool.data_center_id == self.args["zoneid"].id)
        stmt = keyword_filter(stmt, self.args, StoragePool.name)
        rows, total = paged(session, stmt, self.args, StoragePool.id)
        zones = {z.id: z for z in session.scalars(select(DataCenter).where(
            DataCenter.id.in_({r.data_center_id for r in rows})))}
        use = pools.usage(session, rows)
        return ListResult(StoragePoolResponse, [storage_pool_view(r, zones.get(r.data_center_id), use[r.id])
                                                for r in rows], total)
