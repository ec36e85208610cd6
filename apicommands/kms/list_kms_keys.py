"""``listKMSKeys``: the caller's keys; admins' with listall/isrecursive, as CloudStack lists owned resources."""
from sqlalchemy import select

from cloudstack_kms.api import declare as p
from cloudstack_kms.api.access import list_scope
from cloudstack_kms.api.command import ALL_ROLES, ListOwnedCommand, ListResult, _ListOwnedParams
from cloudstack_kms.api.listing import keyword_filter, paged
from cloudstack_kms.models import DataCenter
from cloudstack_kms.models.kms import PURPOSE_VOLUME, HsmProfile, KmsKey
from cloudstack_kms.services.kms import keys

from .responses import KmsKeyResponse


class ListKMSKeys(ListOwnedCommand):
    api_name = "listKMSKeys"
    description = "Lists KMS keys"
    since = "4.23.0"
    roles = ALL_ROLES
    response = KmsKeyResponse
    related = "createKMSKey"
    java_class = "org.apache.cloudstack.api.command.user.kms.ListKMSKeysCmd"

    class Params(_ListOwnedParams):
        id = p.uuid("the ID of the KMS key", related="listKMSKeys")
        zoneid = p.uuid("list keys valid in this zone", related="listZones")
        enabled = p.boolean("list enabled or disabled keys (a key pending deletion is disabled until its deletion is "
                            "cancelled)")
        hsmprofileid = p.uuid("list keys whose current KEK is in this HSM profile", related="listHSMProfiles")

    def execute(self) -> ListResult:
        session = self.ctx.session
        stmt = select(KmsKey).where(KmsKey.removed.is_(None), KmsKey.purpose == PURPOSE_VOLUME)
        if self.arg("id") and not self.arg("listall") and self.ctx.is_admin and not self.arg("domainid"):
            # Fetching one key by id looks everywhere the caller may see, as CloudStack does.
            self.args["listall"] = True
        stmt = list_scope(self.ctx, stmt, KmsKey.account_id, KmsKey.domain_id, self.args)
        if self.arg("id"):
            stmt = stmt.where(KmsKey.uuid == self.args["id"])
        if self.arg("zoneid"):
            stmt = stmt.where(KmsKey.zone_id.in_(select(DataCenter.id).where(DataCenter.uuid == self.args["zoneid"])))
        if self.arg("hsmprofileid"):
            stmt = stmt.where(KmsKey.hsm_profile_id.in_(
                select(HsmProfile.id).where(HsmProfile.uuid == self.args["hsmprofileid"])))
        if self.arg("enabled") is not None:
            # The flag is false while a deletion is pending (services/kms/deletion.py), as ``enabled``
            # then reads in the response: the filter and the answer agree.
            stmt = stmt.where(KmsKey.enabled.is_(self.args["enabled"]))
        stmt = keyword_filter(stmt, self.args, KmsKey.name, KmsKey.description)
        rows, total = paged(session, stmt, self.args, KmsKey.id)
        return ListResult(KmsKeyResponse, [keys.key_view(session, k) for k in rows], total)
