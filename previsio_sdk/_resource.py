"""What every resource class shares: its client, and parsing of wire values."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def parse_datetime(value: Any) -> datetime | None:
    """Parse an ISO 8601 timestamp from the API (``Z`` accepted on every Python version)."""
    if value is None or isinstance(value, datetime):
        return value
    text = str(value)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    return datetime.fromisoformat(text)


def ident(resource_or_id: Any) -> str:
    """The id of a resource object, or the string given."""
    return resource_or_id if isinstance(resource_or_id, str) else resource_or_id.id


class PrevisionIds:
    """What every resource answers as previsionio's objects do: ``._id`` and ``.resource_id``, its id."""

    __slots__ = ()
    id: str

    @property
    def _id(self) -> str:
        """The id (previsionio's name for it)."""
        return self.id

    @property
    def resource_id(self) -> str:
        """The id (previsionio's other name for it)."""
        return self.id
