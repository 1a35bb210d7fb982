"""``sculpt models ...``: lineages, their versions, head, gates, suites, downloads, deletion and retention."""

from __future__ import annotations

from pathlib import Path

from app.cli import output
from app.cli.commands.common import Command, json_flag, pairs, show
from app.cli.download import download
from app.cli.http_client import ClientError, SculptClient
from app.cli.watch import kept_words
from app.core.storage import MANIFEST
from app.lineages.suites import GENERAL_ANSWERS

MODEL_COLUMNS = [("id", lambda m: m["id"]), ("head", lambda m: f"v{m['head']}"),
                 ("versions", lambda m: m["versions"]), ("tasks", lambda m: ", ".join(m["tasks"])),
                 ("base model", lambda m: m["base_model"]), ("created", lambda m: output.when(m["created"]))]
VERSION_COLUMNS = [("version", lambda v: f"v{v['version']}" + (" (head)" if v["is_head"] else "")),
                   ("parent", lambda v: v["parent_version"] and f"v{v['parent_version']}"),
                   ("status", lambda v: v["status"]), ("task", lambda v: v["task"]),
                   ("strategy", lambda v: v["strategy"]),
                   ("checkpoint", lambda v: ("deleted" if v["deleted"] else "stored")
                    + (", pinned" if v["pinned"] else "")),
                   ("general kept", lambda v: kept_words(*(((v["metrics"] or {}).get(GENERAL_ANSWERS.name) or {}).get(k)
                                                            for k in ("general_kept", "lost", "asked")))),
                   ("failed gates", lambda v: ", ".join(f["gate"] for f in v["gate_verdict"].get("failed", []))),
                   ("job", lambda v: v["job_id"]), ("created", lambda v: output.when(v["created_at"]))]
HISTORY_COLUMNS = [("when", lambda h: output.when(h["created_at"])),
                   ("from", lambda h: h["from_version"] and f"v{h['from_version']}"),
                   ("to", lambda h: f"v{h['to_version']}"), ("actor", lambda h: h["actor"]),
                   ("reason", lambda h: h["reason"])]
GATE_COLUMNS = [("gate", lambda g: g[0]), ("threshold", lambda g: g[1])]


def version_ref(ref: str, version: str | None) -> tuple[str, int | None]:
    """A version named as 'id:vN' or as 'id N' (also 'id vN'), the same way in every command; None: only a
    lineage was named."""
    model, sep, suffix = ref.rpartition(":v")
    if sep and suffix.isdigit():
        if version is not None and version.removeprefix("v") != suffix:
            raise ClientError(f"{ref!r} names v{suffix}, but version {version!r} was given too; give one")
        return model, int(suffix)
    if version is None:
        return ref, None
    number = version.removeprefix("v")
    if not number.isdigit() or int(number) < 1:
        raise ClientError(f"{version!r} is not a version number (e.g. 3 or v3)")
    return ref, int(number)


def one_version(ref: str, version: str | None) -> tuple[str, int]:
    model, number = version_ref(ref, version)
    if number is None:
        raise ClientError(f"which version of {ref!r}? give '{ref}:vN' or '{ref} N'")
    return model, number


def _add_version(parser, required: bool = True, text: str = "the version, if the first argument is a lineage id"):
    parser.add_argument("id", metavar="MODEL", help="'<id>:v<n>', or a lineage id followed by the version")
    parser.add_argument("version", nargs="?", help=text if required else text + " (optional)")


def models_create(client: SculptClient, args) -> int:
    body = {"id": args.id, "base_model": args.base_model}
    if args.gates:
        body["gates"] = json_flag("--gates", args.gates)
    return show(args, client.post("/v1/models", body), MODEL_COLUMNS, many=False)


def models_list(client: SculptClient, args) -> int:
    lineages = [m for m in client.get("/v1/models")["data"] if m["object"] == "model"]  # not the versions listed too
    return show(args, lineages, MODEL_COLUMNS)


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


def _move_head(client: SculptClient, args, model_id: str, version: int) -> int:
    body = {"version": version, "reason": args.reason, "force": args.force}
    model = client.post(f"/v1/models/{model_id}/head", body)
    if args.json:
        output.as_json(model)
    else:
        print(f"{model_id}: head is now v{model['head']}")
    return 0


def models_promote(client: SculptClient, args) -> int:
    return _move_head(client, args, *one_version(args.id, args.version))


def models_rollback(client: SculptClient, args) -> int:
    model_id, version = version_ref(args.id, args.version)
    if version is None:  # one step back along the chain: the head's parent
        head = client.get(f"/v1/models/{model_id}")["head"]
        version = client.get(f"/v1/models/{model_id}/versions/{head}")["parent_version"]
        if version is None:
            raise ClientError(f"v{head} of {model_id} is the base; there is nothing to roll back to")
    return _move_head(client, args, model_id, version)


def models_gates(client: SculptClient, args) -> int:
    """Show the lineage's default gates, or set them (an empty object removes them all)."""
    model = (client.put(f"/v1/models/{args.id}/gates", json_flag("GATES", args.gates)) if args.gates is not None
             else client.get(f"/v1/models/{args.id}"))
    if args.json:
        output.as_json(model["gates"])
    else:
        output.table(sorted(model["gates"].items()), GATE_COLUMNS)
    return 0


def models_suites(client: SculptClient, args) -> int:
    suites = pairs("--suite", args.suite)
    if not (args.reference_file or args.safety_file or suites):
        raise ClientError("give --reference-file, --safety-file and/or --suite PURPOSE=FILE")
    body = {"reference_file": args.reference_file, "safety_file": args.safety_file, "suites": suites}
    model = client.post(f"/v1/models/{args.id}/suites", {k: v for k, v in body.items() if v})
    return show(args, model, [*MODEL_COLUMNS, ("suites", lambda m: ", ".join(
        f"{purpose}={file_id}" for purpose, file_id in sorted(m["suites"].items())) or "built-in")], many=False)


def models_download(client: SculptClient, args) -> int:
    model_id, number = version_ref(args.ref, args.version)
    version, files = download(client, model_id if number is None else f"{model_id}:v{number}", args.dest)
    if args.json:
        output.as_json({"model": version["id"], "path": str(args.dest.resolve()), "files": files})
    else:
        size = sum((args.dest / name).stat().st_size for name in files) / 1e6
        print(f"{version['id']}: {len(files)} files ({size:.1f} MB) in {args.dest}, each matching its sha256 in "
              f"{MANIFEST}")
    return 0


def models_delete(client: SculptClient, args) -> int:
    model_id, number = version_ref(args.id, args.version)
    if number is not None:
        version = client.delete(f"/v1/models/{model_id}/versions/{number}")
        if not args.json:
            print(f"{version['id']}: deleted (its checkpoint is gone; its row, scores and head history stay)")
        return show(args, version, VERSION_COLUMNS, many=False)
    deleted = client.delete(f"/v1/models/{model_id}", force=str(args.force).lower())
    if args.json:
        output.as_json(deleted)
    else:
        state = "deleted" if deleted["completed"] else "deleted from the API; its files go once its jobs have stopped"
        print(f"{model_id}: {state} ({deleted['bytes_freed']} bytes freed)")
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
    model_id, number = one_version(args.id, args.version)
    action = "unpin" if args.unpin else "pin"
    return show(args, client.post(f"/v1/models/{model_id}/versions/{number}/{action}"), VERSION_COLUMNS,
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


def register(models: Command) -> None:
    create = models("create", models_create, "register a lineage (v1 = the base model)")
    create.add_argument("id")
    create.add_argument("base_model", help="a local Hugging Face folder or hub id, as the server sees it")
    create.add_argument("--gates", help='default gates as JSON, e.g. \'{"max_forgetting": 0.1}\'')
    models("list", models_list, "list lineages")
    models("show", models_show, "a lineage, its versions and head history").add_argument("id")
    promote = models("promote", models_promote, "make a version the head")
    _add_version(promote)
    promote.add_argument("--reason", required=True)
    promote.add_argument("--force", action="store_true",
                         help="promote a version its gates rejected, or while a job trains on the lineage")
    rollback = models("rollback", models_rollback, "move the head back (default: to the head's parent)")
    _add_version(rollback, required=False, text="the version to move to (default: the head's parent)")
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
    fetch.add_argument("ref", metavar="MODEL", help="'<id>:v<n>', or a lineage id (its head, or the version given)")
    fetch.add_argument("version", nargs="?", help="the version, if MODEL is a lineage id (default: its head)")
    fetch.add_argument("dest", type=Path, help="the folder to unpack it into (from_pretrained loads it)")
    remove = models("delete", models_delete, "delete a lineage, or one version's checkpoint ('<id>:v<n>', "
                    "or --version)")
    remove.add_argument("id", metavar="MODEL", help="a lineage id, or '<id>:v<n>' for one version")
    remove.add_argument("--version", help="delete only this version's checkpoint")
    remove.add_argument("--force", action="store_true", help="cancel the lineage's queued and running jobs first")
    retention = models("retention", models_retention, "set how many newest versions the lineage keeps")
    retention.add_argument("id")
    retention.add_argument("--keep-last", type=int, help="omit to keep every version")
    pin = models("pin", models_pin, "keep a version whatever the retention policy says")
    _add_version(pin)
    pin.add_argument("--unpin", action="store_true", help="let the policy delete it again")
    gc = models("gc", models_gc, "delete the checkpoints retention policies let go")
    gc.add_argument("id", nargs="?", help="one lineage (default: every lineage with a policy)")
    gc.add_argument("--dry-run", action="store_true", help="only show what would be deleted")
