"""``login``: declared here for ``listApis``; the session flow lives in ``cloudstack_kms.api.login``."""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import ALL_ROLES, BaseParams, Command


class Login(Command):
    api_name = "login"
    description = "Logs a user into the CloudStack. A successful login attempt will generate a JSESSIONID cookie " \
                  "value that can be passed in subsequent Query command calls until the \"logout\" command has " \
                  "been issued or the session has expired."
    roles = ALL_ROLES
    requires_auth = False
    java_class = "org.apache.cloudstack.api.command.admin.user.LoginCmd"

    class Params(BaseParams):
        username = p.string("Username", required=True)
        password = p.string("Hashed password (Default is MD5). If you wish to use any other hashing algorithm, "
                            "you would need to write a custom authentication adapter See Docs section.",
                            required=True, sensitive=True)
        domain = p.string("Path of the domain that the user belongs to. Example: domain=/com/cloud/internal. "
                          "If no domain is passed in, the ROOT (/) domain is assumed.")
        domainid = p.long("The id of the domain that the user belongs to. If both domain and domainId are "
                          "passed in, \"domainId\" parameter takes precedence.")
