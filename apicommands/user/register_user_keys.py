"""``registerUserKeys``: a new key pair replaces the old one."""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.access import check_user_access
from cloudstack_kms.api.command import ALL_ROLES, BaseParams, Command, ObjectResult
from cloudstack_kms.models import User
from cloudstack_kms.services import users

from .responses import UserKeysResponse


class RegisterUserKeys(Command):
    api_name = "registerUserKeys"
    description = "This command allows a user to register for the developer API, returning a secret key and an " \
                  "API key. This request is made through the integration API port, so it is a privileged command " \
                  "and must be made on behalf of a user. It is up to the implementer just how the username and " \
                  "password are entered, and then how that translates to an integration API request. Both secret " \
                  "key and API key should be returned to the user"
    roles = ALL_ROLES
    response = UserKeysResponse
    event_type = "REGISTER.USER.KEY"
    event_resource_type = "User"
    java_class = "org.apache.cloudstack.api.command.admin.user.RegisterCmd"

    class Params(BaseParams):
        id = p.uuid("User id", required=True, entity=User, related="listUsers")

    def execute(self) -> ObjectResult:
        user: User = self.args["id"]
        check_user_access(self.ctx, user)
        api_key, secret = users.register_keys(self.ctx.session, self.ctx.state.master_key, user)
        self.event_resource = user
        self.event_account = user.account
        return ObjectResult(UserKeysResponse, {"apikey": api_key, "secretkey": secret})

    def event_description(self) -> str:
        return f"Registering keys for user {self.args['id'].username}"
