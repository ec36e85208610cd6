"""``listVolumes`` (with the 4.23 ``kmskeyid`` filter)."""
from sqlalchemy import false, select

from cloudstack_kms.api import declare as p
from cloudstack_kms.api.access import list_scope
from cloudstack_kms.api.command import ALL_ROLES, ListOwnedCommand, ListResult, _ListOwnedParams
from cloudstack_kms.errors import invalid_uuid
from cloudstack_kms.api.listing import keyword_filter, paged
from cloudstack_kms.models import DataCenter
from cloudstack_kms.models.kms import KmsKey
from cloudstack_kms.models.volume import DiskOffering, StoragePool, Volume
from cloudstack_kms.services import volumes

from .responses import VolumeResponse


class ListVolumes(ListOwnedCommand):
    api_name = "listVolumes"
    description = "Lists all volumes."
    roles = ALL_ROLES
    response = VolumeResponse
    related = "createVolume"
    java_class = "org.apache.cloudstack.api.command.user.volume.ListVolumesCmd"

    class Params(_ListOwnedParams):
        id = p.uuid("the ID of the disk volume", related="listVolumes")
        ids = p.uuid_list("the IDs of the volumes, mutually exclusive with id", related="listVolumes", since="4.9")
        name = p.string("the name of the disk volume")
        type = p.string("the type of disk volume")
        state = p.string("state of the volume. Possible values are: Ready, Allocated, Destroy, Expunging, Expunged.")
        zoneid = p.uuid("the ID of the availability zone", related="listZones")
        diskofferingid = p.uuid("list volumes by disk offering", related="listDiskOfferings", since="4.4")
        kmskeyid = p.uuid("list volumes whose data encryption key is wrapped by this KMS key", since="4.23.0",
                          related="listKMSKeys")
        isencrypted = p.boolean("list only volumes that are encrypted", since="4.19.1")
        storageid = p.uuid("the ID of the storage pool", entity=StoragePool, related="listStoragePools", since="4.3")
        serviceofferingid = p.uuid("list volumes by service offering (ROOT volumes of instances); this server runs "
                                   "no instances and has no service offering, so any ID is refused as unknown",
                                   related="listServiceOfferings", since="4.19.1")
        tags = p.map_("List resources by tags (key/value pairs); volumes carry no tags here, so a tag matches none")
        retrieveonlyresourcecount = p.boolean("Whether to retrieve only the count of volumes", since="4.19.1")

    def execute(self) -> ListResult:
        session = self.ctx.session
        if self.arg("serviceofferingid"):  # none exists
            raise invalid_uuid(self.api_name, "serviceofferingid", self.args["serviceofferingid"])
        stmt = select(Volume).where(Volume.removed.is_(None))
        stmt = list_scope(self.ctx, stmt, Volume.account_id, Volume.domain_id, self.args)
        if not self.ctx.is_admin:
            stmt = stmt.where(Volume.display_volume.is_(True))
        if self.arg("id"):
            stmt = stmt.where(Volume.uuid == self.args["id"])
        if self.arg("ids"):
            stmt = stmt.where(Volume.uuid.in_(self.args["ids"]))
        if self.arg("name"):
            stmt = stmt.where(Volume.name == self.args["name"])
        if self.arg("type"):
            stmt = stmt.where(Volume.volume_type == self.args["type"].upper())
        if self.arg("state"):
            stmt = stmt.where(Volume.state == self.args["state"])
        if self.arg("zoneid"):
            stmt = stmt.where(Volume.data_center_id.in_(select(DataCenter.id).where(
                DataCenter.uuid == self.args["zoneid"])))
        if self.arg("diskofferingid"):
            stmt = stmt.where(Volume.disk_offering_id.in_(select(DiskOffering.id).where(
                DiskOffering.uuid == self.args["diskofferingid"])))
        if self.arg("kmskeyid"):
            stmt = stmt.where(Volume.kms_key_id.in_(select(KmsKey.id).where(KmsKey.uuid == self.args["kmskeyid"])))
        if self.arg("storageid") is not None:
            stmt = stmt.where(Volume.pool_id == self.args["storageid"].id)
        if p.map_pairs(self.arg("tags") or []):
            stmt = stmt.where(false())  # no volume has a tag
        if self.arg("isencrypted") is not None:
            stmt = stmt.where(Volume.encrypt_format.is_not(None) if self.args["isencrypted"]
                              else Volume.encrypt_format.is_(None))
        stmt = keyword_filter(stmt, self.args, Volume.name)
        rows, total = paged(session, stmt, self.args, Volume.id)
        if self.arg("retrieveonlyresourcecount"):
            return ListResult(VolumeResponse, [], total)
        return ListResult(VolumeResponse, [volumes.volume_view(session, v, self.ctx.is_admin,
                                                               self.ctx.account) for v in rows], total)
