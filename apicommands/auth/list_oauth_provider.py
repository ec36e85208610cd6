"""``listOauthProvider``: OAuth login providers shown on the login page; none are configured here."""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import ALL_ROLES, BaseParams, Command, ListResult
from cloudstack_kms.api.declare import Out, ResponseObject


class OauthProviderResponse(ResponseObject):
    object_name = "oauthprovider"
    id = Out.uuid("ID of the provider")
    provider = Out.string("name of the provider")
    description = Out.string("description of the provider")
    enabled = Out.boolean("whether the provider is enabled")
    clientid = Out.string("client ID registered with the provider")
    redirecturi = Out.string("redirect URI registered with the provider")


class ListOauthProvider(Command):
    api_name = "listOauthProvider"
    description = "List OAuth providers registered. This server has none: users log in with a password."
    since = "4.19.0"
    roles = ALL_ROLES
    requires_auth = False
    read_only = True
    response = OauthProviderResponse
    java_class = "org.apache.cloudstack.oauth2.api.command.ListOAuthProvidersCmd"

    class Params(BaseParams):
        id = p.uuid("the ID of the OAuth provider")
        provider = p.string("name of the provider")

    def execute(self) -> ListResult:
        return ListResult(OauthProviderResponse, [], 0)
