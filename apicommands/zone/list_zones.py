"""``listZones``."""
from sqlalchemy import or_, select

from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import ALL_ROLES, ListCommand, ListResult
from cloudstack_kms.api.command import _ListParams
from cloudstack_kms.api.listing import keyword_filter, paged
from cloudstack_kms.models import DataCenter, Domain

from .responses import ZoneResponse, zone_view


class ListZones(ListCommand):
    api_name = "listZones"
    description = "Lists zones"
    roles = ALL_ROLES
    response = ZoneResponse
    related = "createZone"
    java_class = "org.apache.cloudstack.api.command.user.zone.ListZonesCmd"

    class Params(_ListParams):
        id = p.uuid("the ID of the zone", related="listZones")
        ids = p.uuid_list("the IDs of the zones, mutually exclusive with id", related="listZones", since="4.19.0")
        available = p.boolean("true if you want to retrieve all available Zones. False if you only want to "
                              "return the Zones from which you have at least one VM. Default is false.")
        domainid = p.uuid("the ID of the domain associated with the zone", related="listDomains")
        name = p.string("the name of the zone")
        networktype = p.string("the network type of the zone that the virtual machine belongs to")
        showcapacities = p.boolean("flag to display the capacity of the zones")
        showicon = p.boolean("flag to display the resource image for the zones")

    def execute(self) -> ListResult:
        stmt = select(DataCenter).where(DataCenter.removed.is_(None))
        if self.arg("id"):
            stmt = stmt.where(DataCenter.uuid == self.args["id"])
        if self.arg("ids"):
            stmt = stmt.where(DataCenter.uuid.in_(self.args["ids"]))
        if self.arg("name"):
            stmt = stmt.where(DataCenter.name == self.args["name"])
        if self.arg("networktype"):
            stmt = stmt.where(DataCenter.networktype == self.args["networktype"])
        if not self.ctx.is_root_admin:
            # Public zones, plus zones dedicated to the caller's domain or one above it.
            visible = [d.id for d in self.ctx.session.scalars(select(Domain).where(Domain.removed.is_(None)))
                       if self.ctx.domain.path.startswith(d.path)]
            stmt = stmt.where(or_(DataCenter.domain_id.is_(None), DataCenter.domain_id.in_(visible)))
        stmt = keyword_filter(stmt, self.args, DataCenter.name, DataCenter.description)
        rows, total = paged(self.ctx.session, stmt, self.args, DataCenter.id)
        domain_ids = {z.domain_id for z in rows if z.domain_id}
        domains = {d.id: d for d in self.ctx.session.scalars(
            select(Domain).where(Domain.id.in_(domain_ids)))} if domain_ids else {}
        return ListResult(ZoneResponse, [zone_view(z, domains.get(z.domain_id)) for z in rows], total)
