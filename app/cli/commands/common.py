"""What every client command shares: running a handler against the server, printing tables or JSON, and reading
the flags several resources take."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from app.cli import output
from app.cli.http_client import ApiError, ClientError, SculptClient, default_key, default_url

Handler = Callable[[SculptClient, argparse.Namespace], int]
# The API's own wording for its flags, and the CLI flag that sets each.
FLAG_WORDING = {"force=true": "--force"}


def json_flag(flag: str, text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ClientError(f"{flag} takes a JSON object, e.g. '{{\"max_forgetting\": 0.1}}'; {text!r} is not JSON "
                          f"({exc.msg})") from None
    if not isinstance(value, dict):
        raise ClientError(f"{flag} takes a JSON object, not {type(value).__name__}")
    return value


def pairs(flag: str, given: list[str]) -> dict[str, str] | None:
    values = {}
    for pair in given:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ClientError(f"{flag} takes KEY=VALUE, not {pair!r}")
        values[key] = value
    return values or None


def local_file(path: Path) -> Path:
    if not path.exists():
        raise ClientError(f"no such file: {path} does not exist")
    if not path.is_file():
        raise ClientError(f"{path} is not a file")
    return path


def page(args, listing: dict, columns, command: str) -> int:
    """One page of a list; says (on stderr, so --json output stays parseable) how to get the next."""
    show(args, listing["data"], columns)
    if listing.get("has_more"):
        sys.stdout.flush()  # the page first: into one pipe or file, the hint comes after it, on a line of its own
        print(f"more: {command} --after {listing['last_id']}", file=sys.stderr, flush=True)
    return 0


def show(args, data, columns, many: bool = True) -> int:
    if args.json:
        output.as_json(data)
    elif many:
        output.table(data, columns)
    else:
        output.fields(data, columns)
    return 0


def cli_wording(message: str) -> str:
    """The server's message with its API flags named as this command's flags."""
    for api, flag in FLAG_WORDING.items():
        message = message.replace(api, flag)
    return message


def _quiet_stdout() -> None:
    """The reader of stdout went away (``sculpt files list | head``): send what is left nowhere, so exiting
    does not fail on flushing it."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def run(handler: Handler) -> Callable[[argparse.Namespace], int]:
    def call(args: argparse.Namespace) -> int:
        logging.getLogger("httpx").setLevel(logging.WARNING)  # no per-request log lines in the output
        try:
            with SculptClient(args.url or default_url(), args.api_key or default_key()) as client:
                code = handler(client, args)
            sys.stdout.flush()  # here, so a reader that went away is noticed below rather than at exit
            return code
        except ApiError as exc:
            print(f"error: {cli_wording(str(exc))}", file=sys.stderr)
            return 1
        except ClientError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except BrokenPipeError:
            _quiet_stdout()
            return 0
        except OSError as exc:  # a local file that cannot be read: say which, without a traceback
            print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
            return 1
    return call


def add_global_options(parser: argparse.ArgumentParser, defaults: bool = True) -> None:
    """--url, --api-key and --json, taken before the command (``sculpt --url U models list``) or after it.
    After it, the options have no defaults, so a sub-command does not undo what was given before it."""
    default = (lambda value: value) if defaults else (lambda _value: argparse.SUPPRESS)
    parser.add_argument("--url", default=default(None),
                        help=f"the server (default: $SCULPT_URL or {default_url()})")
    parser.add_argument("--api-key", default=default(None), help="the API key (default: $SCULPT_API_KEY)")
    parser.add_argument("--json", action="store_true", default=default(False),
                        help="print JSON for scripts instead of tables")


Command = Callable[[str, Handler, str], argparse.ArgumentParser]


def group(sub, common: argparse.ArgumentParser, name: str, text: str) -> Command:
    """A command group (``sculpt models ...``); the returned function adds one action to it."""
    actions = sub.add_parser(name, help=text).add_subparsers(dest="action", required=True)

    def command(action: str, handler: Handler, text: str) -> argparse.ArgumentParser:
        parser = actions.add_parser(action, help=text, description=text, parents=[common])
        parser.set_defaults(func=run(handler))
        return parser
    return command
