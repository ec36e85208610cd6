"""``listSystemVms``: this server runs no system VMs (console proxy, secondary storage), so the list is empty."""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import ListCommand, ListResult, _ListParams
from cloudstack_kms.api.declare import Out, ResponseObject
from cloudstack_kms.models import DataCenter

from .common import INFRA_ADMINS, nothing


class SystemVmResponse(ResponseObject):
    object_name = "systemvm"
    id = Out.uuid("the ID of the system VM")
    name = Out.string("the name of the system VM")
    systemvmtype = Out.string("the system VM type")
    state = Out.string("the state of the system VM")
    agentstate = Out.string("the agent state of the system VM")
    zoneid = Out.uuid("the Zone ID for the system VM")
    zonename = Out.string("the Zone name for the system VM")
    podid = Out.uuid("the Pod ID for the system VM")
    hostid = Out.uuid("the host ID for the system VM")
    hostname = Out.string("the hostname for the system VM")
    publicip = Out.string("the public IP address for the system VM")
    privateip = Out.string("the private IP address for the system VM")
    linklocalip = Out.string("the link local IP address for the system vm")
    version = Out.string("the systemvm agent version")
    created = Out.date("the date and time the system VM was created")
    hasannotations = Out.boolean("true if the entity/resource has annotations")


class ListSystemVms(ListCommand):
    api_name = "listSystemVms"
    description = "List system virtual machines."
    roles = INFRA_ADMINS
    response = SystemVmResponse
    java_class = "org.apache.cloudstack.api.command.admin.systemvm.ListSystemVMsCmd"

    class Params(_ListParams):
        zoneid = p.uuid("the Zone ID of the system VM", entity=DataCenter, related="listZones")

    def execute(self) -> ListResult:
        return nothing(self, SystemVmResponse)
