"""The deletion safety net of KMS keys (not upstream; modelled on AWS KMS's ScheduleKeyDeletion).

``deleteKMSKey`` on a key nothing references does not destroy its KEKs at once: it sets the
key's ``deletion_date`` to now + ``kms.key.deletion.pending.days`` (UTC, fixed then: changing
the setting later does not move it) and disables the key, remembering its ``enabled`` flag.
Until the date the key is ``PendingDeletion``: nothing may wrap, unwrap, rotate, update or
migrate with it (every such path meets :func:`keys.lock_key`, the lookup's refusal or the
disabled flag), and ``cancelKMSKeyDeletion`` restores it as it was. Once the date has passed,
:func:`purge_due` — run by every server's background worker, once cluster-wide under the lock
:data:`PURGE_LOCK` — deletes it exactly as an immediate delete does (KEKs destroyed in their
providers, rows removed) and records ``KMS.KEY.DELETE``. ``0`` days keeps upstream's immediate
deletion.

Schedule, cancel and purge each lock the key row exclusively first, so a cancel and a purge of
the same key are ordered: a purge after a cancel finds no deletion date and leaves the key; a
cancel after a purge finds the key gone.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...errors import ApiError, InvalidParameterValue
from ...models import Account, User
from ...models.base import utcnow
from ...models.kms import KmsKey
from ...security.masterkey import MasterKey
from ...wire import format_date
from .. import events, settings
from . import keys
from .cluster_lock import cluster_lock
from .leases import retrying
from .runtime import KmsRuntime, runtime_of

log = logging.getLogger(__name__)
PENDING_DAYS = "kms.key.deletion.pending.days"
#: Held while due keys are purged: one server purges, the others skip that round.
PURGE_LOCK = "kms.key.purge"
#: The account of events recorded by the background work (as the rewrap worker's).
SYSTEM_USER_ID = 1
CANCEL_EVENT = "KMS.KEY.DELETE.CANCEL"


def request_deletion(session: Session, runtime: KmsRuntime, master_key: MasterKey, key: KmsKey,
                     user: User) -> datetime | None:
    """deleteKMSKey: refuse while anything references the key (upstream's rules and texts), then
    schedule its deletion, or delete it now when the waiting period is 0 days. Returns the
    deletion date, or None when the key was deleted now."""
    versions = keys.lock_for_deletion(session, key)
    session.refresh(key)  # the locked row: another delete or a cancel may have committed meanwhile
    if key.deletion_date is not None:
        raise already_pending_error(key)
    [days] = settings.get_values(session, PENDING_DAYS)
    if days <= 0:
        keys.destroy_key(session, runtime, master_key, key, versions, user)
        return None
    key.enabled_before_deletion = bool(key.enabled)
    key.enabled = False
    key.deletion_date = utcnow() + timedelta(days=days)
    return key.deletion_date


def already_pending_error(key: KmsKey) -> InvalidParameterValue:
    """deleteKMSKey again on a key pending deletion: refused (as AWS); its date does not move."""
    return InvalidParameterValue(f"KMS key is already pending deletion: {key.uuid} (deletion date "
                                 f"{format_date(key.deletion_date)}); cancel it with cancelKMSKeyDeletion")


def cancel_deletion(session: Session, key: KmsKey) -> None:
    """cancelKMSKeyDeletion: the key gets back the ``enabled`` flag it had when its deletion was scheduled."""
    keys.lock_key(session, key, exclusive=True, allow_pending=True)
    session.refresh(key)
    if key.deletion_date is None:
        raise InvalidParameterValue(f"KMS key is not pending deletion: {key.uuid}")
    key.enabled = True if key.enabled_before_deletion is None else bool(key.enabled_before_deletion)
    key.enabled_before_deletion = None
    key.deletion_date = None


def due_key_ids(session: Session, now: datetime) -> list[int]:
    return list(session.scalars(select(KmsKey.id).where(KmsKey.deletion_date.is_not(None),
                                                        KmsKey.deletion_date <= now, KmsKey.removed.is_(None))
                                .order_by(KmsKey.deletion_date, KmsKey.id)))


def purge_due(state: Any) -> int:
    """Delete every key whose deletion date has passed, once cluster-wide. Returns how many were
    deleted here (0 too when another server holds the lock: it purges them)."""
    db = state.db
    with db.transaction(readonly=True) as s:
        due = due_key_ids(s, utcnow())
    if not due:
        return 0
    runtime = runtime_of(state)
    purged = 0
    with cluster_lock(db, PURGE_LOCK, wait_sec=0.5) as held:
        if not held:
            return 0
        for key_id in due:
            if held.lost:
                break  # another server took the lock over; it purges the rest
            try:
                if retrying(db, lambda s, k=key_id: _purge_one(s, runtime, state.master_key, k)):
                    purged += 1
            except ApiError as err:  # cannot happen while wraps are refused; kept pending, retried later
                log.warning("KMS key %s is due for deletion but was kept: %s", key_id, err.text)
    return purged


def _purge_one(session: Session, runtime: KmsRuntime, master_key: MasterKey, key_id: int) -> bool:
    key = session.get(KmsKey, key_id)
    if key is None or key.removed is not None:
        return False
    versions = keys.lock_for_deletion(session, key)
    session.refresh(key)  # decided on the locked row: a cancel committed meanwhile wins
    if key.deletion_date is None or key.deletion_date > utcnow():
        return False
    system = session.get(User, SYSTEM_USER_ID)
    keys.destroy_key(session, runtime, master_key, key, versions, system)
    events.record(session, event_type="KMS.KEY.DELETE", user=system, account=session.get(Account, key.account_id),
                  description=f"Deleted KMS key: {key.name} (uuid: {key.uuid}) after its pending deletion period "
                              f"ended on {format_date(key.deletion_date)}", resource_id=key.id,
                  resource_type="KmsKey")
    return True


class PurgeTask:
    """Runs :func:`purge_due` at most every :attr:`CHECK_SEC`, from the background worker's loop.
    Checking costs one indexed query; only when a key is due is the cluster lock taken."""

    CHECK_SEC = 5.0

    def __init__(self, state: Any) -> None:
        self.state = state
        self._last = 0.0

    def maybe_run(self) -> None:
        now = time.monotonic()
        if now - self._last < self.CHECK_SEC:
            return
        self._last = now
        try:
            purge_due(self.state)
        except Exception:  # noqa: BLE001 - the database may be briefly away; the next check tries again
            log.exception("purge of KMS keys pending deletion failed")
