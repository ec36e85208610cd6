"""``cloudianIsEnabled``: the UI asks after login whether the Cloudian storage connector is on. It is not."""
from cloudstack_kms.api.command import ALL_ROLES, BaseParams, Command, ObjectResult
from cloudstack_kms.api.declare import Out, ResponseObject


class CloudianEnabledResponse(ResponseObject):
    object_name = "cloudianisenabled"
    enabled = Out.boolean("the Cloudian connector enabled state")
    url = Out.string("the Cloudian Management Console base URL")


class CloudianIsEnabled(Command):
    api_name = "cloudianIsEnabled"
    description = "Checks if the Cloudian Connector is enabled. It is not part of this server: always false."
    since = "4.11.0"
    roles = ALL_ROLES
    read_only = True
    response = CloudianEnabledResponse
    java_class = "org.apache.cloudstack.api.command.CloudianIsEnabledCmd"

    class Params(BaseParams):
        pass

    def execute(self) -> ObjectResult:
        return ObjectResult(CloudianEnabledResponse, {"enabled": False})
