"""``listDiskOfferings``."""
from sqlalchemy import select

from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import ALL_ROLES, ListCommand, ListResult, _ListParams
from cloudstack_kms.api.listing import keyword_filter, paged
from cloudstack_kms.models.volume import DiskOffering

from .responses import DiskOfferingResponse, offering_view


class ListDiskOfferings(ListCommand):
    api_name = "listDiskOfferings"
    description = "Lists all available disk offerings."
    roles = ALL_ROLES
    response = DiskOfferingResponse
    related = "createDiskOffering"
    java_class = "org.apache.cloudstack.api.command.user.offering.ListDiskOfferingsCmd"

    class Params(_ListParams):
        id = p.uuid("ID of the disk offering", related="listDiskOfferings")
        name = p.string("name of the disk offering")
        zoneid = p.uuid("id of zone disk offering is associated with", related="listZones", since="4.13")
        domainid = p.uuid("the ID of the domain of the disk offering.", related="listDomains")
        encrypt = p.boolean("listed offerings support disk encryption", since="4.18")
        isrecursive = p.boolean("defaults to false, but if true, lists all resources from the parent specified "
                                "by the domainId till leaves.")
        listall = p.boolean("If set to false, list only resources belonging to the command's caller; if set to "
                            "true - list resources that the caller is authorized to see. Default value is false")

    def execute(self) -> ListResult:
        stmt = select(DiskOffering).where(DiskOffering.removed.is_(None), DiskOffering.state == "Active")
        if self.arg("id"):
            stmt = stmt.where(DiskOffering.uuid == self.args["id"])
        if self.arg("name"):
            stmt = stmt.where(DiskOffering.name == self.args["name"])
        if self.arg("encrypt") is not None:
            stmt = stmt.where(DiskOffering.encrypt.is_(self.args["encrypt"]))
        if not self.ctx.is_admin:
            stmt = stmt.where(DiskOffering.display_offering.is_(True))
        stmt = keyword_filter(stmt, self.args, DiskOffering.name, DiskOffering.display_text)
        rows, total = paged(self.ctx.session, stmt, self.args, DiskOffering.id)
        return ListResult(DiskOfferingResponse, [offering_view(o) for o in rows], total)
