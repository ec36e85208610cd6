"""``listUsers``: users see only themselves; admins their account, or with ``listall`` all they may see.

The web UI calls ``listUsers&username=<login name>&listall=true`` right after login and
reads ``user[0]`` (``firstname``, ``lastname``, ``roletype``).
"""
from sqlalchemy import select

from cloudstack_kms.api import declare as p
from cloudstack_kms.api.access import list_scope
from cloudstack_kms.api.command import ALL_ROLES, ListOwnedCommand, ListResult, _ListOwnedParams
from cloudstack_kms.errors import InvalidParameterValue, PermissionDenied
from cloudstack_kms.api.listing import keyword_filter, paged
from cloudstack_kms.models import Account, Domain, User
from cloudstack_kms.services import tenancy

from .responses import UserResponse, user_view

# ``usersource`` values accepted by the filter, and the stored ``user.source`` each stands for.
SOURCES = {"native": "UNKNOWN", "ldap": "LDAP", "saml2": "SAML2", "saml2disabled": "SAML2DISABLED"}


class ListUsers(ListOwnedCommand):
    api_name = "listUsers"
    description = "Lists user accounts"
    roles = ALL_ROLES
    response = UserResponse
    related = "createUser"
    java_class = "org.apache.cloudstack.api.command.admin.user.ListUsersCmd"

    class Params(_ListOwnedParams):
        id = p.uuid("List user by ID.", entity=User, related="listUsers")
        username = p.string("List user by the username")
        accounttype = p.integer("List users by account type. Valid types include admin, domain-admin, "
                                "read-only-admin, or user.")
        state = p.string("List users by state of the user account.")
        usersource = p.string("List users by their authentication source. Valid values are: native, LDAP, SAML2 "
                              "and SAML2DISABLED.", since="4.21.0.0")
        showicon = p.boolean("flag to display the resource icon for users")

    def execute(self) -> ListResult:
        ctx, session = self.ctx, self.ctx.session
        stmt = (select(User).join(Account, User.account_id == Account.id)
                .where(User.removed.is_(None), User.id != tenancy.SYSTEM_USER_ID))
        wanted: User | None = self.arg("id")
        if not ctx.is_admin:
            # As upstream, a plain user sees only itself.
            if wanted is not None and wanted.id != ctx.user.id:
                raise PermissionDenied("Calling user is not authorized to see the user requested by id")
            stmt = stmt.where(User.id == ctx.user.id)
        else:
            scope = dict(self.args)
            if wanted is not None:
                # An id is looked up in everything the caller may see, not only its own account.
                scope["listall"] = True
                stmt = stmt.where(User.id == wanted.id)
            if scope.get("account") is not None and scope.get("domainid") is None:
                scope["domainid"] = ctx.domain  # upstream looks an account name up in the caller's domain
            stmt = list_scope(ctx, stmt, User.account_id, Account.domain_id, scope)
            if not ctx.is_root_admin:
                # Pin domain admins to their subtree with an escaped prefix as well: list_scope's LIKE
                # does not escape '_' and '%', which domain names may contain.
                stmt = stmt.join(Domain, Account.domain_id == Domain.id).where(
                    Domain.path.startswith(ctx.domain.path, autoescape=True))
        if self.arg("username") is not None:
            stmt = stmt.where(User.username == self.args["username"])
        if self.arg("accounttype") is not None:
            stmt = stmt.where(Account.type == self.args["accounttype"])
        if self.arg("state") is not None:
            stmt = stmt.where(User.state == self.args["state"].lower())
        if self.arg("usersource") is not None:
            source = SOURCES.get(self.args["usersource"].lower())
            if source is None:
                raise InvalidParameterValue(f"Invalid user source: {self.args['usersource']}. Valid values are: "
                                            "native, LDAP, SAML2 and SAML2DISABLED.")
            stmt = stmt.where(User.source == source)
        stmt = keyword_filter(stmt, self.args, User.username, User.firstname, User.lastname, User.email, User.state,
                              Account.account_name)
        rows, total = paged(session, stmt, self.args, User.id)
        return ListResult(UserResponse, [user_view(u, ctx.domain) for u in rows], total)
