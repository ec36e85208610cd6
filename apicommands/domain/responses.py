"""The ``domain`` response object."""
from typing import Any

from cloudstack_kms.api.declare import Out, ResponseObject
from cloudstack_kms.models import Domain


class DomainResponse(ResponseObject):
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


def domain_view(domain: Domain, parent: Domain | None, has_child: bool) -> dict[str, Any]:
    """DomainResponse fields; ``path`` is ``ROOT`` or ``ROOT/child/grandchild``."""
    return {
        "id": domain.uuid, "name": domain.name, "level": domain.level,
        "parentdomainid": parent.uuid if parent else None, "parentdomainname": parent.name if parent else None,
        "haschild": has_child, "networkdomain": domain.network_domain, "path": domain.display_path,
        "state": domain.state, "created": domain.created, "hasannotations": False,
    }
