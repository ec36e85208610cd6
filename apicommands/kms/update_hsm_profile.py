"""``updateHSMProfile`` (root admin): rename, enable or disable."""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import BaseParams, Command, ObjectResult
from cloudstack_kms.services.kms import profiles
from cloudstack_kms.services.kms.runtime import runtime_of

from .lookups import find_profile
from .responses import HsmProfileResponse


class UpdateHSMProfile(Command):
    api_name = "updateHSMProfile"
    description = "Updates an HSM profile. Disabling a profile makes every key wrapped by its KEKs unusable " \
                  "until it is enabled again."
    since = "4.23.0"
    response = HsmProfileResponse
    related = "listHSMProfiles"
    event_type = "HSM.PROFILE.UPDATE"
    event_resource_type = "HsmProfile"
    java_class = "org.apache.cloudstack.api.command.admin.kms.UpdateHSMProfileCmd"

    class Params(BaseParams):
        id = p.uuid("the ID of the HSM profile", required=True, related="listHSMProfiles")
        name = p.string("the new name of the HSM profile")
        enabled = p.boolean("enable or disable the HSM profile")

    def execute(self) -> ObjectResult:
        session = self.ctx.session
        profile = find_profile(session, self.args["id"])
        profiles.check_modifiable(self.ctx.account, profile)
        if self.arg("name"):
            profile.name = self.args["name"]
        if self.arg("enabled") is not None:
            profile.enabled = self.args["enabled"]
        runtime_of(self.ctx.state).provider(profile.protocol).invalidate(profile.id)
        self.event_resource = profile
        return ObjectResult(HsmProfileResponse, profiles.profile_view(session, profile, self.ctx.account))

    def event_description(self) -> str:
        return f"Updated HSM profile: {self.args['id']}"
