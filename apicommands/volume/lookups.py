"""Finding a volume the caller may act on."""
from sqlalchemy import select

from cloudstack_kms.api.access import check_account_access
from cloudstack_kms.api.context import CallContext
from cloudstack_kms.errors import invalid_uuid
from cloudstack_kms.models import Account
from cloudstack_kms.models.volume import Volume


def find_volume(ctx: CallContext, api: str, uuid: str) -> Volume:
    volume = ctx.session.scalars(select(Volume).where(Volume.uuid == uuid, Volume.removed.is_(None))).first()
    if volume is None:
        raise invalid_uuid(api, "id", uuid)
    check_account_access(ctx, ctx.session.get(Account, volume.account_id))
    return volume
