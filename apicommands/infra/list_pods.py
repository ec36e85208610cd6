"""``listPods``: this server has no pods (its zones hold only primary storage), so the list is empty."""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import ListCommand, ListResult, _ListParams
from cloudstack_kms.api.declare import Out, ResponseObject
from cloudstack_kms.models import DataCenter

from .common import INFRA_ADMINS, nothing


class PodResponse(ResponseObject):
    object_name = "pod"
    id = Out.uuid("the ID of the Pod")
    name = Out.string("the name of the Pod")
    zoneid = Out.uuid("the Zone ID of the Pod")
    zonename = Out.string("the Zone name of the Pod")
    gateway = Out.string("the gateway of the Pod")
    netmask = Out.string("the netmask of the Pod")
    startip = Out.list("the starting IP for the Pod.")
    endip = Out.list("the ending IP for the Pod.")
    allocationstate = Out.string("the allocation state of the Pod")
    hasannotations = Out.boolean("true if the entity/resource has annotations")


class ListPods(ListCommand):
    api_name = "listPods"
    description = "Lists all Pods."
    roles = INFRA_ADMINS
    response = PodResponse
    java_class = "org.apache.cloudstack.api.command.admin.pod.ListPodsByCmd"

    class Params(_ListParams):
        zoneid = p.uuid("list Pods by Zone ID", entity=DataCenter, related="listZones")

    def execute(self) -> ListResult:
        return nothing(self, PodResponse)
