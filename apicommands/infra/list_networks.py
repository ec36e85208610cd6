"""``listNetworks``: this server manages no guest networks, so the list is empty.

The web UI asks for networks needing a restart right after login, and counts them on the
user dashboard.
"""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import ALL_ROLES, ListOwnedCommand, ListResult, _ListOwnedParams
from cloudstack_kms.api.declare import Out, ResponseObject
from cloudstack_kms.models import DataCenter

from .common import nothing


class NetworkResponse(ResponseObject):
    object_name = "network"
    id = Out.uuid("the id of the network")
    name = Out.string("the name of the network")
    displaytext = Out.string("the displaytext of the network")
    state = Out.string("state of the network")
    type = Out.string("the type of the network")
    traffictype = Out.string("the traffic type of the network")
    cidr = Out.string("Cloudstack managed address space, all CloudStack managed Instances get IP address from CIDR")
    gateway = Out.string("the network's gateway")
    netmask = Out.string("the network's netmask")
    zoneid = Out.uuid("zone id of the network")
    zonename = Out.string("the name of the zone the network belongs to")
    networkofferingid = Out.uuid("network offering id the network is created from")
    networkofferingname = Out.string("name of the network offering the network is created from")
    account = Out.string("the owner of the network")
    domainid = Out.uuid("the domain id of the network owner")
    domain = Out.string("the domain name of the network owner")
    networkdomain = Out.string("the network domain")
    restartrequired = Out.boolean("true network requires restart")
    vpcid = Out.uuid("VPC the network belongs to")
    created = Out.date("the date this network was created")
    tags = Out.list("the list of resource tags associated with network")
    hasannotations = Out.boolean("true if the entity/resource has annotations")


class ListNetworks(ListOwnedCommand):
    api_name = "listNetworks"
    description = "Lists all available networks."
    roles = ALL_ROLES
    response = NetworkResponse
    java_class = "org.apache.cloudstack.api.command.user.network.ListNetworksCmd"

    class Params(_ListOwnedParams):
        zoneid = p.uuid("the zone ID of the network", entity=DataCenter, related="listZones")
        restartrequired = p.boolean("list networks by restartRequired")
        forvpc = p.boolean("the network belongs to VPC")

    def execute(self) -> ListResult:
        return nothing(self, NetworkResponse, owned=True)
