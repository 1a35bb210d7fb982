"""The client sub-commands of ``sculpt``: models, files, jobs, eval, chat and compare, over HTTP by URL and key.

Every command prints a table for people or, with ``--json``, the API's objects for scripts. An API
error or bad input prints one line saying what was wrong and exits 1 (argparse's usage errors: 2);
``jobs watch`` exits by the job's outcome (``app.cli.watch.EXIT_CODES``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from app.cli import output
from app.cli.chat import chat, compare
from app.cli.download import download
from app.cli.http_client import ApiError, ClientError, SculptClient, default_key, default_url
from app.cli.watch import EXIT_HELP, watch
from app.core.storage import MANIFEST

Handler = Callable[[SculptClient, argparse.Namespace], int]

MODEL_COLUMNS = [("id", lambda m: m["id"]), ("head", lambda m: f"v{m['head']}"),
                 ("versions", lambda m: m["versions"]), ("tasks", lambda m: ", ".join(m["tasks"])),
                 ("base model", lambda m: m["base_model"]), ("created", lambda m: output.when(m["created"]))]
VERSION_COLUMNS = [("version", lambda v: f"v{v['version']}" + (" (head)" if v["is_head"] else "")),
                   ("parent", lambda v: v["parent_version"] and f"v{v['parent_version']}"),
                   ("status", lambda v: v["status"]), ("task", lambda v: v["task"]),
                   ("strategy", lambda v: v["strategy"]),
                   ("failed gates", lambda v: ", ".join(f["gate"] for f in v["gate_verdict"].get("failed", []))),
                   ("job", lambda v: v["job_id"]), ("created", lambda v: output.when(v["created_at"]))]
HISTORY_COLUMNS = [("when", lambda h: output.when(h["created_at"])),
                   ("from", lambda h: h["from_version"] and f"v{h['from_version']}"),
                   ("to", lambda h: f"v{h['to_version']}"), ("actor", lambda h: h["actor"]),
                   ("reason", lambda h: h["reason"])]
FILE_COLUMNS = [("id", lambda f: f["id"]), ("filename", lambda f: f["filename"]), ("purpose", lambda f: f["purpose"]),
                ("bytes", lambda f: f["bytes"]), ("lines", lambda f: f.get("lines")),
                ("created", lambda f: output.when(f["created_at"]))]
JOB_COLUMNS = [("id", lambda j: j["id"]), ("model", lambda j: j["model"]),
               ("task", lambda j: j["continual"].get("task")),
               ("status", lambda j: j["status"]), ("phase", lambda j: j["progress"].get("phase")),
               ("progress", lambda j: None if j["progress"].get("fraction") is None
                else f"{j['progress']['fraction']:.0%}"),
               ("result", lambda j: j["fine_tuned_model"]), ("created", lambda j: output.when(j["created_at"]))]
JOB_FIELDS = [
    *JOB_COLUMNS,
    ("strategy", lambda j: j["continual"].get("strategy")), ("training file", lambda j: j["training_file"]),
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
WORKER_COLUMNS = [("id", lambda w: w["id"]), ("queues", lambda w: ", ".join(w["queues"])),
                  ("started", lambda w: output.when(w["started_at"])), ("seen", lambda w: output.when(w["seen_at"]))]
GATE_COLUMNS = [("gate", lambda g: g[0]), ("threshold", lambda g: g[1])]
# The API's own wording for its flags, and the CLI flag that sets each.
FLAG_WORDING = {"force=true": "--force"}


def _json_flag(flag: str, text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ClientError(f"{flag} takes a JSON object, e.g. '{{\"max_forgetting\": 0.1}}'; {text!r} is not JSON "
                          f"({exc.msg})") from None
    if not isinstance(value, dict):
        raise ClientError(f"{flag} takes a JSON object, not {type(value).__name__}")
    return value


def _page(args, page: dict, columns, command: str) -> int:
    """One page of a list; says (on stderr, so --json output stays parseable) how to get the next."""
    _show(args, page["data"], columns)
    if page.get("has_more"):
        print(f"more: {command} --after {page['last_id']}", file=sys.stderr)
    return 0


def _show(args, data, columns, many: bool = True) -> int:
    if args.json:
        output.as_json(data)
    elif many:
        output.table(data, columns)
    else:
        output.fields(data, columns)
    return 0


# models

def models_create(client: SculptClient, args) -> int:
    body = {"id": args.id, "base_model": args.base_model}
    if args.gates:
        body["gates"] = _json_flag("--gates", args.gates)
    return _show(args, client.post("/v1/models", body), MODEL_COLUMNS, many=False)


def models_list(client: SculptClient, args) -> int:
    lineages = [m for m in client.get("/v1/models")["data"] if m["object"] == "model"]  # not the versions listed too
    return _show(args, lineages, MODEL_COLUMNS)


def models_show(client: SculptClient, args) -> int:
    model = client.get(f"/v1/models/{args.id}")
    versions = client.get(f"/v1/models/{args.id}/versions")["data"]
    history = client.get(f"/v1/models/{args.id}/head/history")["data"]
    if args.json:
        output.as_json({"model": model, "versions": versions, "head_history": history})
        return 0
    output.fields(model, MODEL_COLUMNS)
    print("\nVersions")
    output.table(versions, VERSION_COLUMNS)
    print("\nHead history")
    output.table(history, HISTORY_COLUMNS)
    return 0


def _cli_wording(exc: ApiError) -> ClientError:
    """The server's error, its API flags named as this command's flags."""
    message = str(exc)
    for api, flag in FLAG_WORDING.items():
        message = message.replace(api, flag)
    return ClientError(message)


def _move_head(client: SculptClient, args, version: int) -> int:
    body = {"version": version, "reason": args.reason, "force": args.force}
    try:
        model = client.post(f"/v1/models/{args.id}/head", body)
    except ApiError as exc:
        raise _cli_wording(exc) from None
    if args.json:
        output.as_json(model)
    else:
        print(f"{args.id}: head is now v{model['head']}")
    return 0


def models_promote(client: SculptClient, args) -> int:
    return _move_head(client, args, args.version)


def models_rollback(client: SculptClient, args) -> int:
    version = args.version
    if version is None:  # one step back along the chain: the head's parent
        head = client.get(f"/v1/models/{args.id}")["head"]
        version = client.get(f"/v1/models/{args.id}/versions/{head}")["parent_version"]
        if version is None:
            raise ClientError(f"v{head} of {args.id} is the base; there is nothing to roll back to")
    return _move_head(client, args, version)


def models_gates(client: SculptClient, args) -> int:
    """Show the lineage's default gates, or set them (an empty object removes them all)."""
    model = (client.put(f"/v1/models/{args.id}/gates", _json_flag("GATES", args.gates)) if args.gates is not None
             else client.get(f"/v1/models/{args.id}"))
    if args.json:
        output.as_json(model["gates"])
    else:
        output.table(sorted(model["gates"].items()), GATE_COLUMNS)
    return 0


def models_suites(client: SculptClient, args) -> int:
    suites = _pairs("--suite", args.suite)
    if not (args.reference_file or args.safety_file or suites):
        raise ClientError("give --reference-file, --safety-file and/or --suite PURPOSE=FILE")
    body = {"reference_file": args.reference_file, "safety_file": args.safety_file, "suites": suites}
    model = client.post(f"/v1/models/{args.id}/suites", {k: v for k, v in body.items() if v})
    return _show(args, model, [*MODEL_COLUMNS, ("suites", lambda m: ", ".join(
        f"{purpose}={file_id}" for purpose, file_id in sorted(m["suites"].items())) or "built-in")], many=False)


def models_download(client: SculptClient, args) -> int:
    version, files = download(client, args.ref, args.dest)
    if args.json:
        output.as_json({"model": version["id"], "path": str(args.dest.resolve()), "files": files})
    else:
        print(f"{version['id']}: {len(files)} files in {args.dest}, each matching its sha256 in {MANIFEST}")
    return 0


def models_delete(client: SculptClient, args) -> int:
    if args.version is not None:
        return _show(args, client.delete(f"/v1/models/{args.id}/versions/{args.version}"), VERSION_COLUMNS,
                     many=False)
    deleted = client.delete(f"/v1/models/{args.id}", force=str(args.force).lower())
    if args.json:
        output.as_json(deleted)
    else:
        state = "deleted" if deleted["completed"] else "deleted from the API; its files go once its jobs have stopped"
        print(f"{args.id}: {state} ({deleted['bytes_freed']} bytes freed)")
    return 0


def models_retention(client: SculptClient, args) -> int:
    policy = client.put(f"/v1/models/{args.id}/retention", {"keep_last": args.keep_last})
    if args.json:
        output.as_json(policy)
    else:
        kept = "every version" if policy["keep_last"] is None else f"the {policy['keep_last']} newest versions"
        print(f"{args.id}: keeps {kept}, the base, the head and pinned versions {policy['pinned']}")
    return 0


def models_pin(client: SculptClient, args) -> int:
    action = "unpin" if args.unpin else "pin"
    return _show(args, client.post(f"/v1/models/{args.id}/versions/{args.version}/{action}"), VERSION_COLUMNS,
                 many=False)


def models_gc(client: SculptClient, args) -> int:
    """Apply the retention policy of one lineage, or of every lineage that has one."""
    lineages = [m["id"] for m in client.get("/v1/models")["data"] if m["object"] == "model"]  # not versions
    ids = [args.id] if args.id else [i for i in lineages
                                     if client.get(f"/v1/models/{i}/retention")["keep_last"] is not None]
    sweeps = [client.request("POST", f"/v1/models/{i}/retention/sweep", params={"dry_run": str(args.dry_run).lower()})
              for i in ids]
    if args.json:
        output.as_json(sweeps)
        return 0
    rows = [{"model": s["model"], **d} for s in sweeps for d in s["deleted"]]
    output.table(rows, [("model", lambda r: r["model"]), ("version", lambda r: f"v{r['version']}"),
                        ("bytes", lambda r: r["bytes"])])
    verb = "would free" if args.dry_run else "freed"
    print(f"\n{len(rows)} checkpoints, {verb} {sum(s['bytes_freed'] for s in sweeps)} bytes")
    return 0


# files

def _local_file(path: Path) -> Path:
    if not path.exists():
        raise ClientError(f"no such file: {path} does not exist")
    if not path.is_file():
        raise ClientError(f"{path} is not a file")
    return path


def files_upload(client: SculptClient, args) -> int:
    return _show(args, client.upload(_local_file(args.path), args.purpose), FILE_COLUMNS, many=False)


def files_list(client: SculptClient, args) -> int:
    page = client.get("/v1/files", limit=args.limit, after=args.after, purpose=args.purpose)
    return _page(args, page, FILE_COLUMNS, "sculpt files list")


def files_show(client: SculptClient, args) -> int:
    return _show(args, client.get(f"/v1/files/{args.id}"), [*FILE_COLUMNS, ("sha256", lambda f: f["sha256"])],
                 many=False)


def files_content(client: SculptClient, args) -> int:
    sys.stdout.buffer.write(client.content(f"/v1/files/{args.id}/content"))
    sys.stdout.flush()
    return 0


def files_delete(client: SculptClient, args) -> int:
    deleted = client.delete(f"/v1/files/{args.id}")
    if args.json:
        output.as_json(deleted)
    else:
        print(f"{deleted['id']}: deleted")
    return 0


# jobs

def _training_file(client: SculptClient, reference: str) -> str:
    """A file id as given, or a local file uploaded first (call it last: nothing is uploaded for a bad flag)."""
    path = Path(reference)
    if reference.startswith("file-") and not path.exists():
        return reference
    return client.upload(_local_file(path), "fine-tune")["id"]


def _pairs(flag: str, pairs: list[str]) -> dict[str, str] | None:
    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ClientError(f"{flag} takes KEY=VALUE, not {pair!r}")
        values[key] = value
    return values or None


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
        continual["gates"] = _json_flag("--gates", args.gates)
    body = {"model": args.model, "validation_file": args.validation_file, "seed": args.seed, "suffix": args.suffix,
            "metadata": _pairs("--metadata", args.metadata), "hyperparameters": hyperparameters or None,
            "continual": continual or None}
    body["training_file"] = _training_file(client, args.training_file)  # last: every flag checked before
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else None
    job = client.post("/v1/fine_tuning/jobs", {k: v for k, v in body.items() if v is not None}, headers)
    if args.watch:
        if not args.json:
            print(f"{job['id']} created; following it")
        return watch(client, job["id"], as_json=args.json)
    return _show(args, job, JOB_FIELDS, many=False)


def jobs_list(client: SculptClient, args) -> int:
    page = client.get("/v1/fine_tuning/jobs", limit=args.limit, after=args.after)
    return _page(args, page, JOB_COLUMNS, "sculpt jobs list")


def jobs_show(client: SculptClient, args) -> int:
    return _show(args, client.get(f"/v1/fine_tuning/jobs/{args.id}"), JOB_FIELDS, many=False)


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
    page = client.get(f"/v1/fine_tuning/jobs/{args.id}/events", limit=args.limit, after=args.after,
                      order=args.order, type=args.type)
    return _page(args, page, EVENT_COLUMNS, f"sculpt jobs events {args.id} --order {args.order}")


def jobs_checkpoints(client: SculptClient, args) -> int:
    return _show(args, client.get(f"/v1/fine_tuning/jobs/{args.id}/checkpoints")["data"], CHECKPOINT_COLUMNS)


# workers

def workers_list(client: SculptClient, args) -> int:
    return _show(args, client.get("/v1/workers")["data"], WORKER_COLUMNS)


# eval

def eval_show(client: SculptClient, args) -> int:
    record = client.get(f"/v1/models/{args.model}/evaluations")
    if args.json:
        output.as_json(record)
        return 0
    columns = [("version", lambda r: f"v{r['version']}")] + [
        (task, lambda r, i=i: output.score(r["row"][i])) for i, task in enumerate(record["tasks"])]
    rows = zip(record["versions"], record["matrix"], strict=True)
    output.table([{"version": v, "row": row} for v, row in rows], columns)
    print(f"\nACC {output.score(record['acc'])}   BWT {output.score(record['bwt'])}")
    if record["forgetting"]:
        print("forgetting  " + "  ".join(f"{t} {output.score(f)}" for t, f in record["forgetting"].items()))
    for name, figures in record.get("suites", {}).items():  # every suite's, general answers' included
        print(f"{name:<15} " + "  ".join(f"{k} {output.cell(v)}" for k, v in figures.items()
                                         if not isinstance(v, list | dict)))
        for change in figures.get("changed") or []:
            print(f"  lost: {change['prompt'][:50]!r} {change['base'][:30]!r} -> {change['answer'][:30]!r}")
    return 0


def _run(handler: Handler) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        logging.getLogger("httpx").setLevel(logging.WARNING)  # no per-request log lines in the output
        try:
            with SculptClient(args.url or default_url(), args.api_key or default_key()) as client:
                return handler(client, args)
        except ClientError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except OSError as exc:  # a local file that cannot be read: say which, without a traceback
            print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
            return 1
    return run


def add_global_options(parser: argparse.ArgumentParser, defaults: bool = True) -> None:
    """--url, --api-key and --json, taken before the command (``sculpt --url U models list``) or after it.
    After it, the options have no defaults, so a sub-command does not undo what was given before it."""
    default = (lambda value: value) if defaults else (lambda _value: argparse.SUPPRESS)
    parser.add_argument("--url", default=default(None),
                        help=f"the server (default: $SCULPT_URL or {default_url()})")
    parser.add_argument("--api-key", default=default(None), help="the API key (default: $SCULPT_API_KEY)")
    parser.add_argument("--json", action="store_true", default=default(False),
                        help="print JSON for scripts instead of tables")


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    add_global_options(common, defaults=False)
    return common


def _generation() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--max-tokens", type=int, default=128)
    options.add_argument("--temperature", type=float, default=0.0, help="0 (the default): greedy, repeatable")
    options.add_argument("--seed", type=int)
    options.add_argument("--system", help="a system message to start with")
    return options


def add_client_commands(sub) -> None:
    """Register the models, files, jobs and eval groups, chat and compare, on the ``sculpt`` parser's sub-parsers."""
    common = _common()

    def group(name: str, text: str):
        actions = sub.add_parser(name, help=text).add_subparsers(dest="action", required=True)

        def command(action: str, handler: Handler, text: str) -> argparse.ArgumentParser:
            parser = actions.add_parser(action, help=text, description=text, parents=[common])
            parser.set_defaults(func=_run(handler))
            return parser
        return command

    models = group("models", "model lineages on a server")
    create = models("create", models_create, "register a lineage (v1 = the base model)")
    create.add_argument("id")
    create.add_argument("base_model", help="a local Hugging Face folder or hub id, as the server sees it")
    create.add_argument("--gates", help='default gates as JSON, e.g. \'{"max_forgetting": 0.1}\'')
    models("list", models_list, "list lineages")
    models("show", models_show, "a lineage, its versions and head history").add_argument("id")
    promote = models("promote", models_promote, "make a version the head")
    promote.add_argument("id")
    promote.add_argument("version", type=int)
    promote.add_argument("--reason", required=True)
    promote.add_argument("--force", action="store_true",
                         help="promote a version its gates rejected, or while a job trains on the lineage")
    rollback = models("rollback", models_rollback, "move the head back (default: to the head's parent)")
    rollback.add_argument("id")
    rollback.add_argument("version", type=int, nargs="?")
    rollback.add_argument("--reason", required=True)
    rollback.add_argument("--force", action="store_true", help="move the head while a job trains on the lineage")
    gates = models("gates", models_gates, "show a lineage's default gates, or set them")
    gates.add_argument("id")
    gates.add_argument("gates", nargs="?", help='the new gates as JSON, e.g. \'{"max_forgetting": 0.1}\'; '
                                                "'{}' removes them all")
    suites = models("suites", models_suites, "choose the files a lineage's evaluation suites use")
    suites.add_argument("id")
    suites.add_argument("--reference-file", help="a file id (purpose 'reference')")
    suites.add_argument("--safety-file", help="a file id (purpose 'safety')")
    suites.add_argument("--suite", action="append", default=[], metavar="PURPOSE=FILE",
                        help="any suite's file by its purpose, e.g. general=file-… (the general-answers suite)")
    fetch = models("download", models_download, "download a version's checkpoint, verified against its manifest")
    fetch.add_argument("ref", help="'<id>:v<n>', or a lineage id for its head")
    fetch.add_argument("dest", type=Path, help="the folder to unpack it into (from_pretrained loads it)")
    remove = models("delete", models_delete, "delete a lineage, or one version's checkpoint with --version")
    remove.add_argument("id")
    remove.add_argument("--version", type=int)
    remove.add_argument("--force", action="store_true", help="cancel the lineage's queued and running jobs first")
    retention = models("retention", models_retention, "set how many newest versions the lineage keeps")
    retention.add_argument("id")
    retention.add_argument("--keep-last", type=int, help="omit to keep every version")
    pin = models("pin", models_pin, "keep a version whatever the retention policy says")
    pin.add_argument("id")
    pin.add_argument("version", type=int)
    pin.add_argument("--unpin", action="store_true", help="let the policy delete it again")
    gc = models("gc", models_gc, "delete the checkpoints retention policies let go")
    gc.add_argument("id", nargs="?", help="one lineage (default: every lineage with a policy)")
    gc.add_argument("--dry-run", action="store_true", help="only show what would be deleted")

    files = group("files", "datasets on a server")
    upload = files("upload", files_upload, "upload a JSONL dataset (validated by the server)")
    upload.add_argument("path", type=Path)
    # Any purpose the server takes (suites are plug-ins, each with its own): the server says which.
    upload.add_argument("--purpose", default="fine-tune", help="fine-tune (default), or a suite's: reference, safety, "
                        "general, ...")
    listing = files("list", files_list, "list files, newest first, a page at a time")
    listing.add_argument("--limit", type=int, default=20, help="files per page (1-100)")
    listing.add_argument("--after", help="the last file id of the previous page")
    listing.add_argument("--purpose", help="only files of this purpose")
    files("show", files_show, "one file").add_argument("id")
    files("content", files_content, "write a file's content to stdout").add_argument("id")
    files("delete", files_delete, "delete a file (refused while a job uses it)").add_argument("id")

    jobs = group("jobs", "fine-tuning jobs on a server")
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
    create.add_argument("--validation-file")
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
    events.add_argument("--type", choices=["message", "metrics"])
    jobs("checkpoints", jobs_checkpoints, "the checkpoint a job produced").add_argument("id")

    group("workers", "training workers")("list", workers_list, "the live workers and the queues each serves")

    evaluation = group("eval", "evaluation records")
    evaluation("show", eval_show, "a lineage's accuracy matrix with ACC and BWT").add_argument("model")

    talk = sub.add_parser("chat", help="chat with a version (interactive, or one answer with --prompt)",
                          parents=[common, _generation()])
    talk.add_argument("model", help="a lineage (its head), '<id>:v<n>' or '<id>@previous'")
    talk.add_argument("--prompt", help="answer this one message and exit")
    talk.set_defaults(func=_run(chat))
    side = sub.add_parser("compare", help="two (or more) versions' answers to one prompt",
                          parents=[common, _generation()])
    side.add_argument("models", nargs="+", metavar="model", help="e.g. bot:v2 bot:v3")
    side.add_argument("--prompt", required=True)
    side.set_defaults(func=_run(compare))
