"""``listClusters``: this server has no host clusters, so the list is empty."""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import ListCommand, ListResult, _ListParams
from cloudstack_kms.api.declare import Out, ResponseObject
from cloudstack_kms.models import DataCenter

from .common import INFRA_ADMINS, nothing


class ClusterResponse(ResponseObject):
    object_name = "cluster"
    id = Out.uuid("the cluster ID")
    name = Out.string("the cluster name")
    zoneid = Out.uuid("the Zone ID of the cluster")
    zonename = Out.string("the Zone name of the cluster")
    podid = Out.uuid("the Pod ID of the cluster")
    podname = Out.string("the Pod name of the cluster")
    hypervisortype = Out.string("the hypervisor type of the cluster")
    clustertype = Out.string("the type of the cluster")
    allocationstate = Out.string("the allocation state of the cluster")
    managedstate = Out.string("whether this cluster is managed by cloudstack")
    hasannotations = Out.boolean("true if the entity/resource has annotations")


class ListClusters(ListCommand):
    api_name = "listClusters"
    description = "Lists clusters."
    roles = INFRA_ADMINS
    response = ClusterResponse
    java_class = "org.apache.cloudstack.api.command.admin.cluster.ListClustersCmd"

    class Params(_ListParams):
        zoneid = p.uuid("lists clusters by Zone ID", entity=DataCenter, related="listZones")

    def execute(self) -> ListResult:
        return nothing(self, ClusterResponse)
