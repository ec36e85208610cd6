"""``deleteVolume``: expunge the volume, its image, its wrapped key (unless shared) and passphrase."""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import ALL_ROLES, BaseParams, Command, SuccessResult
from cloudstack_kms.errors import invalid_uuid
from cloudstack_kms.models import Account
from cloudstack_kms.services import volumes

from .lookups import find_volume


class DeleteVolume(Command):
    api_name = "deleteVolume"
    description = "Deletes a detached disk volume."
    roles = ALL_ROLES
    event_type = "VOLUME.DELETE"
    event_resource_type = "Volume"
    java_class = "org.apache.cloudstack.api.command.user.volume.DeleteVolumeCmd"

    class Params(BaseParams):
        id = p.uuid("The ID of the disk volume", required=True, related="listVolumes")

    def execute(self) -> SuccessResult:
        volume = find_volume(self.ctx, self.api_name, self.args["id"])
        self.event_resource = volume
        self.event_account = self.ctx.session.get(Account, volume.account_id)
        if not volumes.delete(self.ctx.session, volume):  # a concurrent deleteVolume got there first
            raise invalid_uuid(self.api_name, "id", self.args["id"])
        return SuccessResult()

    def event_description(self) -> str:
        return f"Deleting volume: {self.args['id']}"
