"""``listIdps``: SAML identity providers for single sign-on; none here (SAML is not offered)."""
from cloudstack_kms.api.command import ALL_ROLES, BaseParams, Command, ListResult
from cloudstack_kms.api.declare import Out, ResponseObject


class IdpResponse(ResponseObject):
    object_name = "idp"
    id = Out.string("the IdP ID")
    orgName = Out.string("the organization name of the IdP")
    orgUrl = Out.string("the organization URL of the IdP")


class ListIdps(Command):
    api_name = "listIdps"
    description = "Returns list of discovered SAML Identity Providers. This server has none."
    roles = ALL_ROLES
    requires_auth = False
    read_only = True
    response = IdpResponse
    java_class = "org.apache.cloudstack.api.command.ListIdpsCmd"

    class Params(BaseParams):
        pass

    def execute(self) -> ListResult:
        return ListResult(IdpResponse, [], 0)
