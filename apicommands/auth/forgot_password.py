"""``forgotPassword``: the login page asks whether password reset by e-mail is on. It is not: this
server sends no mail, so the answer is ``enabled: false`` and a reset request is refused."""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import ALL_ROLES, BaseParams, Command, FlatResult
from cloudstack_kms.errors import InvalidParameterValue


class ForgotPassword(Command):
    api_name = "forgotPassword"
    description = "Sends an email to the user with a token to reset the password. Not enabled on this server: " \
                  "without a username it answers whether the feature is enabled (false)."
    since = "4.20.0"
    roles = ALL_ROLES
    requires_auth = False
    read_only = True
    java_class = "org.apache.cloudstack.api.command.user.user.ForgotPasswordCmd"

    class Params(BaseParams):
        username = p.string("Username")
        domain = p.string("Path of the domain that the user belongs to")

    def execute(self) -> FlatResult:
        if self.arg("username"):
            raise InvalidParameterValue("Password reset is not enabled on this server; ask an administrator")
        return FlatResult({"enabled": False})
