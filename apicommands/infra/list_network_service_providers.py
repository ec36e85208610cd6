"""``listNetworkServiceProviders``: this server has no physical networks, so no providers.

The web UI asks for an enabled ``SecurityGroupProvider`` after login to decide whether to show
security groups; the empty answer hides them.
"""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import ListCommand, ListResult, _ListParams
from cloudstack_kms.api.declare import Out, ResponseObject

from .common import nothing


class ProviderResponse(ResponseObject):
    object_name = "networkserviceprovider"
    id = Out.uuid("uuid of the network provider")
    name = Out.string("the provider name")
    physicalnetworkid = Out.uuid("the physical network this belongs to")
    destinationphysicalnetworkid = Out.uuid("the destination physical network")
    state = Out.string("state of the network provider")
    servicelist = Out.list("services for this provider")
    canenableindividualservice = Out.boolean("true if individual services can be enabled/disabled")


class ListNetworkServiceProviders(ListCommand):
    api_name = "listNetworkServiceProviders"
    description = "Lists network serviceproviders for a given physical network."
    since = "3.0.0"
    response = ProviderResponse
    java_class = "org.apache.cloudstack.api.command.admin.network.ListNetworkServiceProvidersCmd"

    class Params(_ListParams):
        name = p.string("list providers by name")
        state = p.string("list providers by state")

    def execute(self) -> ListResult:
        return nothing(self, ProviderResponse)
