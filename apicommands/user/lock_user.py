"""``lockUser``: an enabled user is locked (and its account, when no user of it is left enabled)."""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.access import check_user_access
from cloudstack_kms.api.command import ADMINS, BaseParams, Command, ObjectResult
from cloudstack_kms.models import User
from cloudstack_kms.services import tenancy

from .responses import UserResponse, user_view


class LockUser(Command):
    api_name = "lockUser"
    description = "Locks a user account"
    roles = ADMINS
    response = UserResponse
    related = "listUsers"
    event_type = "USER.LOCK"
    event_resource_type = "User"
    java_class = "org.apache.cloudstack.api.command.admin.user.LockUserCmd"

    class Params(BaseParams):
        id = p.uuid("Locks user by user ID.", required=True, entity=User, related="listUsers")

    def execute(self) -> ObjectResult:
        user: User = self.args["id"]
        check_user_access(self.ctx, user)
        tenancy.lock_user(self.ctx.session, user)
        self.event_resource = user
        self.event_account = user.account
        return ObjectResult(UserResponse, user_view(user, self.ctx.domain))

    def event_description(self) -> str:
        return f"locking User. User Id: {self.args['id'].uuid}"
