"""``listCapabilities``: what the web UI and CloudMonkey read after login."""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import ALL_ROLES, BaseParams, Command, ObjectResult
from cloudstack_kms.api.declare import Out, ResponseObject
from cloudstack_kms.api.render import CLOUDSTACK_VERSION
from cloudstack_kms.services import settings


class CapabilityResponse(ResponseObject):
    object_name = "capability"
    securitygroupsenabled = Out.boolean("true if security groups support is enabled, false otherwise")
    dynamicrolesenabled = Out.boolean("true if dynamic role-based api checker is enabled, false otherwise")
    cloudstackversion = Out.string("version of the cloud stack")
    userpublictemplateenabled = Out.boolean("true if user and domain admins can set templates to be shared")
    supportELB = Out.string("true if region supports elastic load balancer on basic zones")
    projectinviterequired = Out.boolean("If invitation confirmation is required when add account to project")
    allowusercreateprojects = Out.boolean("true if regular user is allowed to create projects")
    customdiskofferingminsize = Out.long("minimum size that can be specified when create disk from disk offering "
                                         "with custom size")
    customdiskofferingmaxsize = Out.long("maximum size that can be specified when create disk from disk offering "
                                         "with custom size")
    regionsecondaryenabled = Out.boolean("true if region wide secondary is enabled, false otherwise")
    apilimitinterval = Out.integer("time interval (in seconds) to reset api count")
    apilimitmax = Out.integer("Max allowed number of api requests within the specified interval")
    kvmsnapshotenabled = Out.boolean("true if snapshot is supported for KVM host, false otherwise")
    allowuserviewdestroyedvm = Out.boolean("true if the user is allowed to view destroyed virtualmachines")
    allowuserexpungerecovervm = Out.boolean("true if the user can recover and expunge virtualmachines")
    allowuserexpungerecovervolume = Out.boolean("true if the user can recover and expunge volumes")
    allowuserviewalldomainaccounts = Out.boolean("true if users can see all accounts within the same domain")
    allowuserforcestopvm = Out.boolean("true if users are allowed to force stop a vm")
    kubernetesserviceenabled = Out.boolean("true if Kubernetes Service plugin is enabled, false otherwise")
    kubernetesclusterexperimentalfeaturesenabled = Out.boolean(
        "true if experimental features for Kubernetes cluster such as Docker private registry are enabled")
    defaultuipagesize = Out.long("default page size in the UI for various views")
    instancesstatsretentiontime = Out.integer("the retention time for Instances stats")
    instancesstatsuseronly = Out.boolean("true if stats are collected only for user instances")
    instancesdisksstatsretentionenabled = Out.boolean("true if stats are retained for instance disks")
    instancesdisksstatsretentiontime = Out.integer("the retention time for Instances disks stats")


class ListCapabilities(Command):
    api_name = "listCapabilities"
    description = "Lists capabilities"
    roles = ALL_ROLES
    response = CapabilityResponse
    java_class = "org.apache.cloudstack.api.command.user.config.ListCapabilitiesCmd"
    read_only = True

    class Params(BaseParams):
        domainid = p.uuid("the domain for listing capabilities.", since="4.20.0", related="listDomains")

    def execute(self) -> ObjectResult:
        page_size = settings.get_value(self.ctx.session, "default.page.size")
        return ObjectResult(CapabilityResponse, {
            "securitygroupsenabled": False, "dynamicrolesenabled": True, "cloudstackversion": CLOUDSTACK_VERSION,
            "userpublictemplateenabled": True, "supportELB": "false", "projectinviterequired": False,
            "allowusercreateprojects": False, "customdiskofferingminsize": 1, "customdiskofferingmaxsize": 1024,
            "regionsecondaryenabled": False, "apilimitinterval": 1, "apilimitmax": 0, "kvmsnapshotenabled": True,
            "allowuserviewdestroyedvm": False, "allowuserexpungerecovervm": False,
            "allowuserexpungerecovervolume": True, "allowuserviewalldomainaccounts": False,
            "allowuserforcestopvm": True, "kubernetesserviceenabled": False,
            "kubernetesclusterexperimentalfeaturesenabled": False, "defaultuipagesize": min(page_size, 20),
            "instancesstatsretentiontime": 720, "instancesstatsuseronly": False,
            "instancesdisksstatsretentionenabled": False, "instancesdisksstatsretentiontime": 720,
        })
