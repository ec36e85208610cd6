"""``createUser``: one more user of an existing account."""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.access import check_account_access, check_domain_access
from cloudstack_kms.api.command import ADMINS, BaseParams, Command, ObjectResult
from cloudstack_kms.models import Domain
from cloudstack_kms.services import tenancy

from .responses import UserResponse, user_view


class CreateUser(Command):
    api_name = "createUser"
    description = "Creates a user for an account that already exists"
    roles = ADMINS
    response = UserResponse
    related = "listUsers"
    event_type = "USER.CREATE"
    event_resource_type = "User"
    java_class = "org.apache.cloudstack.api.command.admin.user.CreateUserCmd"

    class Params(BaseParams):
        account = p.string("Creates the user under the specified account. If no account is specified, the "
                           "username will be used as the account name.", required=True)
        domainid = p.uuid("Creates the user under the specified domain. Has to be accompanied with the account "
                          "parameter", entity=Domain, related="listDomains")
        email = p.string("Email", required=True)
        firstname = p.string("Firstname", required=True)
        lastname = p.string("Lastname", required=True)
        password = p.string("Clear text password, stored only as a salted Argon2id hash", required=True,
                            sensitive=True)
        timezone = p.string("Specifies a timezone for this command. For more information on the timezone "
                            "parameter, see Time Zone Format.")
        username = p.string("Unique username.", required=True)
        userid = p.string("User UUID, required for adding account from external provisioning system")

    def execute(self) -> ObjectResult:
        ctx, session = self.ctx, self.ctx.session
        # As upstream, the domain defaults to ROOT (not to the caller's domain).
        domain: Domain = self.arg("domainid") or session.get(Domain, tenancy.ROOT_DOMAIN_ID)
        check_domain_access(ctx, domain)
        tenancy.check_custom_uuid(self.arg("userid"), "userid")
        account = tenancy.find_enabled_account(session, self.args["account"], domain)
        check_account_access(ctx, account)
        user = tenancy.create_user(session, caller=ctx.account, account=account, username=self.args["username"],
                                   password=self.args["password"], firstname=self.args["firstname"],
                                   lastname=self.args["lastname"], email=self.args["email"],
                                   timezone=self.arg("timezone"), user_uuid=self.arg("userid"))
        self.event_resource = user
        return ObjectResult(UserResponse, user_view(user, ctx.domain))

    def event_description(self) -> str:
        return f"creating User. UserName: {self.args['username']}, FirstName: {self.args['firstname']}, " \
               f"LastName: {self.args['lastname']}"
