"""The ``volume`` response object."""
from cloudstack_kms.api.command import ADMINS
from cloudstack_kms.api.declare import Out, ResponseObject


class VolumeResponse(ResponseObject):
    object_name = "volume"
    id = Out.uuid("ID of the disk volume")
    name = Out.string("name of the disk volume")
    zoneid = Out.uuid("ID of the availability zone")
    zonename = Out.string("name of the availability zone")
    type = Out.string("type of the disk volume (ROOT or DATADISK)")
    size = Out.long("size of the disk volume")
    created = Out.date("the date the disk volume was created")
    state = Out.string("the state of the disk volume")
    account = Out.string("the account associated with the disk volume")
    accountid = Out.uuid("the ID of the account associated with the disk volume")
    domainid = Out.uuid("the ID of the domain associated with the disk volume")
    domain = Out.string("the domain associated with the disk volume")
    domainpath = Out.string("path of the Domain the disk volume belongs to")
    storagetype = Out.string("shared or local storage")
    hypervisor = Out.string("Hypervisor the volume belongs to")
    provisioningtype = Out.string("provisioning type used to create volumes.")
    diskofferingid = Out.uuid("ID of the disk offering")
    diskofferingname = Out.string("name of the disk offering")
    diskofferingdisplaytext = Out.string("the display text of the disk offering")
    storage = Out.string("name of the primary storage hosting the disk volume", roles=ADMINS)
    storageid = Out.uuid("id of the primary storage hosting the disk volume; returned to admin user only",
                         roles=ADMINS)
    path = Out.string("the path of the volume", roles=ADMINS)
    encryptformat = Out.string("the format of the disk encryption if applicable")
    kmskeyid = Out.uuid("the ID of the KMS key whose KEK wraps the volume's data encryption key")
    kmskey = Out.string("the name of the KMS key of the volume")
    kmskeyversion = Out.integer("the KEK version currently wrapping the volume's data encryption key")
    volumecheckresult = Out.map("details for the volume check result, they may vary for different hypervisors")
    destroyed = Out.boolean("the boolean state of whether the volume is destroyed or not")
    isextractable = Out.boolean("true if the volume is extractable, false otherwise")
    displayvolume = Out.boolean("an optional field whether to the display the volume to the end user or not.",
                                roles=ADMINS)
