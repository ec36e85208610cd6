"""``listAccounts``: users see their own account; admins their own, or with ``listall`` all they may see."""
from sqlalchemy import select

from cloudstack_kms.api import declare as p
from cloudstack_kms.api.access import check_account_visible, check_domain_access
from cloudstack_kms.api.command import ALL_ROLES, ListOwnedCommand, ListResult, _ListOwnedParams
from cloudstack_kms.errors import InvalidParameterValue, PermissionDenied
from cloudstack_kms.api.listing import keyword_filter, paged
from cloudstack_kms.models import Account, Domain
from cloudstack_kms.services import tenancy

from .responses import AccountResponse, account_view

DETAILS = ("all", "resource", "min")


class ListAccounts(ListOwnedCommand):
    api_name = "listAccounts"
    description = "Lists accounts and provides detailed account information for listed accounts"
    roles = ALL_ROLES
    response = AccountResponse
    related = "createAccount"
    java_class = "org.apache.cloudstack.api.command.user.account.ListAccountsCmd"

    class Params(_ListOwnedParams):
        id = p.uuid("list account by account ID", entity=Account, related="listAccounts")
        name = p.string("list account by account name")
        accounttype = p.integer("list accounts by account type. Valid account types are 1 (admin), 2 "
                                "(domain-admin), and 0 (user).")
        state = p.string("list accounts by state. Valid states are enabled, disabled, and locked.")
        iscleanuprequired = p.boolean("list accounts by cleanuprequired attribute (values are true or false)")
        details = p.string_list("comma separated list of account details requested, value can be a list of "
                                "[ all, resource, min]")
        showicon = p.boolean("flag to display the resource icon for accounts")

    def execute(self) -> ListResult:
        ctx, session = self.ctx, self.ctx.session
        if any(d not in DETAILS for d in self.arg("details", [])):
            raise InvalidParameterValue("The details parameter contains a non permitted value. The allowed values "
                                        "are [all, resource, min]")
        domain: Domain | None = self.arg("domainid")
        account: Account | None = self.arg("id")
        recursive = bool(self.arg("isrecursive"))
        if domain is not None:
            if ctx.is_admin:
                check_domain_access(ctx, domain)
            elif domain.id != ctx.domain.id:
                raise PermissionDenied(f"Account {ctx.account.account_name} does not have permission to operate "
                                       f"within domain id={domain.uuid}")
        # The scope, as upstream's searchForAccounts decides it.
        if account is not None:
            check_account_visible(ctx, account)
        elif self.arg("listall") and ctx.is_admin:
            domain, recursive = domain or ctx.domain, True
        elif not ctx.is_admin or domain is None:
            account = ctx.account
        stmt = (select(Account).join(Domain, Account.domain_id == Domain.id)
                .where(Account.removed.is_(None), Account.id != tenancy.SYSTEM_ACCOUNT_ID))
        if account is not None:
            stmt = stmt.where(Account.id == account.id)
        if domain is not None:
            stmt = stmt.where(Domain.path.startswith(domain.path, autoescape=True) if recursive
                              else Account.domain_id == domain.id)
        name = self.arg("name") or self.arg("account")
        if name is not None:
            stmt = stmt.where(Account.account_name == name)
        if self.arg("accounttype") is not None:
            stmt = stmt.where(Account.type == self.args["accounttype"])
        if self.arg("state") is not None:
            stmt = stmt.where(Account.state == self.args["state"].lower())
        if self.arg("iscleanuprequired") is not None:
            stmt = stmt.where(Account.cleanup_needed.is_(bool(self.args["iscleanuprequired"])))
        stmt = keyword_filter(stmt, self.args, Account.account_name)
        rows, total = paged(session, stmt, self.args, Account.id)
        users = tenancy.account_users(session, rows)
        resources = tenancy.account_resource_usage(session, rows) \
            if tenancy.wants_resource_fields(self.arg("details")) else {}
        return ListResult(AccountResponse, [account_view(a, users[a.id], ctx.domain, resources.get(a.id))
                                            for a in rows], total)
