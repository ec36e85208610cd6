"""The ``zone`` response object."""
from cloudstack_kms.api.declare import Out, ResponseObject
from cloudstack_kms.models import DataCenter, Domain


class ZoneResponse(ResponseObject):
    object_name = "zone"
    id = Out.uuid("Zone id")
    name = Out.string("Zone name")
    description = Out.string("Zone description")
    displaytext = Out.string("the display text of the zone")
    dns1 = Out.string("the first DNS for the Zone")
    dns2 = Out.string("the second DNS for the Zone")
    ip6dns1 = Out.string("the first IPv6 DNS for the Zone")
    ip6dns2 = Out.string("the second IPv6 DNS for the Zone")
    internaldns1 = Out.string("the first internal DNS for the Zone")
    internaldns2 = Out.string("the second internal DNS for the Zone")
    guestcidraddress = Out.string("the guest CIDR address for the Zone")
    domain = Out.string("Network domain name for the networks in the zone")
    domainid = Out.uuid("the UUID of the containing domain, null for public zones")
    domainname = Out.string("the name of the containing domain, null for public zones")
    networktype = Out.string("the network type of the zone; can be Basic or Advanced")
    securitygroupsenabled = Out.boolean("true if security groups support is enabled, false otherwise")
    allocationstate = Out.string("the allocation state of the cluster")
    zonetoken = Out.string("Zone Token")
    dhcpprovider = Out.string("the dhcp Provider for the Zone")
    localstorageenabled = Out.boolean("true if local storage offering enabled, false otherwise")
    tags = Out.list("the list of resource tags associated with zone.")
    resourcedetails = Out.map("Meta data associated with the zone (key/value pairs)")
    type = Out.string("The type of the zone; can be Core or Edge")
    hasannotations = Out.boolean("true if the entity/resource has annotations")


def zone_view(zone: DataCenter, dedicated: Domain | None = None) -> dict:
    return {
        "id": zone.uuid, "name": zone.name, "description": zone.description, "displaytext": zone.description,
        "dns1": zone.dns1, "dns2": zone.dns2, "ip6dns1": zone.ip6_dns1, "ip6dns2": zone.ip6_dns2,
        "internaldns1": zone.internal_dns1, "internaldns2": zone.internal_dns2,
        "guestcidraddress": zone.guest_network_cidr, "domain": zone.domain,
        "domainid": dedicated.uuid if dedicated else None, "domainname": dedicated.name if dedicated else None,
        "networktype": zone.networktype, "securitygroupsenabled": bool(zone.is_security_group_enabled),
        "allocationstate": zone.allocation_state, "zonetoken": zone.zone_token,
        "dhcpprovider": zone.dhcp_provider, "localstorageenabled": bool(zone.is_local_storage_enabled),
        "tags": [], "resourcedetails": {}, "type": zone.type or "Core", "hasannotations": False,
    }
