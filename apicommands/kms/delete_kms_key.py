"""``deleteKMSKey`` (async): refused while any wrapped key or volume references the key.

Not upstream: the deletion waits ``kms.key.deletion.pending.days`` (services/kms/deletion.py);
until then the key is PendingDeletion and ``cancelKMSKeyDeletion`` restores it. 0 days deletes
at once, as upstream. A key already pending deletion is refused.
"""
from datetime import datetime

from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import ALL_ROLES, AsyncCommand, AsyncParams, SuccessResult
from cloudstack_kms.models import Account
from cloudstack_kms.services.kms import deletion
from cloudstack_kms.services.kms.runtime import runtime_of
from cloudstack_kms.wire import format_date

from .lookups import find_key


class DeleteKMSKey(AsyncCommand):
    api_name = "deleteKMSKey"
    description = "Deletes a KMS key and its key encryption keys. Refused while volumes or wrapped keys use it. " \
                  "The deletion waits kms.key.deletion.pending.days (the key is PendingDeletion meanwhile; see " \
                  "cancelKMSKeyDeletion); 0 days deletes at once."
    since = "4.23.0"
    roles = ALL_ROLES
    event_type = "KMS.KEY.DELETE"
    instance_type = "KmsKey"
    java_class = "org.apache.cloudstack.api.command.user.kms.DeleteKMSKeyCmd"

    class Params(AsyncParams):
        id = p.uuid("the ID of the KMS key", required=True, related="listKMSKeys")

    #: Set by :meth:`execute` when the deletion was scheduled rather than done (for the completion event).
    deletion_date: datetime | None = None

    def instance(self):  # noqa: ANN201 - resolving here also checks access before the job is queued
        key = find_key(self.ctx, self.args["id"], allow_pending=True)
        if key.deletion_date is not None:  # answered at once, not as a failed job
            raise deletion.already_pending_error(key)
        self.event_account = self.ctx.session.get(Account, key.account_id)
        return key

    def execute(self) -> SuccessResult:
        key = self.instance()
        self.deletion_date = deletion.request_deletion(self.ctx.session, runtime_of(self.ctx.state),
                                                       self.ctx.state.master_key, key, self.ctx.user)
        return SuccessResult()

    def event_description(self) -> str:
        if self.deletion_date is not None:
            return f"scheduling deletion of KMS key: {self.args['id']} on {format_date(self.deletion_date)}"
        return f"Deleting KMS key: {self.args['id']}"
