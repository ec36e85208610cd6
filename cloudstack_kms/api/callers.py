"""Who is calling, cached: the user of an API key (with its opened secret) and of a session.

Authenticating read the user by API key and opened the secret with the master key on every
request, a third of a small call's cost. Entries are at most :data:`TTL_SEC` +
:data:`STALE_GRACE_SEC` old: a user disabled, an account deleted, a key regenerated or a session
ended through any server process is refused by every other one within that time; this
process's own commits clear the cache at once.

Entries hold *detached* rows (user, account, domain, role: all loaded eagerly), which every
request reads as they are, shared by all threads and never written: a command that changes a
user or account loads its own copy through its session. (Copying them into each request's
session with ``merge`` cost 8% of a small call.)
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..cache import TtlCache
from ..db import Database
from ..models import Account, ApiSession, Domain, Role, User
from ..security.masterkey import MasterKey, MasterKeyError

#: An entry is reloaded after TTL_SEC; while one thread reloads it, the others use it for up to
#: STALE_GRACE_SEC more. So a change made elsewhere goes unseen for at most their sum (the
#: issue allows one second).
TTL_SEC = 0.5
STALE_GRACE_SEC = 0.25


@dataclass(frozen=True)
class KeyHolder:
    user: User  # detached
    #: The opened secret key; None if it cannot be opened (the request is then refused).
    secret: str | None


@dataclass(frozen=True)
class LiveSession:
    row_id: int
    last_access: datetime
    user: User | None  # detached; None if the user row is gone


class CallerCache:
    def __init__(self, db: Database, master_key: MasterKey) -> None:
        self.db = db
        self.master_key = master_key
        self.key_holders: TtlCache[KeyHolder | None] = TtlCache(TTL_SEC, stale_grace_sec=STALE_GRACE_SEC)
        self.sessions: TtlCache[LiveSession | None] = TtlCache(TTL_SEC, stale_grace_sec=STALE_GRACE_SEC)
        db.watch((User, Account, Domain, Role), self.clear)
        db.watch((ApiSession,), self.sessions.clear)
        self._touched: dict[int, float] = {}  # session row id -> when this process last claimed a touch
        self._touched_lock = threading.Lock()

    def clear(self) -> None:
        self.key_holders.clear()
        self.sessions.clear()

    # ------------------------------------------------------------ lookups
    def key_holder(self, api_key: str) -> tuple[User, str | None] | None:
        """The live user holding ``api_key`` (detached, read-only) and its secret."""
        holder = self.key_holders.get_or_load(api_key, lambda: self._load_key_holder(api_key))
        if holder is None:
            return None
        return holder.user, holder.secret

    def live_session(self, digest: str) -> tuple[int, datetime, User | None] | None:
        entry = self.sessions.get_or_load(digest, lambda: self._load_session(digest))
        if entry is None:
            return None
        return entry.row_id, entry.last_access, entry.user

    def claim_touch(self, row_id: int, every_sec: float) -> bool:
        """Whether the caller should record activity on session ``row_id`` now: at most once per
        ``every_sec`` per process. The cached ``last_access`` stays old until the entry is
        reloaded, so without this every request of the session in that time wrote it again (a
        burst of write transactions every ``every_sec`` under load)."""
        now = time.monotonic()
        with self._touched_lock:
            last = self._touched.get(row_id)
            if last is not None and now - last < every_sec:
                return False
            if len(self._touched) >= 10_000:  # forget sessions not touched lately
                self._touched = {k: t for k, t in self._touched.items() if now - t < every_sec}
            self._touched[row_id] = now
            return True

    # ------------------------------------------------------------ loading (own short transaction)
    def _load_key_holder(self, api_key: str) -> KeyHolder | None:
        with self._detached() as s:
            user = s.scalars(select(User).where(User.api_key == api_key, User.removed.is_(None))).first()
            if user is None:
                return None
            try:
                secret = self.master_key.open_text(user.secret_key or "", f"user.secret_key:{user.uuid}")
            except MasterKeyError:
                secret = None
            return KeyHolder(user, secret)

    def _load_session(self, digest: str) -> LiveSession | None:
        with self._detached() as s:
            row = s.scalars(select(ApiSession).where(ApiSession.session_key_hash == digest,
                                                     ApiSession.removed.is_(None))).first()
            if row is None:
                return None
            return LiveSession(row.id, row.last_access, s.get(User, row.user_id))

    def _detached(self):  # noqa: ANN202
        """A read-only transaction whose rows outlive it: loaded eagerly, then detached."""
        return _DetachingTransaction(self.db)


class _DetachingTransaction:
    def __init__(self, db: Database) -> None:
        self._cm = db.transaction(readonly=True)
        self._session: Session | None = None

    def __enter__(self) -> Session:
        self._session = self._cm.__enter__()
        return self._session

    def __exit__(self, *exc) -> bool | None:  # noqa: ANN002
        assert self._session is not None
        self._session.expunge_all()
        return self._cm.__exit__(*exc)


_making = threading.Lock()


def caller_cache(state) -> CallerCache:  # noqa: ANN001 - AppState
    """The process's cache, made on first use."""
    cache = state.services.get("callers")
    if cache is None:
        with _making:
            cache = state.services.get("callers")
            if cache is None:
                cache = state.services["callers"] = CallerCache(state.db, state.master_key)
    return cache
