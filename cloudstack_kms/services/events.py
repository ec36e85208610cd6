"""Recording events for ``listEvents``. Descriptions must never carry secrets."""
from __future__ import annotations

from sqlalchemy.orm import Session

from ..models import Account, Event, User

INFO, WARN, ERROR = "INFO", "WARN", "ERROR"
CREATED, SCHEDULED, STARTED, COMPLETED = "Created", "Scheduled", "Started", "Completed"


def record(session: Session, *, event_type: str, description: str, user: User, account: Account,
           state: str = COMPLETED, level: str = INFO, resource_id: int | None = None,
           resource_type: str | None = None, start_id: int = 0, display: bool = True,
           parameters: str | None = None) -> Event:
    if description:
        description = description[0].upper() + description[1:]
    event = Event(type=event_type, description=description[:1024], user_id=user.id, account_id=account.id,
                  domain_id=account.domain_id, state=state, level=level, resource_id=resource_id,
                  resource_type=resource_type, start_id=start_id, display=display,
                  parameters=parameters)
    session.add(event)  # inserted at the next flush, with the transaction's other events in one statement
    return event
