"""``listDomains``: the caller's domain, or with ``listall`` its subtree; root admins see every domain."""
from sqlalchemy import select

from cloudstack_kms.api import declare as p
from cloudstack_kms.api.access import check_domain_access
from cloudstack_kms.api.command import ADMINS, ListCommand, ListResult, _ListParams
from cloudstack_kms.errors import InvalidParameterValue
from cloudstack_kms.api.listing import keyword_filter, paged
from cloudstack_kms.models import Domain
from cloudstack_kms.services import tenancy

from .responses import DomainResponse, domain_view

DETAILS = ("all", "resource", "min")


class ListDomains(ListCommand):
    api_name = "listDomains"
    description = "Lists domains and provides detailed information for listed domains"
    roles = ADMINS
    response = DomainResponse
    related = "createDomain"
    java_class = "org.apache.cloudstack.api.command.admin.domain.ListDomainsCmd"

    class Params(_ListParams):
        id = p.uuid("List domain by domain ID.", entity=Domain, related="listDomains")
        level = p.integer("List domains by domain level.")
        name = p.string("List domain by domain name.")
        listall = p.boolean("If set to false, list only resources belonging to the command's caller; if set to "
                            "true - list resources that the caller is authorized to see. Default value is false")
        details = p.string_list("comma separated list of domain details requested, value can be a list of "
                                "[ all, resource, min]")
        showicon = p.boolean("flag to display the resource icon for domains")

    def execute(self) -> ListResult:
        ctx, session = self.ctx, self.ctx.session
        if any(d not in DETAILS for d in self.arg("details", [])):
            raise InvalidParameterValue("The details parameter contains a non permitted value. The allowed values "
                                        "are [all, resource, min]")
        stmt = select(Domain).where(Domain.removed.is_(None), Domain.state == tenancy.STATE_ACTIVE)
        domain: Domain | None = self.arg("id")
        if domain is not None:
            check_domain_access(ctx, domain)
            stmt = stmt.where(Domain.id == domain.id)
        elif not ctx.is_root_admin:
            # As upstream: without listall, only the caller's own domain; with it, the subtree.
            if self.arg("listall"):
                stmt = stmt.where(Domain.path.startswith(ctx.domain.path, autoescape=True))
            else:
                stmt = stmt.where(Domain.id == ctx.domain.id)
        if self.arg("name") is not None:
            stmt = stmt.where(Domain.name == self.args["name"])
        if self.arg("level") is not None:
            stmt = stmt.where(Domain.level == self.args["level"])
        stmt = keyword_filter(stmt, self.args, Domain.name)
        rows, total = paged(session, stmt, self.args, Domain.id)
        parent_ids = {d.parent for d in rows if d.parent is not None}
        parents = {d.id: d for d in session.scalars(select(Domain).where(Domain.id.in_(parent_ids)))} \
            if parent_ids else {}
        children = tenancy.child_counts(session, [d.id for d in rows])
        resources = tenancy.domain_resource_usage(session, rows) \
            if tenancy.wants_resource_fields(self.arg("details")) else {}
        return ListResult(DomainResponse, [domain_view(d, parents.get(d.parent), children.get(d.id, 0) > 0,
                                                       resources.get(d.id)) for d in rows], total)
