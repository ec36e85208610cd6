"""``disableUser`` (async, as upstream): the user can no longer log in nor sign requests."""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.access import check_user_access
from cloudstack_kms.api.command import ADMINS, AsyncCommand, AsyncParams, ObjectResult
from cloudstack_kms.models import User
from cloudstack_kms.services import tenancy

from .responses import UserResponse, user_view


class DisableUser(AsyncCommand):
    api_name = "disableUser"
    description = "Disables a user account"
    roles = ADMINS
    response = UserResponse
    related = "listUsers"
    instance_type = "User"
    event_type = "USER.DISABLE"
    java_class = "org.apache.cloudstack.api.command.admin.user.DisableUserCmd"

    class Params(AsyncParams):
        id = p.uuid("Disables user by user ID.", required=True, entity=User, related="listUsers")

    def _check(self) -> User:
        user: User = self.args["id"]
        check_user_access(self.ctx, user)
        self.event_account = user.account
        return user

    def instance(self) -> User:
        # Access is checked at submission, as upstream's @ACL on ``id``; again in the job.
        return self._check()

    def execute(self) -> ObjectResult:
        user = tenancy.disable_user(self.ctx.session, self._check())
        return ObjectResult(UserResponse, user_view(user, self.ctx.domain))

    def event_description(self) -> str:
        return f"disabling user: {self.args['id'].uuid}"
