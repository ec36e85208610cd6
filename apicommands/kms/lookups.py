"""Finding KMS rows by uuid with upstream's "not found" texts (not the generic uuid error)."""
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudstack_kms.api.access import check_account_access
from cloudstack_kms.api.context import CallContext
from cloudstack_kms.errors import InvalidParameterValue, invalid_uuid
from cloudstack_kms.models import Account
from cloudstack_kms.models.kms import HsmProfile, KmsKey
from cloudstack_kms.services.kms.keys import pending_deletion_error


def find_profile(session: Session, uuid: str, text: str = "HSM Profile not found: {id}") -> HsmProfile:
    profile = session.scalars(select(HsmProfile).where(HsmProfile.uuid == uuid, HsmProfile.removed.is_(None))).first()
    if profile is None:
        raise InvalidParameterValue(text.format(id=uuid))
    return profile


def find_key(ctx: CallContext, uuid: str, allow_pending: bool = False) -> KmsKey:
    """A live key the caller may act on (owner, admins above it, root). A key pending deletion is
    refused (after the access check, so only those who may act on it learn its state) unless
    ``allow_pending``: only deleteKMSKey and cancelKMSKeyDeletion act on such a key."""
    key = ctx.session.scalars(select(KmsKey).where(KmsKey.uuid == uuid, KmsKey.removed.is_(None))).first()
    if key is None:
        raise InvalidParameterValue(f"KMS key not found: {uuid}")
    check_account_access(ctx, ctx.session.get(Account, key.account_id))
    if key.deletion_date is not None and not allow_pending:
        raise pending_deletion_error(key)
    return key


#: ``projectid`` on the create commands whose upstream web-UI form lists it (the form cannot be
#: drawn without the parameter in listApis). Projects are not built here, so no id names a project.
PROJECT_REFUSED = "; this server has no projects, so any project ID is refused as unknown"


def refuse_project(api: str, project_id: str | None) -> None:
    """No project exists: a given ``projectid`` gets upstream's answer for an unknown id (431)."""
    if project_id:
        raise invalid_uuid(api, "projectid", project_id)
