"""``listResourceIcon``: icons of accounts, zones, users ...; none can be uploaded here, so none are listed.

The UI asks for them on detail pages. The resource type is checked against upstream's list.
"""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import ALL_ROLES, BaseParams, Command, ListResult
from cloudstack_kms.api.declare import Out, ResponseObject
from cloudstack_kms.errors import InvalidParameterValue

#: Upstream's ResourceObjectType names (matched case-insensitively, as upstream does).
RESOURCE_TYPES = (
    "UserVm", "Template", "VnfTemplate", "ISO", "Volume", "Snapshot", "Backup", "Network", "DomainRouter", "Nic",
    "LoadBalancer", "PortForwardingRule", "FirewallRule", "SecurityGroup", "SecurityGroupRule", "PublicIpAddress",
    "Project", "Account", "Vpc", "NetworkACL", "StaticRoute", "VMSnapshot", "RemoteAccessVpn", "Zone",
    "ServiceOffering", "Storage", "PrivateGateway", "NetworkACLList", "VpnGateway", "CustomerGateway",
    "VpnConnection", "User", "DiskOffering", "AutoScaleVmProfile", "AutoScaleVmGroup", "LBStickinessPolicy",
    "LBHealthCheckPolicy", "SnapshotPolicy", "GuestOs", "NetworkOffering", "VpcOffering", "Domain",
)


class ResourceIconResponse(ResponseObject):
    object_name = "icon"
    resourcetype = Out.string("resource type")
    resourceid = Out.uuid("id of the resource")
    base64image = Out.string("base64 representation of resource icon")


class ListResourceIcon(Command):
    api_name = "listResourceIcon"
    description = "Lists the resource icon for the specified resource(s)"
    since = "4.16.0.0"
    roles = ALL_ROLES
    read_only = True
    response = ResourceIconResponse
    java_class = "org.apache.cloudstack.api.command.user.resource.icon.ListResourceIconCmd"

    class Params(BaseParams):
        resourceids = p.string_list("list of resources to upload the icon/image for", required=True)
        resourcetype = p.string("type of the resource", required=True)

    def execute(self) -> ListResult:
        kind = self.args["resourcetype"]
        if kind.lower() not in {t.lower() for t in RESOURCE_TYPES}:
            raise InvalidParameterValue(f"Invalid resource type: {kind}")
        return ListResult(ResourceIconResponse, [], 0)
