"""``listInfrastructure``: how many of each kind of infrastructure this server has.

Zones, primary storage pools and management servers (live server processes) are counted;
the rest (pods, clusters, hosts, image stores, system VMs, routers ...) do not exist here.
The web UI shows its Infrastructure and Configuration sections only when this command exists.
"""
from sqlalchemy import func, select

from cloudstack_kms.api.command import BaseParams, Command, ObjectResult
from cloudstack_kms.api.declare import Out, ResponseObject
from cloudstack_kms.models import DataCenter, ManagementServer
from cloudstack_kms.models.volume import StoragePool


class InfrastructureResponse(ResponseObject):
    object_name = "infrastructure"
    zones = Out.integer("Number of zones")
    pods = Out.integer("Number of pods")
    clusters = Out.integer("Number of clusters")
    hosts = Out.integer("Number of hypervisor hosts")
    storagepools = Out.integer("Number of storage pools")
    imagestores = Out.integer("Number of images stores")
    backuprepositories = Out.integer("Number of backup repositories")
    objectstores = Out.integer("Number of object stores")
    systemvms = Out.integer("Number of systemvms")
    routers = Out.integer("Number of routers")
    ilbvms = Out.integer("Number of internal LBs")
    cpusockets = Out.integer("Number of cpu sockets")
    managementservers = Out.integer("Number of management servers")
    alerts = Out.integer("Number of Alerts")
    imagecachestores = Out.integer("Number of image cache stores")


class ListInfrastructure(Command):
    api_name = "listInfrastructure"
    description = "Lists infrastructure"
    since = "4.9.3"
    read_only = True
    response = InfrastructureResponse
    java_class = "org.apache.cloudstack.api.ListInfrastructureCmd"

    class Params(BaseParams):
        pass

    def execute(self) -> ObjectResult:
        session = self.ctx.session

        def count(model, *where) -> int:
            return session.scalar(select(func.count()).select_from(model).where(*where)) or 0

        return ObjectResult(InfrastructureResponse, {
            "zones": count(DataCenter, DataCenter.removed.is_(None)),
            "pods": 0, "clusters": 0, "hosts": 0,
            "storagepools": count(StoragePool, StoragePool.removed.is_(None)),
            "imagestores": 0, "backuprepositories": 0, "objectstores": 0, "systemvms": 0, "routers": 0,
            "ilbvms": 0, "cpusockets": 0,
            "managementservers": count(ManagementServer, ManagementServer.state == "Up",
                                       ManagementServer.removed.is_(None)),
            "alerts": 0, "imagecachestores": 0,
        })
