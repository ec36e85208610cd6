"""``getUserKeys``."""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.access import check_user_access
from cloudstack_kms.api.command import ALL_ROLES, BaseParams, Command, ObjectResult
from cloudstack_kms.models import User
from cloudstack_kms.services import users

from .responses import UserKeysResponse


class GetUserKeys(Command):
    api_name = "getUserKeys"
    description = "This command allows the user to query the seceret and API keys for the account"
    since = "4.10.0"
    roles = ALL_ROLES
    response = UserKeysResponse
    java_class = "org.apache.cloudstack.api.command.admin.user.GetUserKeysCmd"

    class Params(BaseParams):
        id = p.uuid("ID of the user whose keys are required", required=True, entity=User, related="listUsers")

    def execute(self) -> ObjectResult:
        user: User = self.args["id"]
        check_user_access(self.ctx, user)
        api_key, secret = users.get_keys(self.ctx.state.master_key, user)
        return ObjectResult(UserKeysResponse, {"apikey": api_key, "secretkey": secret})
