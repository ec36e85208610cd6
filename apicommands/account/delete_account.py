"""``deleteAccount`` (async): the account and all its users, after every registered cleanup hook agreed."""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.access import check_account_access
from cloudstack_kms.api.command import ADMINS, AsyncCommand, AsyncParams, SuccessResult
from cloudstack_kms.models import Account
from cloudstack_kms.services import tenancy


class DeleteAccount(AsyncCommand):
    api_name = "deleteAccount"
    description = "Deletes an Account and all Users associated with this Account"
    roles = ADMINS
    response = None
    instance_type = "Account"
    event_type = "ACCOUNT.DELETE"
    java_class = "org.apache.cloudstack.api.command.admin.account.DeleteAccountCmd"

    class Params(AsyncParams):
        id = p.uuid("Account id", required=True, entity=Account, related="listAccounts")

    def _check(self) -> Account:
        account: Account = self.args["id"]
        check_account_access(self.ctx, account)
        tenancy.check_account_deletable(account, self.ctx.account)
        return account

    def instance(self) -> Account:
        # Access is checked at submission, as upstream's @ACL on ``id``; the rest again in the job.
        return self._check()

    def execute(self) -> SuccessResult:
        tenancy.delete_account(self.ctx.session, self._check(), caller=self.ctx.account)
        return SuccessResult()

    def event_description(self) -> str:
        account: Account = self.args["id"]
        return f"deleting user Account {account.account_name} (ID: {account.uuid}) and all corresponding users"
