"""``createDiskOffering``: with ``encrypt``, volumes of the offering are LUKS-encrypted.

``zoneid`` and ``domainid`` limit the offering to zones and domains (both lists; none: every zone,
a public offering). A domain admin may only create offerings for domains in its subtree, never a
public one, as upstream.
"""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.access import can_access_domain
from cloudstack_kms.api.command import ADMINS, BaseParams, Command, ObjectResult
from cloudstack_kms.errors import InvalidParameterValue
from cloudstack_kms.models import DataCenter, Domain
from cloudstack_kms.models.volume import DiskOffering

from . import restrictions
from .responses import GIB, DiskOfferingResponse, offering_views

CACHE_MODES = ("none", "writeback", "writethrough", "hypervisor_default")


class CreateDiskOffering(Command):
    api_name = "createDiskOffering"
    description = "Creates a disk offering."
    roles = ADMINS
    response = DiskOfferingResponse
    related = "listDiskOfferings"
    event_type = "DISK.OFFERING.CREATE"
    event_resource_type = "DiskOffering"
    java_class = "org.apache.cloudstack.api.command.admin.offering.CreateDiskOfferingCmd"

    class Params(BaseParams):
        name = p.string("name of the disk offering", required=True)
        displaytext = p.string("An alternate display text of the disk offering, defaults to 'name'.", length=4096)
        disksize = p.long("size of the disk offering in GB (1GB = 1,073,741,824 bytes)")
        customized = p.boolean("whether disk offering size is custom or not")
        tags = p.string("tags for the disk offering", length=4096)
        storagetype = p.string("the storage type of the disk offering. Values are local and shared.",
                               choices=("local", "shared"))
        provisioningtype = p.string("provisioning type used to create volumes. Valid values are thin, sparse, fat.",
                                    choices=("thin", "sparse", "fat"))
        displayoffering = p.boolean("an optional field, whether to display the offering to the end user or not.")
        encrypt = p.boolean("Volumes using this offering should be encrypted", since="4.18")
        domainid = p.uuid_list("the ID of the containing domain(s), null for public offerings", entity=Domain,
                               related="listDomains")
        zoneid = p.uuid_list("the ID of the containing zone(s), null for public offerings", entity=DataCenter,
                             related="listZones", since="4.13")
        cachemode = p.string("the cache mode to use for this disk offering. none, writeback, writethrough or "
                             "hypervisor_default",
                             since="4.14", choices=CACHE_MODES)
        disksizestrictness = p.boolean("To allow or disallow the resize operation on the disks created from this "
                                       "disk offering, if the flag is true then resize is not allowed", since="4.16")

    def execute(self) -> ObjectResult:
        ctx = self.ctx
        customized = bool(self.arg("customized"))
        size = self.arg("disksize")
        if not customized and (size is None or size <= 0):
            raise InvalidParameterValue("Disksize is required for a non-customized disk offering")
        if customized and size:
            raise InvalidParameterValue("Disksize should not be specified for a customized disk offering")
        domains = self._domains()
        offering = DiskOffering(name=self.args["name"], display_text=self.arg("displaytext", self.args["name"]),
                                disk_size=0 if customized else size * GIB, customized=customized,
                                tags=self.arg("tags"),
                                use_local_storage=(self.arg("storagetype") or "").lower() == "local",
                                provisioning_type=(self.arg("provisioningtype") or "thin").lower(),
                                display_offering=self.arg("displayoffering", True), encrypt=bool(self.arg("encrypt")),
                                cache_mode=(self.arg("cachemode") or "none").lower(),
                                disk_size_strictness=bool(self.arg("disksizestrictness")))
        ctx.session.add(offering)
        ctx.session.flush()
        restrictions.set_limits(ctx.session, offering, self.arg("zoneid") or [], domains)
        self.event_resource = offering
        return ObjectResult(DiskOfferingResponse, offering_views(ctx.session, [offering])[0])

    def _domains(self) -> list[Domain]:
        """The domains named, without those under another one named (upstream drops them as redundant);
        a domain admin must name some, all in its subtree."""
        ctx = self.ctx
        named: list[Domain] = list({d.id: d for d in self.arg("domainid") or []}.values())
        domains = [d for d in named if not any(o.id != d.id and d.path.startswith(o.path) for o in named)]
        if not ctx.is_root_admin:
            if not domains:
                raise InvalidParameterValue(f"Unable to create public disk offering by admin: {ctx.user.uuid} "
                                            "because it is domain-admin")
            for domain in domains:
                if not can_access_domain(ctx, domain):
                    raise InvalidParameterValue(f"Unable to create disk offering by another domain-admin: "
                                                f"{ctx.user.uuid} for domain: {domain.uuid}")
        return domains

    def event_description(self) -> str:
        return f"Creating disk offering: {self.args['name']}"
