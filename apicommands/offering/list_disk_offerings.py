"""``listDiskOfferings``.

Who sees what (upstream's rules): root admins every offering; other callers the public ones and
those limited to their domain or a domain above it, plus, for a domain admin with ``isrecursive``,
those of domains under its own. ``account`` + ``domainid`` list what that account may use (the
web UI's volume form asks so for the volume's owner); ``domainid`` alone lists the offerings
limited to exactly that domain (with ``isrecursive``, to it or a domain under it). ``zoneid`` keeps
the offerings usable in that zone. (``listall`` is not declared: who sees what does not depend on it.)
"""
from sqlalchemy import or_, select

from cloudstack_kms.api import declare as p
from cloudstack_kms.api.access import check_account_visible, find_account
from cloudstack_kms.api.command import ALL_ROLES, ListCommand, ListResult, _ListParams
from cloudstack_kms.errors import PermissionDenied
from cloudstack_kms.api.listing import keyword_filter, paged
from cloudstack_kms.models import DataCenter, Domain
from cloudstack_kms.models.volume import DiskOffering, StoragePool

from . import restrictions
from .responses import DiskOfferingResponse, offering_views
from .states import offering_state


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
        zoneid = p.uuid("id of zone disk offering is associated with", entity=DataCenter, related="listZones",
                        since="4.13")
        domainid = p.uuid("the ID of the domain of the disk offering (offerings limited to it); with account, the "
                          "domain of that account",
                          entity=Domain, related="listDomains")
        account = p.string("list the disk offerings the account may use. Must be used with the domainId "
                           "parameter.")
        encrypt = p.boolean("listed offerings support disk encryption", since="4.18")
        storageid = p.uuid("The ID of a storage pool; lists the disk offerings whose volumes it can hold (its zone, "
                           "shared storage, and storage tags the pool has: pools here carry no tags)",
                           entity=StoragePool, related="listStoragePools", since="4.17")
        state = p.string("Filter by state of the disk offering. Defaults to 'Active'. If set to 'all' shows both "
                         "Active & Inactive offerings.", since="4.19")
        isrecursive = p.boolean("defaults to false, but if true, lists all resources from the parent specified "
                                "by the domainId till leaves (for a domain admin without domainid: also the "
                                "offerings of the domains under its own).")

    def execute(self) -> ListResult:
        ctx = self.ctx
        stmt = select(DiskOffering).where(DiskOffering.removed.is_(None))
        state = offering_state(self.arg("state"))
        if state is not None:
            stmt = stmt.where(DiskOffering.state == state)
        domain, name = self.arg("domainid"), self.arg("account")
        if name is not None:
            # As for every list: an account named without domainid is looked up in the caller's domain.
            owner = find_account(ctx, name, domain or ctx.domain)
            check_account_visible(ctx, owner)
            stmt = restrictions.usable_by(stmt, owner)
        elif domain is not None:
            if not (ctx.is_root_admin or ctx.domain.path.startswith(domain.path)
                    or (ctx.is_domain_admin and domain.path.startswith(ctx.domain.path))):
                raise PermissionDenied(f"The account:{ctx.account.account_name} does not fall in the same domain "
                                       "hierarchy as the disk offering")
            stmt = restrictions.of_domain(stmt, domain, recursive=bool(self.arg("isrecursive")))
        else:
            below = ctx.is_domain_admin and bool(self.arg("isrecursive"))
            stmt = restrictions.usable_by(stmt, ctx.account, below=below)
        if self.arg("zoneid") is not None:
            stmt = restrictions.in_zone(stmt, self.args["zoneid"])
        if self.arg("storageid") is not None:
            pool = self.args["storageid"]
            stmt = restrictions.in_zone(stmt, ctx.session.get(DataCenter, pool.data_center_id))
            stmt = stmt.where(DiskOffering.use_local_storage.is_(False),
                              or_(DiskOffering.tags.is_(None), DiskOffering.tags == ""))
        if self.arg("id"):
            stmt = stmt.where(DiskOffering.uuid == self.args["id"])
        if self.arg("name"):
            stmt = stmt.where(DiskOffering.name == self.args["name"])
        if self.arg("encrypt") is not None:
            stmt = stmt.where(DiskOffering.encrypt.is_(self.args["encrypt"]))
        if not ctx.is_admin:
            stmt = stmt.where(DiskOffering.display_offering.is_(True))
        stmt = keyword_filter(stmt, self.args, DiskOffering.name, DiskOffering.display_text)
        rows, total = paged(ctx.session, stmt, self.args, DiskOffering.id)
        return ListResult(DiskOfferingResponse, offering_views(ctx.session, rows), total)
