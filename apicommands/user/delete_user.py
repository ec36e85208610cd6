"""``deleteUser``: removes one user of an account (never a built-in one)."""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.access import check_user_access
from cloudstack_kms.api.command import ADMINS, BaseParams, Command, SuccessResult
from cloudstack_kms.models import User
from cloudstack_kms.services import tenancy


class DeleteUser(Command):
    api_name = "deleteUser"
    description = "Deletes a user for an account"
    roles = ADMINS
    response = None
    event_type = "USER.DELETE"
    event_resource_type = "User"
    java_class = "org.apache.cloudstack.api.command.admin.user.DeleteUserCmd"

    class Params(BaseParams):
        id = p.uuid("id of the user to be deleted", required=True, entity=User, related="listUsers")

    def execute(self) -> SuccessResult:
        user: User = self.args["id"]
        check_user_access(self.ctx, user)
        tenancy.delete_user(self.ctx.session, user)
        self.event_resource = user
        self.event_account = user.account
        return SuccessResult()

    def event_description(self) -> str:
        return f"deleting User. User Id: {self.args['id'].uuid}"
