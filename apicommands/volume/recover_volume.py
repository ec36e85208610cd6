"""``recoverVolume``: a volume in ``Destroy`` comes back, ``Ready`` with its image (or ``Allocated``
if it never had one), key and data untouched."""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import ALL_ROLES, BaseParams, Command, ObjectResult
from cloudstack_kms.errors import InvalidParameterValue, invalid_uuid
from cloudstack_kms.models import Account
from cloudstack_kms.models.base import utcnow
from cloudstack_kms.models.volume import VOLUME_ALLOCATED, VOLUME_DESTROY, VOLUME_READY
from cloudstack_kms.services import volumes

from .lookups import find_volume
from .responses import VolumeResponse


class RecoverVolume(Command):
    api_name = "recoverVolume"
    description = "Recovers a Destroy volume."
    since = "4.14.0"
    roles = ALL_ROLES
    response = VolumeResponse
    related = "destroyVolume,listVolumes"
    event_type = "VOLUME.RECOVER"
    event_resource_type = "Volume"
    java_class = "org.apache.cloudstack.api.command.user.volume.RecoverVolumeCmd"

    class Params(BaseParams):
        id = p.uuid("The ID of the volume", required=True, related="listVolumes")

    def execute(self) -> ObjectResult:
        session = self.ctx.session
        volume = find_volume(self.ctx, self.api_name, self.args["id"])
        self.event_resource = volume
        self.event_account = session.get(Account, volume.account_id)
        session.refresh(volume, with_for_update=True)
        if volume.removed is not None:  # expunged meanwhile
            raise invalid_uuid(self.api_name, "id", self.args["id"])
        if volume.state != VOLUME_DESTROY:
            raise InvalidParameterValue("Please specify a volume in Destroy state.")
        # Ready when it was created on primary storage (it has a pool), as upstream.
        volume.state = VOLUME_READY if volume.pool_id is not None else VOLUME_ALLOCATED
        volume.updated = utcnow()
        return ObjectResult(VolumeResponse, volumes.volume_view(session, volume, self.ctx.is_admin, self.ctx.account))

    def event_description(self) -> str:
        return f"recovering a volume in Destroy state: {self.args['id']}"
