"""The ``domain`` response object, and the resource-count fields it shares with ``account``."""
from typing import Any

from marshmallow import fields

from cloudstack_kms.api.declare import Out, ResponseObject
from cloudstack_kms.models import Domain
from cloudstack_kms.services.tenancy import RESOURCE_FAMILIES

#: What each resource family counts, for the field descriptions.
_FAMILY_NOUNS = {
    "vm": "virtual machines", "ip": "public IP addresses", "volume": "volumes", "snapshot": "snapshots",
    "template": "templates", "project": "projects", "network": "networks", "vpc": "VPCs", "cpu": "CPU cores",
    "memory": "memory (in MiB)", "primarystorage": "primary storage space (in GiB)",
    "secondarystorage": "secondary storage space (in GiB)", "backup": "backups",
    "backupstorage": "backup storage space (in GiB)", "bucket": "buckets",
    "objectstorage": "object storage space (in GiB)", "gpu": "GPUs",
}


def _resource_count_fields() -> dict[str, fields.Field]:
    declared: dict[str, fields.Field] = {}
    for family in RESOURCE_FAMILIES:
        noun = _FAMILY_NOUNS[family]
        declared[f"{family}limit"] = Out.string(f"the total number of {noun} the owner can use")
        declared[f"{family}total"] = Out.long(f"the total number of {noun} the owner uses")
        declared[f"{family}available"] = Out.string(f"the total number of {noun} still available to the owner")
    declared["secondarystoragetotal"] = fields.Raw(metadata={
        "type": "float", "description": f"the total number of {_FAMILY_NOUNS['secondarystorage']} the owner uses",
        "roles": None})
    return declared


#: ``<family>limit``/``total``/``available`` for each resource family (left out with ``details=min``).
ResourceCountFields = type("ResourceCountFields", (ResponseObject,), _resource_count_fields())


class DomainResponse(ResourceCountFields):
    object_name = "domain"
    id = Out.uuid("the ID of the domain")
    name = Out.string("the name of the domain")
    level = Out.integer("the level of the domain")
    parentdomainid = Out.uuid("the domain ID of the parent domain")
    parentdomainname = Out.string("the domain name of the parent domain")
    haschild = Out.boolean("whether the domain has one or more sub-domains")
    networkdomain = Out.string("the network domain")
    path = Out.string("the path of the domain")
    state = Out.string("the state of the domain")
    created = Out.date("the date when this domain was created")
    hasannotations = Out.boolean("true if the entity/resource has annotations")


def domain_view(domain: Domain, parent: Domain | None, has_child: bool,
                resources: dict[str, Any] | None = None) -> dict[str, Any]:
    """DomainResponse fields; ``path`` is ``ROOT`` or ``ROOT/child/grandchild``; ``resources`` the
    resource-count fields (from ``tenancy.domain_resource_usage``), when asked for."""
    view = {
        "id": domain.uuid, "name": domain.name, "level": domain.level,
        "parentdomainid": parent.uuid if parent else None, "parentdomainname": parent.name if parent else None,
        "haschild": has_child, "networkdomain": domain.network_domain, "path": domain.display_path,
        "state": domain.state, "created": domain.created, "hasannotations": False,
    }
    view.update(resources or {})
    return view
