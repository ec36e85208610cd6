"""``listResourceLimits``: the resource limits of an account or a domain (the UI's *Configure limits* tab).

No resource limit is enforced by this server and none can be set (there is no
``updateResourceLimit``), so every limit is unlimited (``max`` -1), for every resource type,
listed in upstream's ResourceType order. Whose limits, as upstream's ``searchForLimits``:
``account`` + ``domainid`` names an account, ``domainid`` alone a domain, nothing the caller's own
account. Users may only read their own account's limits.
"""
from __future__ import annotations

from cloudstack_kms.api import declare as p
from cloudstack_kms.api.access import check_account_visible, check_domain_access, find_account
from cloudstack_kms.api.command import ALL_ROLES, ListCommand, ListResult, _ListParams
from cloudstack_kms.api.declare import Out, ResponseObject
from cloudstack_kms.errors import InvalidParameterValue, PermissionDenied
from cloudstack_kms.api.listing import max_page_size, page_window
from cloudstack_kms.models import Account, Domain

#: Upstream's ResourceType names, by ordinal (the ``resourcetype`` number).
RESOURCE_TYPES = ("user_vm", "public_ip", "volume", "snapshot", "template", "project", "network", "vpc", "cpu",
                  "memory", "primary_storage", "secondary_storage", "backup", "backup_storage", "bucket",
                  "object_storage", "gpu")
UNLIMITED = -1


class ResourceLimitResponse(ResponseObject):
    object_name = "resourcelimit"
    account = Out.string("the account of the resource limit")
    domainid = Out.uuid("the domain ID of the resource limit")
    domain = Out.string("the domain name of the resource limit")
    domainpath = Out.string("path of the domain to which the resource limit belongs")
    resourcetype = Out.string("resource type. Values include 0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, "
                              "16. See the resourceType parameter for more information on these values.")
    resourcetypename = Out.string("resource type name. Values include user_vm, public_ip, volume, snapshot, "
                                  "template, network, vpc, cpu, memory, primary_storage, secondary_storage, "
                                  "backup, backup_storage, bucket, object_storage, gpu.")
    max = Out.long("the maximum number of the resource. A -1 means the resource currently has no limit.")


class ListResourceLimits(ListCommand):
    api_name = "listResourceLimits"
    description = "Lists resource limits."
    roles = ALL_ROLES
    response = ResourceLimitResponse
    java_class = "org.apache.cloudstack.api.command.user.resource.ListResourceLimitsCmd"

    class Params(_ListParams):
        account = p.string("list resources by account. Must be used with the domainId parameter.")
        domainid = p.uuid("list only resources belonging to the domain specified", entity=Domain,
                          related="listDomains")
        resourcetype = p.integer("Type of resource. Values are 0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 "
                                 "and 16 (user_vm, public_ip, volume, snapshot, template, project, network, vpc, "
                                 "cpu, memory, primary_storage, secondary_storage, backup, backup_storage, "
                                 "bucket, object_storage, gpu).")
        resourcetypename = p.string("Type of resource (wins over resourceType if both are provided). Values are: "
                                    + ", ".join(RESOURCE_TYPES) + ".")

    def _types(self) -> list[int]:
        name, number = self.arg("resourcetypename"), self.arg("resourcetype")
        if name is not None:
            if name.lower() not in RESOURCE_TYPES:
                raise InvalidParameterValue("Please specify a valid resource type name.")
            return [RESOURCE_TYPES.index(name.lower())]
        if number is not None:
            if not 0 <= number < len(RESOURCE_TYPES):
                raise InvalidParameterValue("Please specify a valid resource type.")
            return [number]
        return list(range(len(RESOURCE_TYPES)))

    def _owner(self) -> tuple[Account | None, Domain]:
        """(account, its domain) for an account's limits, or (None, domain) for a domain's."""
        ctx = self.ctx
        name, domain = self.arg("account"), self.arg("domainid")
        if name is not None and domain is None:
            raise InvalidParameterValue("Account must be specified with domainId parameter")
        if not ctx.is_admin:
            own = ctx.account
            if (name is not None and name != own.account_name) or (domain is not None and domain.id != own.domain_id):
                raise PermissionDenied(f"Account {own.account_name} may only list its own resource limits")
            return own, own.domain
        if domain is None:
            return ctx.account, ctx.domain
        check_domain_access(ctx, domain)
        if name is None:
            return None, domain
        account = find_account(ctx, name, domain)
        check_account_visible(ctx, account)
        return account, domain

    def execute(self) -> ListResult:
        account, domain = self._owner()
        types = self._types()
        keyword = (self.arg("keyword") or "").lower()
        names = [RESOURCE_TYPES[t] for t in types if keyword in RESOURCE_TYPES[t]]
        offset, limit = page_window(self.args, max_page_size(self.ctx.session))
        page = names[offset:None if limit is None else offset + limit]
        owner = {"account": account.account_name if account else None, "domainid": domain.uuid,
                 "domain": domain.name, "domainpath": domain.display_path}
        return ListResult(ResourceLimitResponse,
                          [{**owner, "resourcetype": str(RESOURCE_TYPES.index(n)), "resourcetypename": n,
                            "max": UNLIMITED} for n in page], len(names))
