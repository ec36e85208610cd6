"""``destroyVolume`` (async): a detached volume goes to ``Destroy`` (recoverable), or with
``expunge`` is expunged at once, as ``deleteVolume`` does (image, wrapped key, passphrase).

As upstream, a volume still ``Allocated`` (its image not made yet) can only be expunged. This
server lets every role expunge and recover volumes (listCapabilities'
``allowuserexpungerecovervolume``).
"""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import ALL_ROLES, AsyncCommand, AsyncParams, ObjectResult
from cloudstack_kms.errors import InvalidParameterValue, invalid_uuid
from cloudstack_kms.models import Account
from cloudstack_kms.models.base import utcnow
from cloudstack_kms.models.volume import VOLUME_ALLOCATED, VOLUME_DESTROY, Volume
from cloudstack_kms.services import volumes

from .lookups import find_volume
from .responses import VolumeResponse


def check_destroyable(volume: Volume, expunge: bool) -> None:
    if not expunge and volume.state == VOLUME_ALLOCATED:
        raise InvalidParameterValue("The volume in Allocated/Uploaded state can only be expunged not "
                                    "destroyed/recovered")


class DestroyVolume(AsyncCommand):
    api_name = "destroyVolume"
    description = "Destroys a Volume."
    since = "4.14.0"
    roles = ALL_ROLES
    response = VolumeResponse
    related = "createVolume,listVolumes"
    event_type = "VOLUME.DESTROY"
    instance_type = "Volume"
    java_class = "org.apache.cloudstack.api.command.user.volume.DestroyVolumeCmd"

    class Params(AsyncParams):
        id = p.uuid("The ID of the volume", required=True, related="listVolumes")
        expunge = p.boolean("If true is passed, the volume is expunged immediately. False by default.")

    def instance(self):  # noqa: ANN201 - resolving here also checks access before the job is queued
        volume = find_volume(self.ctx, self.api_name, self.args["id"])
        check_destroyable(volume, bool(self.arg("expunge")))
        self.event_account = self.ctx.session.get(Account, volume.account_id)
        return volume

    def execute(self) -> ObjectResult:
        session = self.ctx.session
        volume = self.instance()
        if self.arg("expunge"):
            if not volumes.delete(session, volume):  # a concurrent delete got there first
                raise invalid_uuid(self.api_name, "id", self.args["id"])
        else:
            # Locked and read again: a concurrent expunge either waits for this or is seen here.
            session.refresh(volume, with_for_update=True)
            if volume.removed is not None:
                raise invalid_uuid(self.api_name, "id", self.args["id"])
            check_destroyable(volume, False)
            if volume.state != VOLUME_DESTROY:
                volume.state = VOLUME_DESTROY
                volume.updated = utcnow()
        return ObjectResult(VolumeResponse, volumes.volume_view(session, volume, self.ctx.is_admin, self.ctx.account))

    def event_description(self) -> str:
        return f"destroying volume: {self.args['id']}"
