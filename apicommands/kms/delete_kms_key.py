"""``deleteKMSKey`` (async): refused while any wrapped key or volume references the key."""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import ALL_ROLES, AsyncCommand, AsyncParams, SuccessResult
from cloudstack_kms.models import Account
from cloudstack_kms.services.kms import keys
from cloudstack_kms.services.kms.runtime import runtime_of

from .lookups import find_key


class DeleteKMSKey(AsyncCommand):
    api_name = "deleteKMSKey"
    description = "Deletes a KMS key and its key encryption keys. Refused while volumes or wrapped keys use it."
    since = "4.23.0"
    roles = ALL_ROLES
    event_type = "KMS.KEY.DELETE"
    instance_type = "KmsKey"
    java_class = "org.apache.cloudstack.api.command.user.kms.DeleteKMSKeyCmd"

    class Params(AsyncParams):
        id = p.uuid("the ID of the KMS key", required=True, related="listKMSKeys")

    def instance(self):  # noqa: ANN201 - resolving here also checks access before the job is queued
        key = find_key(self.ctx, self.args["id"])
        self.event_account = self.ctx.session.get(Account, key.account_id)
        return key

    def execute(self) -> SuccessResult:
        key = self.instance()
        keys.delete_key(self.ctx.session, runtime_of(self.ctx.state), self.ctx.state.master_key, key, self.ctx.user)
        return SuccessResult()

    def event_description(self) -> str:
        return f"Deleting KMS key: {self.args['id']}"
