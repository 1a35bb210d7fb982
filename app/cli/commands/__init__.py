"""The client sub-commands of ``sculpt``: models, files, jobs, workers, eval, chat and compare, over HTTP by URL
and key; one module per resource.

Every command prints a table for people or, with ``--json``, the API's objects for scripts. An API
error or bad input prints one line saying what was wrong and exits 1 (argparse's usage errors: 2);
``jobs watch`` exits by the job's outcome (``app.cli.watch.EXIT_CODES``).
"""

from __future__ import annotations

import argparse

from app.cli.chat import chat, compare
from app.cli.commands import evals, files, jobs, models, workers
from app.cli.commands.common import add_global_options, group, run

__all__ = ["add_client_commands", "add_global_options"]


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
    """Register the models, files, jobs, workers and eval groups, chat and compare, on ``sculpt``'s sub-parsers."""
    common = _common()
    models.register(group(sub, common, "models", "model lineages on a server"))
    files.register(group(sub, common, "files", "datasets on a server"))
    jobs.register(group(sub, common, "jobs", "fine-tuning jobs on a server"))
    workers.register(group(sub, common, "workers", "training workers"))
    evals.register(group(sub, common, "eval", "evaluation records"))

    talk = sub.add_parser("chat", help="chat with a version (interactive, or one answer with --prompt)",
                          parents=[common, _generation()])
    talk.add_argument("model", help="a lineage (its head), '<id>:v<n>' or '<id>@previous'")
    talk.add_argument("--prompt", help="answer this one message and exit")
    talk.set_defaults(func=run(chat))
    side = sub.add_parser("compare", help="two (or more) versions' answers to one prompt",
                          parents=[common, _generation()])
    side.add_argument("models", nargs="+", metavar="model", help="e.g. bot:v2 bot:v3")
    side.add_argument("--prompt", required=True)
    side.set_defaults(func=run(compare))
