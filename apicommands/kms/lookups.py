"""Finding KMS rows by uuid with upstream's "not found" texts (not the generic uuid error)."""
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudstack_kms.api.access import check_account_access
from cloudstack_kms.api.context import CallContext
from cloudstack_kms.errors import InvalidParameterValue, invalid_uuid
from cloudstack_kms.models import Account
from cloudstack_kms.models.kms import HsmProfile, KmsKey


def find_profile(session: Session, uuid: str, text: str = "HSM Profile not found: {id}") -> HsmProfile:
    profile = session.scalars(select(HsmProfile).where(HsmProfile.uuid == uuid, HsmProfile.removed.is_(None))).first()
    if profile is None:
        raise InvalidParameterValue(text.format(id=uuid))
    return profile


def find_key(ctx: CallContext, uuid: str) -> KmsKey:
    """A live key the caller may act on (owner, admins above it, root)."""
    key = ctx.session.scalars(select(KmsKey).where(KmsKey.uuid == uuid, KmsKey.removed.is_(None))).first()
    if key is None:
        raise InvalidParameterValue(f"KMS key not found: {uuid}")
    check_account_access(ctx, ctx.session.get(Account, key.account_id))
    return key


#: ``projectid`` on the create commands whose upstream web-UI form lists it (the form cannot be
#: drawn without the parameter in listApis). Projects are not built here, so no id names a project.
PROJECT_REFUSED = "; this server has no projects, so any project ID is refused as unknown"


def refuse_project(api: str, project_id: str | None) -> None:
    """No project exists: a given ``projectid`` gets upstream's answer for an unknown id (431)."""
    if project_id:
        raise invalid_uuid(api, "projectid", project_id)
