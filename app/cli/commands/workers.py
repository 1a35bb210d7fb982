"""``sculpt workers list``: the live training workers."""

from __future__ import annotations

from app.cli import output
from app.cli.commands.common import Command, show
from app.cli.http_client import SculptClient

WORKER_COLUMNS = [("id", lambda w: w["id"]), ("queues", lambda w: ", ".join(w["queues"])),
                  ("started", lambda w: output.when(w["started_at"])), ("seen", lambda w: output.when(w["seen_at"]))]


def workers_list(client: SculptClient, args) -> int:
    return show(args, client.get("/v1/workers")["data"], WORKER_COLUMNS)


def register(workers: Command) -> None:
    workers("list", workers_list, "the live workers and the queues each serves")
