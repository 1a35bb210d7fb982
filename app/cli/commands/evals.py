"""``sculpt eval show``: a lineage's continual-learning record (accuracy matrix, ACC, BWT, suites), or, with
``--task``, the held-out examples behind one cell of it beside the previous version's answers."""

from __future__ import annotations

from app.cli import output
from app.cli.commands.common import Command, page
from app.cli.commands.models import version_ref
from app.cli.http_client import ClientError, SculptClient

EXAMPLE_COLUMNS = [("#", lambda e: e["index"]), ("change", lambda e: e["change"]),
                   ("prompt", lambda e: output.clip(e["prompt"])), ("reference", lambda e: output.clip(e["reference"])),
                   ("before", lambda e: output.clip(e["previous_answer"])), ("now", lambda e: output.clip(e["answer"]))]


def eval_show(client: SculptClient, args) -> int:
    model_id, version = version_ref(args.model, None)
    if args.task is not None:
        return _examples(client, args, model_id, version)
    record = client.get(f"/v1/models/{model_id}/evaluations", version=version)
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


def _examples(client: SculptClient, args, model_id: str, version: int | None) -> int:
    """One cell of the matrix, example by example: this version's answers beside its parent's."""
    if version is None:
        version = client.get(f"/v1/models/{model_id}")["head"]
    listing = client.get(f"/v1/models/{model_id}/versions/{version}/examples", task=args.task, limit=args.limit,
                         after=args.after, changed=str(args.changed).lower())
    shown = listing["data"]
    if not args.json:
        previous = next((e["previous_version"] for e in shown if e["previous_version"] is not None), None)
        if previous is None and shown:
            raise ClientError(f"{model_id}:v{version} has no earlier answers on {args.task!r} to compare with")
        print(f"{model_id}:v{version} on {args.task}: 'before' is v{previous}'s answer, 'now' v{version}'s")
    return page(args, listing, EXAMPLE_COLUMNS,
                f"sculpt eval show {model_id}:v{version} --task {args.task}" + (" --changed" if args.changed else ""))


def register(evaluation: Command) -> None:
    show = evaluation("show", eval_show, "a lineage's accuracy matrix with ACC and BWT; with --task, the held-out "
                      "examples behind one cell beside the previous version's answers")
    show.add_argument("model", help="a lineage (its head's figures) or '<id>:v<n>'")
    show.add_argument("--task", help="show the examples of this task (a matrix column) for the version")
    show.add_argument("--changed", action="store_true", help="with --task: only examples lost or gained")
    show.add_argument("--limit", type=int, default=50, help="with --task: examples per page")
    show.add_argument("--after", help="with --task: the last index of the previous page")
