"""Unix timestamps for the API (OpenAI's clients expect integers)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload


@overload
def unix(moment: datetime) -> int: ...
@overload
def unix(moment: None) -> None: ...
@overload
def unix(moment: datetime | None) -> int | None: ...
def unix(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    # SQLite hands back naive datetimes; everything is stored in UTC.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())
