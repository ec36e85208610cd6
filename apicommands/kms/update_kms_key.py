"""``updateKMSKey``: rename, describe, enable or disable a key."""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import ALL_ROLES, BaseParams, Command, ObjectResult
from cloudstack_kms.models import Account
from cloudstack_kms.services.kms import keys

from .lookups import find_key
from .responses import KmsKeyResponse


class UpdateKMSKey(Command):
    api_name = "updateKMSKey"
    description = "Updates a KMS key. A disabled key cannot wrap new keys; existing volumes still open."
    since = "4.23.0"
    roles = ALL_ROLES
    response = KmsKeyResponse
    related = "listKMSKeys"
    event_type = "KMS.KEY.UPDATE"
    event_resource_type = "KmsKey"
    java_class = "org.apache.cloudstack.api.command.user.kms.UpdateKMSKeyCmd"

    class Params(BaseParams):
        id = p.uuid("the ID of the KMS key", required=True, related="listKMSKeys")
        name = p.string("the new name of the KMS key")
        description = p.string("the new description of the KMS key", length=1024)
        enabled = p.boolean("enable or disable the KMS key")

    def execute(self) -> ObjectResult:
        key = find_key(self.ctx, self.args["id"])
        if self.arg("name"):
            key.name = self.args["name"]
        if self.arg("description") is not None:
            key.description = self.args["description"]
        if self.arg("enabled") is not None:
            key.enabled = self.args["enabled"]
        self.event_resource = key
        self.event_account = self.ctx.session.get(Account, key.account_id)
        return ObjectResult(KmsKeyResponse, keys.key_view(self.ctx.session, key))

    def event_description(self) -> str:
        key = self.event_resource
        return f"Updated KMS key: {key.name} (uuid: {key.uuid}, enabled: {str(bool(key.enabled)).lower()})"
