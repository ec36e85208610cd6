"""``deleteDomain`` (async): an empty domain, or with ``cleanup=true`` its whole subtree and accounts."""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.access import check_domain_access
from cloudstack_kms.api.command import AsyncCommand, AsyncParams, SuccessResult
from cloudstack_kms.models import Domain
from cloudstack_kms.models.tenancy import ROLE_ADMIN, ROLE_DOMAIN_ADMIN
from cloudstack_kms.services import tenancy


class DeleteDomain(AsyncCommand):
    api_name = "deleteDomain"
    description = "Deletes a specified domain"
    roles = frozenset({ROLE_ADMIN, ROLE_DOMAIN_ADMIN})
    response = None
    instance_type = "Domain"
    event_type = "DOMAIN.DELETE"
    java_class = "org.apache.cloudstack.api.command.admin.domain.DeleteDomainCmd"

    class Params(AsyncParams):
        id = p.uuid("ID of domain to delete", required=True, entity=Domain, related="listDomains")
        cleanup = p.boolean("True if all domain resources (child domains, Accounts) have to be cleaned up, "
                            "false otherwise")

    def _check(self) -> Domain:
        domain: Domain = self.args["id"]
        tenancy.check_domain_deletable(domain)
        check_domain_access(self.ctx, domain)
        doomed = tenancy.subtree(self.ctx.session, domain) if self.arg("cleanup") else [domain]
        tenancy.check_may_remove_domain(self.ctx.session, self.ctx.account, domain, doomed)
        return domain

    def instance(self) -> Domain:
        # Checked at submission too, so an impossible delete is refused at once instead of by a failed job.
        return self._check()

    def execute(self) -> SuccessResult:
        domain = self._check()
        tenancy.delete_domain(self.ctx.session, domain, cleanup=bool(self.arg("cleanup")), caller=self.ctx.account)
        return SuccessResult()

    def event_description(self) -> str:
        return f"deleting domain with ID: {self.args['id'].uuid}"
