"""The ``hsmprofile`` and ``kmskey`` response objects."""
from cloudstack_kms.api.command import ROOT_ONLY
from cloudstack_kms.api.declare import Out, ResponseObject


class HsmProfileResponse(ResponseObject):
    object_name = "hsmprofile"
    id = Out.uuid("the ID of the HSM profile")
    name = Out.string("the name of the HSM profile")
    protocol = Out.string("the protocol of the HSM profile (provider name, e.g. pkcs11 or database)")
    account = Out.string("the account owning the HSM profile")
    accountid = Out.uuid("the ID of the account owning the HSM profile")
    domainid = Out.uuid("the ID of the domain of the HSM profile")
    domain = Out.string("the name of the domain of the HSM profile")
    domainpath = Out.string("the path of the domain of the HSM profile")
    zoneid = Out.uuid("the ID of the zone the HSM profile is limited to; absent for all zones")
    zonename = Out.string("the name of the zone the HSM profile is limited to")
    vendor = Out.string("the vendor name of the HSM")
    enabled = Out.boolean("whether the HSM profile is enabled")
    ispublic = Out.boolean("whether the HSM profile is public (usable by every account)")
    created = Out.date("the date the HSM profile was created")
    details = Out.map("the connection details of the HSM profile; sensitive values are masked")
    reachable = Out.boolean("whether the HSM answered the last background health check of the server answering "
                            "(root admins only; absent until the first check)", roles=ROOT_ONLY)


class KmsKeyResponse(ResponseObject):
    object_name = "kmskey"
    id = Out.uuid("the ID of the KMS key")
    name = Out.string("the name of the KMS key")
    description = Out.string("the description of the KMS key")
    account = Out.string("the account owning the KMS key")
    accountid = Out.uuid("the ID of the account owning the KMS key")
    domainid = Out.uuid("the ID of the domain of the KMS key owner")
    domain = Out.string("the name of the domain of the KMS key owner")
    domainpath = Out.string("the path of the domain of the KMS key owner")
    zoneid = Out.uuid("the ID of the zone the KMS key is valid in")
    zonename = Out.string("the name of the zone the KMS key is valid in")
    hsmprofileid = Out.uuid("the ID of the HSM profile holding the current KEK")
    hsmprofile = Out.string("the name of the HSM profile holding the current KEK")
    algorithm = Out.string("the algorithm of the KMS key")
    keybits = Out.integer("the size in bits of the key encryption key")
    version = Out.integer("the number of the active KEK version")
    enabled = Out.boolean("whether the KMS key is enabled")
    state = Out.string("the state of the KMS key: Enabled, Disabled or PendingDeletion (not upstream; see "
                       "cancelKMSKeyDeletion)")
    deletiondate = Out.date("the date (UTC) the KMS key pending deletion is deleted on; absent otherwise")
    created = Out.date("the date the KMS key was created")
    keklabel = Out.string("the label of the current KEK in its provider (root admins only)", roles=ROOT_ONLY)
    versions = Out.list("the KEK versions of the key: version, status (Active, Previous, Archived), hsmprofileid, "
                        "hsmprofile, keklabel, wrappedkeys still wrapped by it, created (root admins only)",
                        roles=ROOT_ONLY)
