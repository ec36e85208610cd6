"""Value formats of CloudStack's API, needed below the API layer too (job and key views)."""
from __future__ import annotations

from datetime import datetime, timezone


def format_date(value: datetime) -> str:
    """CloudStack's ``yyyy-MM-dd'T'HH:mm:ssZ`` in UTC."""
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value.strftime("%Y-%m-%dT%H:%M:%S+0000")
