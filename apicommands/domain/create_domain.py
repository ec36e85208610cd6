"""``createDomain``: a sub-domain of ROOT or of a domain the caller administers."""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.access import check_domain_access
from cloudstack_kms.api.command import BaseParams, Command, ObjectResult
from cloudstack_kms.models import Domain
from cloudstack_kms.models.tenancy import ROLE_ADMIN, ROLE_DOMAIN_ADMIN
from cloudstack_kms.services import tenancy

from .responses import DomainResponse, domain_view


class CreateDomain(Command):
    api_name = "createDomain"
    description = "Creates a domain"
    roles = frozenset({ROLE_ADMIN, ROLE_DOMAIN_ADMIN})
    response = DomainResponse
    related = "listDomains"
    event_type = "DOMAIN.CREATE"
    event_resource_type = "Domain"
    java_class = "org.apache.cloudstack.api.command.admin.domain.CreateDomainCmd"

    class Params(BaseParams):
        name = p.string("creates domain with this name", required=True)
        parentdomainid = p.uuid("assigns new domain a parent domain by domain ID of the parent.  If no parent domain "
                                "is specified, the ROOT domain is assumed.", entity=Domain, related="listDomains")
        networkdomain = p.string("Network domain for networks in the domain")
        domainid = p.string("Domain UUID, required for adding domain from another Region")

    def execute(self) -> ObjectResult:
        session = self.ctx.session
        parent: Domain = self.arg("parentdomainid") or session.get(Domain, tenancy.ROOT_DOMAIN_ID)
        check_domain_access(self.ctx, parent)
        tenancy.check_custom_uuid(self.arg("domainid"), "domainid")
        domain = tenancy.create_domain(session, name=self.args["name"], parent=parent, owner=self.ctx.account,
                                       network_domain=self.arg("networkdomain"), uuid=self.arg("domainid"))
        self.event_resource = domain
        return ObjectResult(DomainResponse, domain_view(domain, parent, has_child=False))

    def event_description(self) -> str:
        return f"creating Domain. Domain Name: {self.args['name']}"
