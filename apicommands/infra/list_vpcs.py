"""``listVPCs``: this server manages no VPCs, so the list is empty."""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import ALL_ROLES, ListOwnedCommand, ListResult, _ListOwnedParams
from cloudstack_kms.api.declare import Out, ResponseObject
from cloudstack_kms.models import DataCenter

from .common import nothing


class VpcResponse(ResponseObject):
    object_name = "vpc"
    id = Out.uuid("the id of the VPC")
    name = Out.string("the name of the VPC")
    displaytext = Out.string("an alternate display text of the VPC.")
    state = Out.string("state of the VPC. Can be Inactive/Enabled")
    zoneid = Out.uuid("zone id of the vpc")
    zonename = Out.string("the name of the zone the VPC belongs to")
    cidr = Out.string("the cidr the VPC")
    vpcofferingid = Out.uuid("VPC offering id the VPC is created from")
    vpcofferingname = Out.string("VPC offering name the VPC is created from")
    account = Out.string("the owner of the VPC")
    domainid = Out.uuid("the domain id of the VPC owner")
    domain = Out.string("the domain name of the owner")
    networkdomain = Out.string("the network domain of the VPC")
    restartrequired = Out.boolean("true VPC requires restart")
    created = Out.date("the date this VPC was created")
    tags = Out.list("the list of resource tags associated with the project")
    hasannotations = Out.boolean("true if the entity/resource has annotations")


class ListVPCs(ListOwnedCommand):
    api_name = "listVPCs"
    description = "Lists VPCs"
    roles = ALL_ROLES
    response = VpcResponse
    java_class = "org.apache.cloudstack.api.command.user.vpc.ListVPCsCmd"

    class Params(_ListOwnedParams):
        zoneid = p.uuid("list by zone", entity=DataCenter, related="listZones")
        restartrequired = p.boolean("list VPCs by restartRequired option")

    def execute(self) -> ListResult:
        return nothing(self, VpcResponse, owned=True)
