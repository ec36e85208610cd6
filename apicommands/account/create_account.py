"""``createAccount``: an account and its first user, in ROOT or a domain the caller administers."""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.access import check_domain_access
from cloudstack_kms.api.command import ADMINS, BaseParams, Command, ObjectResult
from cloudstack_kms.models import Domain, Role
from cloudstack_kms.services import events, tenancy

from .responses import AccountResponse, account_view

PASSWORD_TEXT = "Clear text password, stored only as a salted Argon2id hash"
TIMEZONE_TEXT = ("Specifies a timezone for this command. For more information on the timezone parameter, see Time "
                 "Zone Format.")


class CreateAccount(Command):
    api_name = "createAccount"
    description = "Creates an account"
    roles = ADMINS
    response = AccountResponse
    related = "listAccounts"
    event_type = "ACCOUNT.CREATE"
    event_resource_type = "Account"
    java_class = "org.apache.cloudstack.api.command.admin.account.CreateAccountCmd"

    class Params(BaseParams):
        account = p.string("Name of the account to be created. The user will be added to this newly created "
                           "account. If no account is specified, the username will be used as the account name.")
        accounttype = p.integer("Type of the account.  Specify 0 for user, 1 for root admin, and 2 for domain admin")
        roleid = p.uuid("Creates the account under the specified role.", entity=Role, related="listRoles")
        domainid = p.uuid("Creates the user under the specified domain.", entity=Domain, related="listDomains")
        email = p.string("email", required=True)
        firstname = p.string("firstname", required=True)
        lastname = p.string("lastname", required=True)
        password = p.string(PASSWORD_TEXT, required=True, sensitive=True)
        timezone = p.string(TIMEZONE_TEXT)
        username = p.string("Unique username.", required=True)
        networkdomain = p.string("Network domain for the account's networks")
        accountid = p.string("Account UUID, required for adding account from external provisioning system")
        userid = p.string("User UUID, required for adding account from external provisioning system")

    def execute(self) -> ObjectResult:
        ctx, session = self.ctx, self.ctx.session
        domain: Domain = self.arg("domainid") or session.get(Domain, tenancy.ROOT_DOMAIN_ID)
        check_domain_access(ctx, domain)
        tenancy.check_custom_uuid(self.arg("accountid"), "accountid")
        tenancy.check_custom_uuid(self.arg("userid"), "userid")
        account, user = tenancy.create_account(
            session, caller=ctx.account, domain=domain, username=self.args["username"],
            password=self.args["password"], firstname=self.args["firstname"], lastname=self.args["lastname"],
            email=self.args["email"], account_type=self.arg("accounttype"), role=self.arg("roleid"),
            account_name=self.arg("account"), timezone=self.arg("timezone"),
            network_domain=self.arg("networkdomain"), account_uuid=self.arg("accountid"),
            user_uuid=self.arg("userid"))
        self.event_resource = account
        # Upstream records both events of createAccount; the dispatcher records ACCOUNT.CREATE.
        events.record(session, event_type="USER.CREATE", description=f"creating User. UserName: {user.username}",
                      user=ctx.user, account=ctx.account, resource_id=user.id, resource_type="User")
        return ObjectResult(AccountResponse, account_view(account, [user], ctx.domain, tenancy.resource_fields()))

    def event_description(self) -> str:
        name = self.arg("account") or self.args["username"]
        return f"creating Account. Account Name: {name}"
