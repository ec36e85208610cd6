"""``checkVolume`` (root admin): open the image with its key through qemu and report."""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import AsyncCommand, AsyncParams, ObjectResult
from cloudstack_kms.errors import InvalidParameterValue
from cloudstack_kms.services import volumes
from cloudstack_kms.services.kms.runtime import runtime_of

from .lookups import find_volume
from .responses import VolumeResponse


class CheckVolume(AsyncCommand):
    api_name = "checkVolume"
    description = "Check the volume for any errors or leaks and also repairs when repair parameter is passed, " \
                  "this is currently supported for KVM only. Here it also reports whether the volume's key " \
                  "unlocks its LUKS image."
    since = "4.19.1"
    response = VolumeResponse
    response_name_override = "checkandrepairvolumeresponse"
    event_type = "VOLUME.CHECK"
    instance_type = "Volume"
    java_class = "org.apache.cloudstack.api.command.user.volume.CheckAndRepairVolumeCmd"

    class Params(AsyncParams):
        id = p.uuid("The ID of the volume", required=True, related="listVolumes")
        repair = p.string("parameter to repair the volume, leaks or all are the possible values")

    def instance(self):  # noqa: ANN201 - also validates before the job is queued
        if self.arg("repair") is not None and self.args["repair"].lower() not in ("leaks", "all"):
            raise InvalidParameterValue("Repair parameter can only take the following values: [LEAKS, ALL]")
        return find_volume(self.ctx, self.api_name, self.args["id"])

    def execute(self) -> ObjectResult:
        volume = self.instance()
        volumes.check(self.ctx.session, runtime_of(self.ctx.state), self.ctx.state.master_key, volume)
        return ObjectResult(VolumeResponse, volumes.volume_view(self.ctx.session, volume, self.ctx.is_admin,
                                                                self.ctx.account))

    def event_description(self) -> str:
        return f"check and repair operation on volume: {self.args['id']}"
