"""``listHSMProfiles``: root sees all; others their own, their domain's, and with listall the public ones."""
from sqlalchemy import and_, or_, select

from cloudstack_kms.api import declare as p
from cloudstack_kms.api.access import check_account_visible, check_domain_access, find_account
from cloudstack_kms.api.command import ALL_ROLES, ListOwnedCommand, ListResult, _ListOwnedParams
from cloudstack_kms.errors import InvalidParameterValue
from cloudstack_kms.api.listing import keyword_filter, paged
from cloudstack_kms.models import Domain
from cloudstack_kms.models.kms import HsmProfile
from cloudstack_kms.services.kms import profiles

from .responses import HsmProfileResponse


class ListHSMProfiles(ListOwnedCommand):
    api_name = "listHSMProfiles"
    description = "Lists HSM profiles"
    since = "4.23.0"
    roles = ALL_ROLES
    response = HsmProfileResponse
    related = "createHSMProfile"
    java_class = "org.apache.cloudstack.api.command.user.kms.ListHSMProfilesCmd"

    class Params(_ListOwnedParams):
        id = p.uuid("the ID of the HSM profile", related="listHSMProfiles")
        name = p.string("the name of the HSM profile")
        zoneid = p.uuid("list profiles limited to this zone", related="listZones")
        protocol = p.string("list profiles of this protocol")
        enabled = p.boolean("list enabled or disabled profiles")
        ispublic = p.boolean("list public or non-public profiles")

    def _named_account(self):  # noqa: ANN202 - Account | None
        """The account named by ``account`` + ``domainid``, checked for the caller; None if not named."""
        name = self.arg("account")
        if name is None:
            return None
        domain = self.arg("domainid")
        if domain is None:
            raise InvalidParameterValue("Account name and domain id must be specified together")
        if name == self.ctx.account.account_name and domain.id == self.ctx.account.domain_id:
            return None  # the caller itself
        self._check_domain(domain)
        owner = find_account(self.ctx, name, domain)
        check_account_visible(self.ctx, owner)
        return owner

    def _check_domain(self, domain: Domain) -> None:
        """Any caller may name its own domain; domain admins their subtree (CloudStack's DomainChecker)."""
        if domain.id != self.ctx.account.domain_id:
            check_domain_access(self.ctx, domain)

    def execute(self) -> ListResult:
        ctx, session = self.ctx, self.ctx.session
        stmt = select(HsmProfile).where(HsmProfile.removed.is_(None))
        if ctx.is_root_admin:
            domain = self.arg("domainid")
            if self.arg("account") and domain is not None:
                stmt = stmt.where(HsmProfile.account_id == find_account(ctx, self.args["account"], domain).id)
            elif domain is not None:
                stmt = stmt.where(HsmProfile.domain_id == domain.id)
        else:
            owner = self._named_account() or ctx.account
            mine = HsmProfile.account_id == owner.id
            shared = and_(HsmProfile.account_id.is_(None), HsmProfile.domain_id == owner.domain_id)
            if owner is not ctx.account:
                # ``account`` + ``domainid``: that account's view (its own and its domain's profiles).
                stmt = stmt.where(or_(mine, shared))
            elif self.arg("listall"):
                visible = [mine, shared, HsmProfile.is_public.is_(True)]
                if ctx.is_domain_admin:
                    subtree = select(Domain.id).where(Domain.path.startswith(ctx.domain.path, autoescape=True))
                    visible.append(and_(HsmProfile.account_id.is_not(None), HsmProfile.domain_id.in_(subtree)))
                stmt = stmt.where(or_(*visible))
            else:
                stmt = stmt.where(or_(mine, shared))
            if self.arg("domainid") is not None:
                self._check_domain(self.args["domainid"])
                stmt = stmt.where(HsmProfile.domain_id == self.args["domainid"].id)
        if self.arg("id"):
            stmt = stmt.where(HsmProfile.uuid == self.args["id"])
        if self.arg("name"):
            stmt = stmt.where(HsmProfile.name == self.args["name"])
        if self.arg("zoneid"):
            from cloudstack_kms.models import DataCenter
            stmt = stmt.where(HsmProfile.zone_id.in_(select(DataCenter.id).where(
                DataCenter.uuid == self.args["zoneid"])))
        if self.arg("protocol"):
            stmt = stmt.where(HsmProfile.protocol == self.args["protocol"].lower())
        if self.arg("enabled") is not None:
            stmt = stmt.where(HsmProfile.enabled.is_(self.args["enabled"]))
        if self.arg("ispublic") is not None:
            stmt = stmt.where(HsmProfile.is_public.is_(self.args["ispublic"]))
        stmt = keyword_filter(stmt, self.args, HsmProfile.name)
        rows, total = paged(session, stmt, self.args, HsmProfile.id)
        views = [profiles.profile_view(session, r, ctx.account) for r in rows]
        probe = ctx.state.services.get("hsm_probe")
        if ctx.is_root_admin and probe is not None:
            # The background probe's last answer (observability/hsm_probe.py): never a probe here.
            for view in views:
                view["reachable"] = probe.reachable(view["id"])
        return ListResult(HsmProfileResponse, views, total)
