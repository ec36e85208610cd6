"""``listServiceOfferings``: this server runs no instances, so it has no compute or system offerings.

The answer is the empty list (``{"listserviceofferingsresponse":{}}``), but every parameter is
still checked as a list over real rows would check it: paging, ``id`` (no offering exists, so any
id is unknown: 431), the domain scope (``domainid`` must be in the caller's scope), a zone that
must exist, and the values of the fixed vocabularies (``state``, ``systemvmtype``, ``storagetype``).
Filters over the empty set then hold trivially. The web UI needs the command for its Offerings
menu (``listServiceOfferings`` and ``listDiskOfferings`` both in listApis).
"""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.access import check_domain_access
from cloudstack_kms.api.command import ALL_ROLES, ListCommand, ListResult, _ListParams
from cloudstack_kms.api.declare import Out, ResponseObject
from cloudstack_kms.errors import invalid_uuid
from cloudstack_kms.api.listing import max_page_size, page_window
from cloudstack_kms.models import DataCenter, Domain

from .states import offering_state


class ServiceOfferingResponse(ResponseObject):
    object_name = "serviceoffering"
    id = Out.uuid("the id of the service offering")
    name = Out.string("the name of the service offering")
    displaytext = Out.string("an alternate display text of the service offering.")
    cpunumber = Out.integer("the number of CPU")
    cpuspeed = Out.integer("the clock rate CPU speed in Mhz")
    memory = Out.integer("the memory in MB")
    created = Out.date("the date this service offering was created")
    storagetype = Out.string("the storage type for this service offering")
    provisioningtype = Out.string("provisioning type used to create volumes.")
    offerha = Out.boolean("the ha support in the service offering")
    limitcpuuse = Out.boolean("restrict the CPU usage to committed service offering")
    isvolatile = Out.boolean("true if the vm needs to be volatile, i.e., on every reboot of vm from API root disk "
                             "is discarded and creates a new root disk")
    tags = Out.string("the tags for the service offering")
    domainid = Out.string("the domain ID(s) this disk offering belongs to. Ignore this information as it is not "
                          "currently applicable.")
    domain = Out.string("the domain name(s) this disk offering belongs to. Ignore this information as it is not "
                        "currently applicable.")
    zoneid = Out.string("the zone ID(s) this disk offering belongs to. Ignore this information as it is not "
                        "currently applicable.")
    zone = Out.string("the zone name(s) this disk offering belongs to. Ignore this information as it is not "
                      "currently applicable.")
    issystem = Out.boolean("is this a system vm offering")
    defaultuse = Out.boolean("is this a  default system vm offering")
    systemvmtype = Out.string("is this a the systemvm type for system vm offering")
    iscustomized = Out.boolean("is true if the offering is customized")
    encryptroot = Out.boolean("true if virtual machine root disk will be encrypted on storage")
    state = Out.string("state of the service offering")
    hasannotations = Out.boolean("true if the entity/resource has annotations")


class ListServiceOfferings(ListCommand):
    api_name = "listServiceOfferings"
    description = "Lists all available service offerings."
    roles = ALL_ROLES
    response = ServiceOfferingResponse
    java_class = "org.apache.cloudstack.api.command.user.offering.ListServiceOfferingsCmd"

    class Params(_ListParams):
        id = p.uuid("ID of the service offering", related="listServiceOfferings")
        name = p.string("name of the service offering")
        domainid = p.uuid("the ID of the domain associated with the service offering", entity=Domain,
                          related="listDomains")
        isrecursive = p.boolean("defaults to false, but if true, lists all resources from the parent specified by "
                                "the domainId till leaves.")
        listall = p.boolean("If set to false, list only resources belonging to the command's caller; if set to "
                            "true - list resources that the caller is authorized to see. Default value is false")
        zoneid = p.uuid("id of zone disk offering is associated with", entity=DataCenter, related="listZones",
                        since="4.13")
        issystem = p.boolean("is this a system vm offering")
        systemvmtype = p.string("the system VM type. Possible types are \"consoleproxy\", \"secondarystoragevm\" or "
                                "\"domainrouter\".", choices=("consoleproxy", "secondarystoragevm", "domainrouter"))
        storagetype = p.string("the storage type of the service offering. Values are local and shared.",
                               since="4.19", choices=("local", "shared"))
        state = p.string("Filter by state of the service offering. Defaults to 'Active'. If set to 'all' shows both "
                         "Active & Inactive offerings.", since="4.19")
        cpunumber = p.integer("the CPU number that listed offerings must support", since="4.15")
        cpuspeed = p.integer("the CPU speed that listed offerings must support", since="4.15")
        memory = p.integer("the RAM memory that listed offering must support", since="4.15")
        encryptroot = p.boolean("listed offerings support root disk encryption", since="4.18")
        gpuenabled = p.boolean("Flag to indicate if the service offerings should be filtered by GPU support",
                               since="4.21.0")

    def execute(self) -> ListResult:
        if self.arg("id"):  # no offering exists, so no id names one
            raise invalid_uuid(self.api_name, "id", self.args["id"])
        if self.arg("domainid") is not None:
            check_domain_access(self.ctx, self.args["domainid"])
        offering_state(self.arg("state"))
        page_window(self.args, max_page_size(self.ctx.session))
        return ListResult(ServiceOfferingResponse, [], 0)
