"""``listVirtualMachines``: this server runs no instances, so the list is empty.

The dashboards count instances (all, running, stopped) with it.
"""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import ALL_ROLES, ListOwnedCommand, ListResult, _ListOwnedParams
from cloudstack_kms.api.declare import Out, ResponseObject
from cloudstack_kms.models import DataCenter

from .common import check_choices, nothing

#: Upstream's VMDetails values.
DETAILS = ("all", "group", "nics", "stats", "secgrp", "tmpl", "servoff", "diskoff", "backoff", "iso", "volume", "min",
           "affgrp")


class VirtualMachineResponse(ResponseObject):
    object_name = "virtualmachine"
    id = Out.uuid("the ID of the virtual machine")
    name = Out.string("the name of the virtual machine")
    displayname = Out.string("user generated name. The name of the virtual machine is returned if no "
                             "displayname exists.")
    state = Out.string("the state of the virtual machine")
    account = Out.string("the account associated with the virtual machine")
    domainid = Out.uuid("the ID of the domain in which the virtual machine exists")
    domain = Out.string("the name of the domain in which the virtual machine exists")
    zoneid = Out.uuid("the ID of the availability zone for the virtual machine")
    zonename = Out.string("the name of the availability zone for the virtual machine")
    templateid = Out.uuid("the ID of the template for the virtual machine")
    templatename = Out.string("the name of the template for the virtual machine")
    serviceofferingid = Out.uuid("the ID of the service offering of the virtual machine")
    serviceofferingname = Out.string("the name of the service offering of the virtual machine")
    cpunumber = Out.integer("the number of vCPUs this virtual machine is using")
    memory = Out.integer("the memory allocated for the virtual machine")
    hypervisor = Out.string("the hypervisor on which the template runs")
    created = Out.date("the date when this virtual machine was created")
    nic = Out.list("the list of nics associated with vm")
    tags = Out.list("the list of resource tags associated")
    hasannotations = Out.boolean("true if the entity/resource has annotations")


class ListVirtualMachines(ListOwnedCommand):
    api_name = "listVirtualMachines"
    description = "List the virtual machines owned by the account."
    roles = ALL_ROLES
    response = VirtualMachineResponse
    java_class = "org.apache.cloudstack.api.command.user.vm.ListVMsCmd"

    class Params(_ListOwnedParams):
        zoneid = p.uuid("the availability zone ID", entity=DataCenter, related="listZones")
        state = p.string("state of the virtual machine. Possible values are: Running, Stopped, Present, Destroyed, "
                         "Expunged. Present is used for the state equal not destroyed.")
        details = p.string_list("comma separated list of vm details requested, value can be a list of [all, group, "
                                "nics, stats, secgrp, tmpl, servoff, diskoff, backoff, iso, volume, min, affgrp]. "
                                "If no parameter is passed in, the details will be defaulted to all")

    def execute(self) -> ListResult:
        check_choices("details", self.arg("details"), DETAILS)
        return nothing(self, VirtualMachineResponse, owned=True)
