"""``rotateKMSKey`` (async): a new KEK version becomes Active, optionally in another HSM profile."""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import ALL_ROLES, AsyncCommand, AsyncParams, SuccessResult
from cloudstack_kms.models import Account
from cloudstack_kms.services.kms import rotation
from cloudstack_kms.services.kms.runtime import runtime_of

from .lookups import find_key, find_profile


class RotateKMSKey(AsyncCommand):
    api_name = "rotateKMSKey"
    description = "Rotates a KMS key: creates a new KEK version (in the key's HSM profile, or in hsmprofileid to " \
                  "move the key to another HSM). Existing wrapped keys are rewrapped in the background."
    since = "4.23.0"
    roles = ALL_ROLES
    event_type = "KMS.KEY.ROTATE"
    instance_type = "KmsKey"
    java_class = "org.apache.cloudstack.api.command.user.kms.RotateKMSKeyCmd"

    class Params(AsyncParams):
        id = p.uuid("the ID of the KMS key", required=True, related="listKMSKeys")
        keybits = p.integer("the size in bits of the new KEK: 128, 192 or 256 (default: the key's size)")
        hsmprofileid = p.uuid("the HSM profile for the new KEK version (default: the key's current profile)",
                              related="listHSMProfiles")

    def instance(self):  # noqa: ANN201 - resolving here also checks access before the job is queued
        key = find_key(self.ctx, self.args["id"])
        if self.arg("hsmprofileid"):
            find_profile(self.ctx.session, self.args["hsmprofileid"], "Target HSM Profile not found: {id}")
        self.event_account = self.ctx.session.get(Account, key.account_id)
        return key

    def execute(self) -> SuccessResult:
        key = self.instance()
        target = None
        if self.arg("hsmprofileid"):
            target = find_profile(self.ctx.session, self.args["hsmprofileid"], "Target HSM Profile not found: {id}")
        rotation.rotate(self.ctx.session, runtime_of(self.ctx.state), self.ctx.state.master_key, key,
                        self.ctx.account, self.ctx.user, target, self.arg("keybits"))
        return SuccessResult()

    def event_description(self) -> str:
        return f"Rotating KMS key: {self.args['id']}"
