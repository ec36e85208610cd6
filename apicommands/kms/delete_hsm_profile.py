"""``deleteHSMProfile`` (root admin): refused while keys or wrapped keys use the profile."""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import BaseParams, Command, SuccessResult
from cloudstack_kms.errors import InvalidParameterValue
from cloudstack_kms.services.kms import profiles
from cloudstack_kms.services.kms.runtime import runtime_of

from .lookups import find_profile


class DeleteHSMProfile(Command):
    api_name = "deleteHSMProfile"
    description = "Deletes an HSM profile that no KMS key or wrapped key uses"
    since = "4.23.0"
    event_type = "HSM.PROFILE.DELETE"
    event_resource_type = "HsmProfile"
    java_class = "org.apache.cloudstack.api.command.admin.kms.DeleteHSMProfileCmd"

    class Params(BaseParams):
        id = p.uuid("the ID of the HSM profile", required=True, related="listHSMProfiles")

    def execute(self) -> SuccessResult:
        session = self.ctx.session
        profile = find_profile(session, self.args["id"])
        profiles.check_modifiable(self.ctx.account, profile)
        if profiles.is_default_database_profile(profile):
            raise InvalidParameterValue("Default database HSM profile cannot be deleted")
        keys = profiles.key_count(session, profile)
        if keys:
            raise InvalidParameterValue(f"Cannot delete HSM profile '{profile.name}': it is referenced by {keys} "
                                        "KMS key(s). Please delete or reassign those keys first.")
        wrapped = profiles.wrapped_key_count(session, profile)
        if wrapped:
            raise InvalidParameterValue(
                f"Cannot delete HSM profile '{profile.name}': it is referenced by {wrapped} wrapped key(s) through "
                "KEK versions. Please wait for key rotation to complete or delete those volumes first.")
        runtime_of(self.ctx.state).provider(profile.protocol).invalidate(profile.id)
        profiles.soft_delete(session, profile)
        self.event_resource = profile
        return SuccessResult()

    def event_description(self) -> str:
        return f"Deleted HSM profile: {self.args['id']}"
