"""``listDomainChildren``: the children of a domain (the caller's own by default), or its whole subtree.

The web UI's Domains page builds its tree from it: ``listDomains&id=<own domain>`` for the root
node, then ``listDomainChildren&id=<node>&listAll=true`` each time a node is expanded.

As upstream's ``searchForDomainChildren``: ``id`` must be in the caller's scope; without
``isrecursive`` (or with ``listall``) only the direct children are listed; with ``isrecursive``
and without ``listall`` every domain below ``id`` (not ``id`` itself). ``name`` and ``keyword``
match parts of the name. Only active domains, in id order.
"""
from sqlalchemy import select

from cloudstack_kms.api import declare as p
from cloudstack_kms.api.access import check_domain_access
from cloudstack_kms.api.command import ADMINS, ListCommand, ListResult, _ListParams
from cloudstack_kms.api.listing import keyword_filter, paged
from cloudstack_kms.models import Domain
from cloudstack_kms.services import tenancy

from .responses import DomainResponse, domain_view


class ListDomainChildren(ListCommand):
    api_name = "listDomainChildren"
    description = "Lists all children domains belonging to a specified domain"
    roles = ADMINS
    response = DomainResponse
    related = "listDomains"
    java_class = "org.apache.cloudstack.api.command.admin.domain.ListDomainChildrenCmd"

    class Params(_ListParams):
        id = p.uuid("list children domain by parent domain ID.", entity=Domain, related="listDomains")
        name = p.string("list children domains by name")
        isrecursive = p.boolean("to return the entire tree, use the value \"true\". To return the first level "
                                "children, use the value \"false\".")
        listall = p.boolean("If set to false, list only resources belonging to the command's caller; if set to "
                            "true - list resources that the caller is authorized to see. Default value is false")
        showicon = p.boolean("flag to display the resource icon for domains")

    def execute(self) -> ListResult:
        ctx, session = self.ctx, self.ctx.session
        parent: Domain | None = self.arg("id")
        if parent is not None:
            check_domain_access(ctx, parent)
        else:
            parent = ctx.domain
        stmt = select(Domain).where(Domain.removed.is_(None), Domain.state == tenancy.STATE_ACTIVE)
        if self.arg("isrecursive") and not self.arg("listall"):
            stmt = stmt.where(Domain.path.startswith(parent.path, autoescape=True), Domain.id != parent.id)
        else:
            stmt = stmt.where(Domain.parent == parent.id)
        if self.arg("name") is not None:
            stmt = stmt.where(Domain.name.contains(self.args["name"], autoescape=True))
        stmt = keyword_filter(stmt, self.args, Domain.name)
        rows, total = paged(session, stmt, self.args, Domain.id)
        parent_ids = {d.parent for d in rows if d.parent is not None}
        parents = {d.id: d for d in session.scalars(select(Domain).where(Domain.id.in_(parent_ids)))} \
            if parent_ids else {}
        children = tenancy.child_counts(session, [d.id for d in rows])
        # As upstream (createDomainResponse), without the resource counts listDomains adds.
        return ListResult(DomainResponse, [domain_view(d, parents.get(d.parent), children.get(d.id, 0) > 0)
                                           for d in rows], total)
