"""The ``diskoffering`` response object."""
from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from cloudstack_kms.api.declare import Out, ResponseObject
from cloudstack_kms.models.volume import DiskOffering

from . import restrictions

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
    cacheMode = Out.string("the cache mode to use for this disk offering. none, writeback, writethrough or "
                           "hypervisor_default")
    disksizestrictness = Out.boolean("To allow or disallow the resize operation on the disks created from this "
                                     "disk offering, if the flag is true then resize is not allowed")
    state = Out.string("state of the disk offering")
    domainid = Out.string("the domain ID(s) this disk offering belongs to. Ignore this information as it is not "
                          "currently applicable.")
    domain = Out.string("the domain name(s) this disk offering belongs to. Ignore this information as it is not "
                        "currently applicable.")
    zoneid = Out.string("the zone ID(s) this disk offering belongs to. Ignore this information as it is not "
                        "currently applicable.")
    zone = Out.string("the zone name(s) this disk offering belongs to. Ignore this information as it is not "
                      "currently applicable.")
    hasannotations = Out.boolean("true if the entity/resource has annotations")


def _joined(rows: list[Any], attr: str) -> str | None:
    return ",".join(getattr(r, attr) or "" for r in rows) if rows else None


def offering_view(offering: DiskOffering, limits: dict[str, list[Any]]) -> dict:
    """``limits``: the offering's zone and domain rows (:func:`restrictions.limits`)."""
    zones, domains = limits[restrictions.ZONE], limits[restrictions.DOMAIN]
    return {"id": offering.uuid, "name": offering.name, "displaytext": offering.display_text,
            "disksize": offering.disk_size // GIB, "created": offering.created,
            "iscustomized": bool(offering.customized), "tags": offering.tags,
            "storagetype": "local" if offering.use_local_storage else "shared",
            "provisioningtype": offering.provisioning_type, "displayoffering": bool(offering.display_offering),
            "encrypt": bool(offering.encrypt), "cacheMode": offering.cache_mode,
            "disksizestrictness": bool(offering.disk_size_strictness), "state": offering.state,
            "domainid": _joined(domains, "uuid"), "domain": _joined(domains, "name"),
            "zoneid": _joined(zones, "uuid"), "zone": _joined(zones, "name"), "hasannotations": False}


def offering_views(session: Session, offerings: list[DiskOffering]) -> list[dict]:
    found = restrictions.limits(session, offerings)
    return [offering_view(o, found[o.id]) for o in offerings]
