"""``cancelKMSKeyDeletion`` (not upstream): a key pending deletion gets back the state it had.

Synchronous, as ``updateKMSKey``: it only changes the key's row (no provider call, nothing that
could take long), so the restored key is the answer, as AWS's CancelKeyDeletion answers at once.
Access: the rule of every KMS key command (``lookups.find_key``), as ``deleteKMSKey``.
"""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import ALL_ROLES, BaseParams, Command, ObjectResult
from cloudstack_kms.models import Account
from cloudstack_kms.services.kms import deletion, keys

from .lookups import find_key
from .responses import KmsKeyResponse


class CancelKMSKeyDeletion(Command):
    api_name = "cancelKMSKeyDeletion"
    description = "Cancels the pending deletion of a KMS key (see deleteKMSKey and kms.key.deletion.pending.days): " \
                  "the key is Enabled or Disabled again, as it was before its deletion was requested."
    since = "4.23.0"
    roles = ALL_ROLES
    response = KmsKeyResponse
    related = "listKMSKeys"
    event_type = deletion.CANCEL_EVENT
    event_resource_type = "KmsKey"

    class Params(BaseParams):
        id = p.uuid("the ID of the KMS key pending deletion", required=True, related="listKMSKeys")

    def execute(self) -> ObjectResult:
        key = find_key(self.ctx, self.args["id"], allow_pending=True)
        deletion.cancel_deletion(self.ctx.session, key)
        self.event_resource = key
        self.event_account = self.ctx.session.get(Account, key.account_id)
        return ObjectResult(KmsKeyResponse, keys.key_view(self.ctx.session, key))

    def event_description(self) -> str:
        key = self.event_resource
        return f"Cancelled the deletion of KMS key: {key.name} (uuid: {key.uuid}, state: {keys.key_state(key)})"
