"""``sculpt eval show``: a lineage's continual-learning record (accuracy matrix, ACC, BWT, suites)."""

from __future__ import annotations

from app.cli import output
from app.cli.commands.common import Command
from app.cli.http_client import SculptClient


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


def register(evaluation: Command) -> None:
    evaluation("show", eval_show, "a lineage's accuracy matrix with ACC and BWT").add_argument("model")
