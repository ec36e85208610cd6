"""The ``state`` filter of the offering lists (since 4.19): Active by default, ``all`` for both."""
from __future__ import annotations

from cloudstack_kms.errors import InvalidParameterValue

STATES = ("Active", "Inactive")


def offering_state(value: str | None) -> str | None:
    """The state to list (``None`` for all of them); upstream's text for an unknown value."""
    if value is None or not value.strip():
        return "Active"
    if value.strip().lower() == "all":
        return None
    for state in STATES:
        if value.strip().lower() == state.lower():
            return state
    raise InvalidParameterValue(f"Invalid state value: {value}")
