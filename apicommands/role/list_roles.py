"""``listRoles``: the roles an account can be given, as the web UI's Add account form reads them.

Visibility follows upstream's rule that a caller only sees roles whose permissions its own role
covers: a root admin sees every role; other callers see the roles whose type does not rank above
their own (a domain admin: Domain Admin and User; a resource admin also Resource Admin), never an
Admin-type role. All filters given apply together; roles are listed in id order.

Roles here are always enabled and public (no command disables or hides one), so ``state``
``enabled`` lists them all and ``disabled`` none.
"""
from sqlalchemy import false, select

from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import ADMINS, ListCommand, ListResult, _ListParams
from cloudstack_kms.errors import InvalidParameterValue
from cloudstack_kms.api.listing import keyword_filter, paged
from cloudstack_kms.models import Role
from cloudstack_kms.models.tenancy import ROLE_ADMIN, ROLE_TYPES
from cloudstack_kms.services.access import role_rank

from .responses import ROLE_STATE_ENABLED, RoleResponse, role_view

ROLE_STATES = ("enabled", "disabled")


class ListRoles(ListCommand):
    api_name = "listRoles"
    description = "Lists dynamic roles in CloudStack"
    since = "4.9.0"
    roles = ADMINS
    response = RoleResponse
    java_class = "org.apache.cloudstack.api.command.admin.acl.ListRolesCmd"

    class Params(_ListParams):
        id = p.uuid("List role by role ID.", entity=Role, related="listRoles")
        name = p.string("List role by role name.")
        type = p.string("List role by role type, valid options are: Admin, ResourceAdmin, DomainAdmin, User.")
        state = p.string("List role by role type status, valid options are: Enabled, Disabled", since="4.20.0")

    def execute(self) -> ListResult:
        ctx = self.ctx
        caller_type = ctx.account.role_type
        visible = [t for t in ROLE_TYPES if ctx.is_root_admin
                   or (t != ROLE_ADMIN and role_rank(t) >= role_rank(caller_type))]
        stmt = select(Role).where(Role.removed.is_(None), Role.role_type.in_(visible))
        role: Role | None = self.arg("id")
        if role is not None:
            stmt = stmt.where(Role.id == role.id)
        if self.arg("name") is not None:
            stmt = stmt.where(Role.name.contains(self.args["name"], autoescape=True))
        role_type = self.arg("type")
        if role_type is not None:
            if role_type not in ROLE_TYPES:
                raise InvalidParameterValue(f"Invalid role type: {role_type}; valid options are: "
                                            f"{', '.join(ROLE_TYPES)}")
            stmt = stmt.where(Role.role_type == role_type)
        state = self.arg("state")
        if state is not None:
            if state.lower() not in ROLE_STATES:
                raise InvalidParameterValue(f"Invalid role state: {state}; valid options are: Enabled, Disabled")
            if state.lower() != ROLE_STATE_ENABLED:
                stmt = stmt.where(false())  # no role is ever disabled here
        stmt = keyword_filter(stmt, self.args, Role.name)
        rows, total = paged(ctx.session, stmt, self.args, Role.id)
        return ListResult(RoleResponse, [role_view(r) for r in rows], total)
