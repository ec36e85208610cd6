"""``createKMSKey``: a zone-scoped KEK in an HSM profile, owned by an account."""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.access import check_account_access, check_domain_access, find_account
from cloudstack_kms.api.command import ALL_ROLES, BaseParams, Command, ObjectResult
from cloudstack_kms.errors import InvalidParameterValue, PermissionDenied
from cloudstack_kms.models import DataCenter, Domain
from cloudstack_kms.services.kms import keys, profiles
from cloudstack_kms.services.kms.runtime import runtime_of

from .lookups import PROJECT_REFUSED, find_profile, refuse_project
from .responses import KmsKeyResponse


class CreateKMSKey(Command):
    api_name = "createKMSKey"
    description = "Creates a KMS key (a key encryption key kept in an HSM profile) for volume encryption"
    since = "4.23.0"
    roles = ALL_ROLES
    response = KmsKeyResponse
    related = "listKMSKeys,updateKMSKey"
    event_type = "KMS.KEY.CREATE"
    event_resource_type = "KmsKey"
    java_class = "org.apache.cloudstack.api.command.user.kms.CreateKMSKeyCmd"

    class Params(BaseParams):
        name = p.string("the name of the KMS key", required=True)
        description = p.string("the description of the KMS key", length=1024)
        zoneid = p.uuid("the zone in which the key is valid", required=True, entity=DataCenter,
                        related="listZones")
        hsmprofileid = p.uuid("the HSM profile that will hold the key encryption key", required=True,
                              related="listHSMProfiles")
        keybits = p.integer("the size of the key encryption key in bits: 128, 192 or 256 (default 256)")
        account = p.string("the account owning the key; must be used with domainid")
        domainid = p.uuid("the domain of the owning account; must be used with account", entity=Domain,
                          related="listDomains")
        projectid = p.uuid("the project owning the key" + PROJECT_REFUSED)

    def execute(self) -> ObjectResult:
        ctx, session = self.ctx, self.ctx.session
        refuse_project(self.api_name, self.arg("projectid"))
        owner = self._owner()
        key_bits = self.arg("keybits", 256)
        if key_bits not in (128, 192, 256):
            raise InvalidParameterValue("Key bits must be 128, 192, or 256")
        profile = find_profile(session, self.args["hsmprofileid"])
        profiles.check_usable_by_caller(session, ctx.account, profile)
        profiles.check_fits_owner(profile, owner)
        key = keys.create_key(session, runtime_of(ctx.state), ctx.state.master_key, owner=owner,
                              name=self.args["name"], description=self.arg("description"),
                              zone=self.args["zoneid"], profile=profile, key_bits=key_bits)
        self.event_resource, self.event_account = key, owner
        return ObjectResult(KmsKeyResponse, keys.key_view(session, key))

    def _owner(self):  # noqa: ANN202
        ctx = self.ctx
        domain = self.arg("domainid")
        name = self.arg("account")
        if domain is not None and name is None:
            raise InvalidParameterValue("Account name must be provided with domain ID")
        if name is None:
            return ctx.account
        if domain is None:
            raise InvalidParameterValue("Account name must be provided with domain ID")
        if not ctx.is_admin and not (name == ctx.account.account_name and domain.id == ctx.account.domain_id):
            raise PermissionDenied(f"Account {ctx.account.account_name} does not have permission to act for "
                                   f"account {name}")
        check_domain_access(ctx, domain)
        owner = find_account(ctx, name, domain)
        check_account_access(ctx, owner)
        return owner

    def event_description(self) -> str:
        key = getattr(self, "event_resource", None)
        return f"Created KMS key: {self.args['name']} (uuid: {key.uuid if key else ''})"
