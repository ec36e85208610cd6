"""``createZone`` (root admin)."""
from sqlalchemy import select

from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import BaseParams, Command, ObjectResult
from cloudstack_kms.errors import InvalidParameterValue
from cloudstack_kms.models import DataCenter, Domain

from .responses import ZoneResponse, zone_view


class CreateZone(Command):
    api_name = "createZone"
    description = "Creates a Zone."
    response = ZoneResponse
    related = "listZones"
    event_type = "ZONE.CREATE"
    event_resource_type = "Zone"
    java_class = "org.apache.cloudstack.api.command.admin.zone.CreateZoneCmd"

    class Params(BaseParams):
        name = p.string("the name of the Zone", required=True)
        dns1 = p.string("the first DNS for the Zone", required=True)
        networktype = p.string("network type of the zone, can be Basic or Advanced", required=True,
                               choices=("Basic", "Advanced"))
        internaldns1 = p.string("the first internal DNS for the Zone")
        dns2 = p.string("the second DNS for the Zone")
        internaldns2 = p.string("the second internal DNS for the Zone")
        ip6dns1 = p.string("the first DNS for IPv6 network in the Zone")
        ip6dns2 = p.string("the second DNS for IPv6 network in the Zone")
        guestcidraddress = p.string("the guest CIDR address for the Zone")
        domain = p.string("Network domain name for the networks in the zone")
        domainid = p.uuid("the ID of the containing domain, null for public zones", entity=Domain,
                          related="listDomains")
        allocationstate = p.string("Allocation state of this Zone for allocation of new resources",
                                   choices=("Enabled", "Disabled"))
        securitygroupenabled = p.boolean("true if network is security group enabled, false otherwise")
        localstorageenabled = p.boolean("true if local storage offering enabled, false otherwise")
        isedge = p.boolean("true if the zone is an edge zone, false otherwise", since="4.18.0")

    def execute(self) -> ObjectResult:
        name = self.args["name"]
        exists = self.ctx.session.scalars(select(DataCenter).where(DataCenter.name == name,
                                                                   DataCenter.removed.is_(None))).first()
        if exists:
            raise InvalidParameterValue(f"A zone with name: {name} already exists")
        network_type = "Basic" if self.args["networktype"].lower() == "basic" else "Advanced"
        state = self.arg("allocationstate", "Disabled")
        zone = DataCenter(
            name=name, dns1=self.args["dns1"], dns2=self.arg("dns2"),
            internal_dns1=self.arg("internaldns1", self.args["dns1"]), internal_dns2=self.arg("internaldns2"),
            ip6_dns1=self.arg("ip6dns1"), ip6_dns2=self.arg("ip6dns2"),
            guest_network_cidr=self.arg("guestcidraddress"), domain=self.arg("domain"),
            domain_id=self.args["domainid"].id if self.arg("domainid") else None, networktype=network_type,
            allocation_state="Enabled" if state.lower() == "enabled" else "Disabled",
            is_security_group_enabled=bool(self.arg("securitygroupenabled")),
            is_local_storage_enabled=bool(self.arg("localstorageenabled")),
            type="Edge" if self.arg("isedge") else "Core")
        self.ctx.session.add(zone)
        self.ctx.session.flush()
        self.event_resource = zone
        return ObjectResult(ZoneResponse, zone_view(zone, self.arg("domainid")))

    def event_description(self) -> str:
        return f"Creating zone {self.args['name']}"
