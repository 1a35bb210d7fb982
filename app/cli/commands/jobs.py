"""``sculpt jobs ...``: fine-tuning jobs, created from a file id or a local file, followed live."""

from __future__ import annotations

import json
from pathlib import Path

from app.cli import output
from app.cli.commands.common import Command, json_flag, local_file, page, pairs, show
from app.cli.http_client import ApiError, ClientError, SculptClient
from app.cli.watch import EXIT_HELP, watch
from app.core.enums import EventType

JOB_COLUMNS = [("id", lambda j: j["id"]), ("model", lambda j: j["model"]),
               ("task", lambda j: j["continual"].get("task")),
               ("status", lambda j: j["status"]), ("phase", lambda j: j["progress"].get("phase")),
               ("progress", lambda j: None if j["progress"].get("fraction") is None
                else f"{j['progress']['fraction']:.0%}"),
               ("result", lambda j: j["fine_tuned_model"]), ("created", lambda j: output.when(j["created_at"]))]
JOB_FIELDS = [
    *JOB_COLUMNS,
    ("strategy", lambda j: j["continual"].get("strategy")), ("training file", lambda j: j["training_file"]),
    ("held-out set", lambda j: j["validation_file"] or "10% of the training file (a seeded split, not trained on)"),
    ("hyperparameters", lambda j: json.dumps(j["hyperparameters"])), ("trained tokens", lambda j: j["trained_tokens"]),
    ("eta seconds", lambda j: j["progress"].get("eta_seconds")), ("finished", lambda j: output.when(j["finished_at"])),
    ("promoted", lambda j: (j.get("result") or {}).get("promoted")),
    ("acc", lambda j: (j.get("result") or {}).get("acc")), ("bwt", lambda j: (j.get("result") or {}).get("bwt")),
    ("error", lambda j: j["error"] and f"{j['error']['code']}: {j['error']['message']}")]
EVENT_COLUMNS = [("id", lambda e: e["id"]), ("when", lambda e: output.when(e["created_at"])),
                 ("level", lambda e: e["level"]), ("message", lambda e: e["message"])]
CHECKPOINT_COLUMNS = [("id", lambda c: c["id"]), ("model", lambda c: c["fine_tuned_model_checkpoint"]),
                      ("step", lambda c: c["step_number"]), ("sha256", lambda c: c["checkpoint_sha256"]),
                      ("created", lambda c: output.when(c["created_at"]))]


def _is_file_id(reference: str) -> bool:
    return reference.startswith("file-") and not Path(reference).exists()


def _dataset(client: SculptClient, reference: str, uploaded: list[str]) -> str:
    """A file id as given, or a local file uploaded (its id added to ``uploaded``)."""
    if _is_file_id(reference):
        return reference
    file_id = client.upload(local_file(Path(reference)), "fine-tune")["id"]
    uploaded.append(file_id)
    return file_id


def _check_before_upload(client: SculptClient, args) -> None:
    """What can be checked without the data, so a job that would be refused uploads nothing: the local files
    exist and the lineage does."""
    for reference in (args.training_file, args.validation_file):
        if reference is not None and not _is_file_id(reference):
            local_file(Path(reference))
    client.get(f"/v1/models/{args.model.partition(':v')[0]}")


def _check_strategy(client: SculptClient, strategy: str | None) -> None:
    """Strategies are plug-ins of the server, so the choices are the server's, not a copy here."""
    if strategy is None:
        return
    offered = [s["name"] for s in client.get("/v1/capabilities")["strategies"]]
    if strategy not in offered:
        raise ClientError(f"--strategy {strategy!r} is not one of this server's strategies: {', '.join(offered)}")


def jobs_create(client: SculptClient, args) -> int:
    _check_strategy(client, args.strategy)
    hyperparameters = {name: value for name, value in (("n_epochs", args.epochs), ("batch_size", args.batch_size),
                                                        ("learning_rate_multiplier", args.lr_multiplier))
                       if value is not None}
    continual = {name: value for name, value in (("task", args.task), ("strategy", args.strategy),
                                                 ("learning_rate", args.learning_rate), ("replay", args.replay))
                 if value is not None}
    if args.gates:
        continual["gates"] = json_flag("--gates", args.gates)
    body = {"model": args.model, "seed": args.seed, "suffix": args.suffix,
            "metadata": pairs("--metadata", args.metadata), "hyperparameters": hyperparameters or None,
            "continual": continual or None}
    _check_before_upload(client, args)
    uploaded: list[str] = []
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else None
    try:  # uploads last: every flag checked before
        body["training_file"] = _dataset(client, args.training_file, uploaded)
        if args.validation_file is not None:
            body["validation_file"] = _dataset(client, args.validation_file, uploaded)
        job = client.post("/v1/fine_tuning/jobs", {k: v for k, v in body.items() if v is not None}, headers)
    except ApiError:
        for file_id in uploaded:  # refused: take back what this command uploaded, so retries leave no copies
            client.delete(f"/v1/files/{file_id}")
        raise
    if args.watch:
        if not args.json:
            print(f"{job['id']} created; following it")
        return watch(client, job["id"], as_json=args.json)
    return show(args, job, JOB_FIELDS, many=False)


def jobs_list(client: SculptClient, args) -> int:
    listing = client.get("/v1/fine_tuning/jobs", limit=args.limit, after=args.after)
    return page(args, listing, JOB_COLUMNS, "sculpt jobs list")


def jobs_show(client: SculptClient, args) -> int:
    return show(args, client.get(f"/v1/fine_tuning/jobs/{args.id}"), JOB_FIELDS, many=False)


def jobs_cancel(client: SculptClient, args) -> int:
    job = client.post(f"/v1/fine_tuning/jobs/{args.id}/cancel")
    if args.json:
        output.as_json(job)
    else:
        state = "cancelled" if job["status"] == "cancelled" else "cancellation requested (stops at the next step)"
        print(f"{job['id']}: {state}")
    return 0


def jobs_watch(client: SculptClient, args) -> int:
    return watch(client, args.id, as_json=args.json)


def jobs_events(client: SculptClient, args) -> int:
    listing = client.get(f"/v1/fine_tuning/jobs/{args.id}/events", limit=args.limit, after=args.after,
                         order=args.order, type=args.type)
    return page(args, listing, EVENT_COLUMNS, f"sculpt jobs events {args.id} --order {args.order}")


def jobs_checkpoints(client: SculptClient, args) -> int:
    return show(args, client.get(f"/v1/fine_tuning/jobs/{args.id}/checkpoints")["data"], CHECKPOINT_COLUMNS)


def register(jobs: Command) -> None:
    create = jobs("create", jobs_create, "start a job on a lineage's head")
    create.add_argument("--model", required=True, help="lineage id, or '<id>:v<n>' to require that head")
    create.add_argument("--training-file", required=True, help="a file id, or a local JSONL path to upload")
    create.add_argument("--task", help="the task's name (default: suffix, else the file id)")
    create.add_argument("--strategy", help="how to train: one of the server's strategies (GET /v1/capabilities)")
    create.add_argument("--learning-rate", type=float)
    create.add_argument("--replay", type=int, metavar="N",
                        help="also train on N records of each task the lineage learned before (rehearsal)")
    create.add_argument("--epochs", type=int)
    create.add_argument("--batch-size", type=int)
    create.add_argument("--lr-multiplier", type=float)
    create.add_argument("--validation-file", help="the held-out set the accuracy matrix scores (a file id or a local "
                        "JSONL path); default: a seeded 10%% of the training file, not trained on")
    create.add_argument("--seed", type=int)
    create.add_argument("--suffix")
    create.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE")
    create.add_argument("--idempotency-key")
    create.add_argument("--gates", help="this job's gates as JSON (over the lineage's defaults)")
    create.add_argument("--watch", action="store_true", help=f"follow the job; exit {EXIT_HELP}")
    listing = jobs("list", jobs_list, "list jobs, newest first")
    listing.add_argument("--limit", type=int, default=20)
    listing.add_argument("--after", help="the last job id of the previous page")
    jobs("show", jobs_show, "one job").add_argument("id")
    jobs("cancel", jobs_cancel, "cancel a job").add_argument("id")
    jobs("watch", jobs_watch, f"follow a job live; exit {EXIT_HELP}").add_argument("id")
    events = jobs("events", jobs_events, "a job's events, a page at a time")
    events.add_argument("id")
    events.add_argument("--limit", type=int, default=20)
    events.add_argument("--after", help="the last event id of the previous page")
    events.add_argument("--order", choices=["asc", "desc"], default="desc", help="asc: from the job's start")
    events.add_argument("--type", choices=[t.value for t in EventType])
    jobs("checkpoints", jobs_checkpoints, "the checkpoint a job produced").add_argument("id")
