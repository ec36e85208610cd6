"""Recording events for ``listEvents``. Descriptions must never carry secrets."""
from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from ..models import Account, Event, User, new_uuid
from ..models.base import utcnow

INFO, WARN, ERROR = "INFO", "WARN", "ERROR"
CREATED, SCHEDULED, STARTED, COMPLETED = "Created", "Scheduled", "Started", "Completed"


def record(session: Session, **fields: Any) -> Event:
    """Add one event (the fields of :func:`values`); it is inserted at the next flush, with the
    transaction's other events in one statement."""
    event = Event(**values(**fields))
    session.add(event)
    return event


def values(*, event_type: str, description: str, user: User, account: Account, state: str = COMPLETED,
           level: str = INFO, resource_id: int | None = None, resource_type: str | None = None,
           start_id: int = 0, display: bool = True, parameters: str | None = None) -> dict[str, Any]:
    """An event's column values."""
    if description:
        description = description[0].upper() + description[1:]
    return {"uuid": new_uuid(), "type": event_type, "description": description[:1024], "user_id": user.id,
            "account_id": account.id, "domain_id": account.domain_id, "state": state, "level": level,
            "resource_id": resource_id, "resource_type": resource_type, "start_id": start_id,
            "display": display, "parameters": parameters, "created": utcnow()}


_INSERT = insert(Event.__table__)


def insert_now(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert events (rows of :func:`values`) at once, in one Core statement. For the hottest path
    (every async command's request): building the same objects and flushing them cost more than
    the statement."""
    if rows:
        session.connection().execute(_INSERT, rows)  # (no ORM execution layer: nothing mapped is involved)
