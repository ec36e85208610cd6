"""``listRouters``: this server runs no virtual routers, so the list is empty."""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import ADMINS, ListOwnedCommand, ListResult, _ListOwnedParams
from cloudstack_kms.api.declare import Out, ResponseObject
from cloudstack_kms.models import DataCenter

from .common import nothing


class DomainRouterResponse(ResponseObject):
    object_name = "router"
    id = Out.uuid("the id of the router")
    name = Out.string("the name of the router")
    state = Out.string("the state of the router")
    zoneid = Out.uuid("the Zone ID for the router")
    zonename = Out.string("the Zone name for the router")
    podid = Out.uuid("the Pod ID for the router")
    hostid = Out.uuid("the host ID for the router")
    hostname = Out.string("the hostname for the router")
    publicip = Out.string("the public IP address for the router")
    guestipaddress = Out.string("the guest IP address for the router")
    linklocalip = Out.string("the link local IP address for the router")
    account = Out.string("the account associated with the router")
    domainid = Out.uuid("the domain ID associated with the router")
    domain = Out.string("the domain associated with the router")
    vpcid = Out.uuid("VPC the router belongs to")
    version = Out.string("the version of template")
    requiresupgrade = Out.boolean("true if the router template requires upgrader")
    created = Out.date("the date and time the router was created")
    hasannotations = Out.boolean("true if the entity/resource has annotations")


class ListRouters(ListOwnedCommand):
    api_name = "listRouters"
    description = "List routers."
    roles = ADMINS
    response = DomainRouterResponse
    java_class = "org.apache.cloudstack.api.command.admin.router.ListRoutersCmd"

    class Params(_ListOwnedParams):
        zoneid = p.uuid("the Zone ID of the router", entity=DataCenter, related="listZones")

    def execute(self) -> ListResult:
        return nothing(self, DomainRouterResponse, owned=True)
