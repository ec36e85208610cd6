"""``logout``: declared here for ``listApis``; the flow lives in ``cloudstack_kms.api.login``."""
from cloudstack_kms.api.command import ALL_ROLES, BaseParams, Command


class Logout(Command):
    api_name = "logout"
    description = "Logs out the user"
    roles = ALL_ROLES
    requires_auth = False
    java_class = "org.apache.cloudstack.api.command.admin.user.LogoutCmd"

    class Params(BaseParams):
        pass
