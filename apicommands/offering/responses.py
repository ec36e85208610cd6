"""The ``diskoffering`` response object."""
from cloudstack_kms.api.declare import Out, ResponseObject
from cloudstack_kms.models.volume import DiskOffering

GIB = 1024 ** 3


class DiskOfferingResponse(ResponseObject):
    object_name = "diskoffering"
    id = Out.uuid("unique ID of the disk offering")
    name = Out.string("the name of the disk offering")
    displaytext = Out.string("an alternate display text of the disk offering.")
    disksize = Out.long("the size of the disk offering in GB")
    created = Out.date("the date this disk offering was created")
    iscustomized = Out.boolean("true if disk offering uses custom size, false otherwise")
    tags = Out.string("the tags for the disk offering")
    storagetype = Out.string("the storage type for this disk offering")
    provisioningtype = Out.string("provisioning type used to create volumes.")
    displayoffering = Out.boolean("whether to display the offering to the end user or not.")
    encrypt = Out.boolean("Whether disks using this offering will be encrypted on primary storage")
    hasannotations = Out.boolean("true if the entity/resource has annotations")


def offering_view(offering: DiskOffering) -> dict:
    return {"id": offering.uuid, "name": offering.name, "displaytext": offering.display_text,
            "disksize": offering.disk_size // GIB, "created": offering.created,
            "iscustomized": bool(offering.customized), "tags": offering.tags,
            "storagetype": "local" if offering.use_local_storage else "shared",
            "provisioningtype": offering.provisioning_type, "displayoffering": bool(offering.display_offering),
            "encrypt": bool(offering.encrypt), "hasannotations": False}
