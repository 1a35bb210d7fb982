"""A server-sent-events reader for the job event stream (the subset of the format Sculpt sends)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class ServerEvent:
    event: str
    data: dict
    id: str | None = None


def parse_sse(lines: Iterable[str]) -> Iterator[ServerEvent]:
    """Events from a stream's lines; comments (keep-alives) are skipped."""
    fields: dict[str, list[str]] = {}
    for line in lines:
        line = line.rstrip("\r\n")
        if not line:
            if "data" in fields:
                yield ServerEvent(event=fields.get("event", ["message"])[-1],
                                  data=json.loads("\n".join(fields["data"])), id=fields.get("id", [None])[-1])
            fields = {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        fields.setdefault(name, []).append(value.removeprefix(" "))
