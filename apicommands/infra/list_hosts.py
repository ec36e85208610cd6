"""``listHosts``: this server manages no hypervisor hosts, so the list is empty."""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import ListCommand, ListResult, _ListParams
from cloudstack_kms.api.declare import Out, ResponseObject
from cloudstack_kms.models import DataCenter

from .common import INFRA_ADMINS, check_choices, nothing

#: Upstream's HostDetails values.
DETAILS = ("all", "capacity", "events", "stats", "min")


class HostResponse(ResponseObject):
    object_name = "host"
    id = Out.uuid("the ID of the host")
    name = Out.string("the name of the host")
    state = Out.string("the state of the host")
    type = Out.string("the host type")
    ipaddress = Out.string("the IP address of the host")
    zoneid = Out.uuid("the Zone ID of the host")
    zonename = Out.string("the Zone name of the host")
    podid = Out.uuid("the Pod ID of the host")
    podname = Out.string("the Pod name of the host")
    clusterid = Out.uuid("the cluster ID of the host")
    clustername = Out.string("the cluster name of the host")
    hypervisor = Out.string("the host hypervisor")
    cpunumber = Out.integer("the CPU number of the host")
    cpusockets = Out.integer("the number of CPU sockets on the host")
    memorytotal = Out.long("the memory total of the host, this parameter is deprecated use memorywithoverprovisioning")
    resourcestate = Out.string("the resource state of the host")
    version = Out.string("the host version")
    created = Out.date("the date and time the host was created")
    hasannotations = Out.boolean("true if the entity/resource has annotations")


class ListHosts(ListCommand):
    api_name = "listHosts"
    description = "Lists hosts."
    roles = INFRA_ADMINS
    response = HostResponse
    java_class = "org.apache.cloudstack.api.command.admin.host.ListHostsCmd"

    class Params(_ListParams):
        zoneid = p.uuid("the Zone ID for the host", entity=DataCenter, related="listZones")
        type = p.string("the host type")
        state = p.string("the state of the host")
        details = p.string_list("comma separated list of host details requested, value can be a list of [ min, "
                                "all, capacity, events, stats]")

    def execute(self) -> ListResult:
        check_choices("details", self.arg("details"), DETAILS)
        return nothing(self, HostResponse)
