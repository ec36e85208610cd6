"""``createDiskOffering``: with ``encrypt``, volumes of the offering are LUKS-encrypted."""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import ADMINS, BaseParams, Command, ObjectResult
from cloudstack_kms.api.errors import InvalidParameterValue
from cloudstack_kms.models.volume import DiskOffering

from .responses import GIB, DiskOfferingResponse, offering_view


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

    def execute(self) -> ObjectResult:
        customized = bool(self.arg("customized"))
        size = self.arg("disksize")
        if not customized and (size is None or size <= 0):
            raise InvalidParameterValue("Disksize is required for a non-customized disk offering")
        if customized and size:
            raise InvalidParameterValue("Disksize should not be specified for a customized disk offering")
        offering = DiskOffering(name=self.args["name"], display_text=self.arg("displaytext", self.args["name"]),
                                disk_size=0 if customized else size * GIB, customized=customized,
                                tags=self.arg("tags"), use_local_storage=self.arg("storagetype") == "local",
                                provisioning_type=(self.arg("provisioningtype") or "thin").lower(),
                                display_offering=self.arg("displayoffering", True), encrypt=bool(self.arg("encrypt")))
        self.ctx.session.add(offering)
        self.ctx.session.flush()
        self.event_resource = offering
        return ObjectResult(DiskOfferingResponse, offering_view(offering))

    def event_description(self) -> str:
        return f"Creating disk offering: {self.args['name']}"
