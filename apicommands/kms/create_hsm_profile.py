"""``createHSMProfile`` (root admin): register the connection settings of a key backend."""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.access import find_account
from cloudstack_kms.api.command import BaseParams, Command, ObjectResult
from cloudstack_kms.errors import InvalidParameterValue, PermissionDenied
from cloudstack_kms.models import DataCenter, Domain
from cloudstack_kms.models.kms import HsmProfile
from cloudstack_kms.providers.base import KmsError
from cloudstack_kms.services.kms import profiles
from cloudstack_kms.services.kms.runtime import runtime_of

from .lookups import PROJECT_REFUSED, refuse_project
from .responses import HsmProfileResponse


def profile_details(groups: list[dict[str, str]]) -> dict[str, str]:
    """The ``details`` map, sent in either CloudStack form (``details[i].key``/``details[i].value``
    or ``details[i].<name>=<value>``).

    Two inputs are refused rather than guessed at, because a guess could store a secret in clear:
    a group mixing both forms (read as named entries, ``details[0].key=pin&details[0].value=S&
    details[0].x=y`` would keep ``S`` under the non-sensitive name ``value``), and names that
    differ only in case (one profile would hold two PINs; MySQL's unique key on the name would
    also refuse the second row).
    """
    for group in groups:
        if {"key", "value"} < set(group):
            raise InvalidParameterValue("Invalid details: a details[i] group holds either key and value, "
                                        "or named entries, not both")
    details = p.map_pairs(groups)
    seen: dict[str, str] = {}
    for name in details:
        if name.lower() in seen:
            raise InvalidParameterValue(f"Duplicate detail name: {name}")
        seen[name.lower()] = name
    return details


class CreateHSMProfile(Command):
    api_name = "createHSMProfile"
    description = "Creates an HSM profile: the connection settings of a KMS key backend (pkcs11 or database)"
    since = "4.23.0"
    response = HsmProfileResponse
    related = "listHSMProfiles,updateHSMProfile"
    event_type = "HSM.PROFILE.CREATE"
    event_resource_type = "HsmProfile"
    java_class = "org.apache.cloudstack.api.command.admin.kms.CreateHSMProfileCmd"

    class Params(BaseParams):
        name = p.string("the name of the HSM profile", required=True)
        protocol = p.string("the provider protocol: pkcs11 (default) or database")
        zoneid = p.uuid("the zone the profile is available in; all zones if not given", entity=DataCenter,
                        related="listZones")
        domainid = p.uuid("the domain of the profile; without account, a profile shared with that domain",
                          entity=Domain, related="listDomains")
        account = p.string("the account owning the profile (with domainid)")
        projectid = p.uuid("the project owning the profile" + PROJECT_REFUSED)
        ispublic = p.boolean("true for a public profile every account may use (root admins only)")
        system = p.boolean("the published admin guide's name for ispublic")
        vendorname = p.string("the vendor name of the HSM", length=64)
        details = p.map_("provider details, e.g. details[0].library=...&details[0].pin=... or "
                         "details[0].key=pin&details[0].value=...; sensitive values are encrypted and masked",
                         sensitive=True)

    def execute(self) -> ObjectResult:
        session, ctx = self.ctx.session, self.ctx
        refuse_project(self.api_name, self.arg("projectid"))
        runtime = runtime_of(ctx.state)
        protocol = (self.arg("protocol") or "pkcs11").strip()
        if not protocol:
            raise InvalidParameterValue("Protocol cannot be empty")
        if not runtime.providers.has(protocol):
            raise InvalidParameterValue(f"No provider found for protocol: {protocol}")
        provider = runtime.provider(protocol)
        details = profile_details(self.arg("details", []))
        try:
            provider.validate_details(details)
        except KmsError as exc:
            raise InvalidParameterValue(exc.message) from None
        public = bool(self.arg("ispublic") or self.arg("system"))
        if public and not ctx.is_root_admin:
            raise PermissionDenied("Only root admins can create system HSM profiles")
        domain = self.arg("domainid")
        account_id, domain_id = ctx.account.id, ctx.account.domain_id
        if self.arg("account"):
            if domain is None:
                raise InvalidParameterValue("Account name must be provided with domain ID")
            owner = find_account(ctx, self.args["account"], domain)
            account_id, domain_id = owner.id, owner.domain_id
        elif domain is not None:
            account_id, domain_id = None, domain.id
        zone = self.arg("zoneid")
        profile = HsmProfile(name=self.args["name"], protocol=protocol.lower(), account_id=account_id,
                             domain_id=domain_id, zone_id=zone.id if zone else None,
                             vendor_name=self.arg("vendorname"), enabled=True, is_public=public)
        session.add(profile)
        session.flush()
        profiles.store_details(session, ctx.state.master_key, profile, details)
        session.flush()
        self.event_resource = profile
        return ObjectResult(HsmProfileResponse, profiles.profile_view(session, profile, ctx.account))

    def event_description(self) -> str:
        resource = getattr(self, "event_resource", None)
        return f"Created HSM profile: {self.args['name']} (uuid: {resource.uuid if resource else ''})"

    @classmethod
    def is_sensitive_map_entry(cls, name: str) -> bool:
        return name.startswith("details[")
