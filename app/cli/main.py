"""The ``sculpt`` command: serve, worker, inference, migrate, keys, init-base, demo; and, as a client of a server,
models, files, jobs and eval."""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import socket
import subprocess
import sys
from datetime import timedelta

from sqlalchemy.engine import make_url

from app.cli.commands import add_client_commands, add_global_options
from app.cli.watch import EXIT_HELP
from app.core import logsafe
from app.core.children import die_with_parent
from app.core.settings import get_settings

log = logging.getLogger("sculpt")

WORKER_STOP_SECONDS = 15
STREAM_GRACE_SECONDS = 5
# Longer than any client's idle-connection expiry (httpx, and so the openai client: 5 s), so the client
# always closes an idle connection first and a request never races the server closing it.
KEEP_ALIVE_SECONDS = 75


def _redacted(url: str) -> str:
    """A URL fit to print: no password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not an SQLAlchemy-style URL (e.g. a broker URL): drop any credentials
        scheme, _, rest = url.partition("://")
        return f"{scheme}://{rest.rpartition('@')[2]}"


def _migrate() -> None:
    from app.core.migrate import upgrade_to_head

    upgrade_to_head()


def cmd_migrate(_args) -> int:
    _migrate()
    print(f"database at head: {_redacted(get_settings().resolved_database_url)}")
    return 0


DURATION = re.compile(r"^(\d+)([smhd]?)$")
DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(text: str) -> timedelta:
    """'90d', '12h', '30m', '3600s' or plain seconds."""
    match = DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"'{text}' is not a duration like 90d, 12h, 30m or 3600s")
    return timedelta(seconds=int(match.group(1)) * DURATION_UNITS[match.group(2)])


def _scopes(text: str) -> list[str]:
    from app.keys.schemas import SCOPES

    scopes = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise argparse.ArgumentTypeError(f"scopes are {', '.join(SCOPES)} (comma-separated); got '{text}'")
    return scopes


def _key_line(key) -> str:
    if key.revoked_at:
        state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}"
    elif key.expires_at:
        state = f"active, expires {key.expires_at:%Y-%m-%d %H:%M}"
    else:
        state = "active"
    return f"{key.name}\t{key.prefix}…\t{key.scopes}\t{state}"


def cmd_keys(args) -> int:
    from app.core.db.session import new_session
    from app.core.errors import ApiError
    from app.keys import service as keys

    _migrate()
    with new_session() as session:
        if args.action == "create":
            try:
                secret = keys.create_key(session, args.name, args.scope, args.expires_in)
            except ApiError as exc:
                print(f"error: {exc.message}", file=sys.stderr)
                return 1
            print(secret)
            expiry = f", expires in {args.expires_in}" if args.expires_in else ""
            print(f"API key '{args.name}' created (scopes: {','.join(args.scope)}{expiry}); it is shown only this "
                  "once.", file=sys.stderr)
        elif args.action == "revoke":
            if not keys.revoke_key(session, args.name):
                print(f"error: no active key named '{args.name}'", file=sys.stderr)
                return 1
            print(f"API key '{args.name}' revoked.")
        else:
            for key in keys.list_keys(session):
                print(_key_line(key))
    return 0


def _worker_command(queues: str, hostname: str | None) -> list[str]:
    name = hostname or f"sculpt-{os.getpid()}@{socket.gethostname()}"
    return [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker", "--pool", "solo",
            "--concurrency", "1", "--queues", queues, "--hostname", name, "--loglevel", "INFO"]


def cmd_worker(args) -> int:
    command = _worker_command(args.queues, args.hostname)
    die_with_parent()
    os.execv(command[0], command)
    return 0  # not reached


def _inference_command(host: str, port: int, url: str | None) -> list[str]:
    # A module path, not an import: the API package never loads torch.
    return [sys.executable, "-m", "worker.inference", "--host", host, "--port", str(port),
            *(["--url", url] if url else [])]


def cmd_inference(args) -> int:
    command = _inference_command(args.host, args.port, args.url)
    die_with_parent()
    os.execv(command[0], command)
    return 0  # not reached


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(WORKER_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def cmd_serve(args) -> int:
    import uvicorn

    from app.core.children import child_environment, forget_dead_local_processes
    from app.core.db.session import new_session
    from app.http.auth import open_bind_refusal
    from app.keys.service import any_key_created

    settings = get_settings().model_copy(update={"bind_host": args.host})
    _migrate()
    with new_session() as session:
        refusal = open_bind_refusal(settings, session)
        keys_exist = any_key_created(session)
        forgotten = forget_dead_local_processes(session)  # a serve killed before it could stop its children
    if refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return 2
    if forgotten:
        print(f"removed      rows of processes that are gone: {', '.join(forgotten)}")
    # The API processes (uvicorn's workers inherit the environment) decide from it whether keys are required.
    os.environ["SCULPT_BIND_HOST"] = args.host
    get_settings.cache_clear()
    url = f"http://{args.host}:{args.port}"
    print(f"Sculpt API   {url}/v1  (docs {url}/docs)")
    print(f"database     {_redacted(settings.resolved_database_url)}")
    print(f"broker       {_redacted(settings.resolved_broker_url)}"
          + (f" ({settings.broker_folder})" if settings.is_embedded_broker else ""))
    print(f"artifacts    {settings.resolved_artifact_root}")
    if settings.auth_required:
        print("auth         every /v1 request needs a valid API key")
    elif not keys_exist:
        print(f"auth         none: no API keys exist, so the API is open to anyone who reaches {args.host}; "
              "create one with `sculpt keys create NAME`")
    worker = inference = None
    if settings.is_embedded_broker and not args.no_worker:
        worker = subprocess.Popen([sys.executable, "-m", "app.cli.main", "worker", "--queues", args.queues],
                                  env=child_environment())
        print(f"worker       pid {worker.pid} (queues {args.queues})")
    else:
        print("worker       none started here: run `sculpt worker` (one per GPU) against the same broker")
    if settings.is_embedded_broker and not args.no_inference:
        inference = subprocess.Popen([sys.executable, "-m", "app.cli.main", "inference", "--host", "127.0.0.1",
                                      "--port", "0"], env=child_environment())
        print(f"inference    pid {inference.pid} (registers its URL once it listens)")
    else:
        print("inference    none started here: run `sculpt inference` (one per GPU) on the same database")
    sys.stdout.flush()
    # uvicorn shuts down gracefully on SIGINT/SIGTERM and then re-raises the signal to the handler
    # that was there before it: make that handler an exception, so the worker is stopped below.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        # Event streams stay open until their job ends: on shutdown, cut them after a short grace
        # (clients resume with Last-Event-ID) instead of waiting for every job to finish.
        uvicorn.run("app.main:create_app", factory=True, host=args.host, port=args.port, workers=args.workers,
                    log_level="info", timeout_keep_alive=KEEP_ALIVE_SECONDS,
                    timeout_graceful_shutdown=STREAM_GRACE_SECONDS)
    except KeyboardInterrupt:
        pass
    finally:
        for process in (worker, inference):
            if process is not None:
                _stop(process)
    return 0


def _exit_on_signal(_signum, _frame) -> None:
    raise SystemExit(0)


def cmd_init_base(args) -> int:
    if not args.tiny:
        print("error: only --tiny is supported (build a tiny model in code, no download)", file=sys.stderr)
        return 2
    # A subprocess, so the API package never imports torch.
    return subprocess.call([sys.executable, "-m", "worker.tiny", args.path, "--kind", args.kind])


def cmd_demo(args) -> int:
    from app.cli.demo import main as demo_main

    demo_main(tiny=args.tiny)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sculpt", description=__doc__, epilog=f"jobs watch exits {EXIT_HELP}",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_global_options(parser)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="migrate, then run the API (and, embedded, one worker)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--queues", default="default", help="queues of the embedded worker")
    serve.add_argument("--no-worker", action="store_true", help="do not start the embedded worker")
    serve.add_argument("--no-inference", action="store_true", help="do not start the embedded inference process")
    serve.add_argument("--workers", type=int, default=1,
                       help="API processes (uvicorn workers); more use more cores under many pollers")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run one Celery training worker (one job at a time)")
    worker.add_argument("--queues", default="default", help="comma-separated queues to take jobs from")
    worker.add_argument("--hostname", default=None, help="Celery node name (default: sculpt-<pid>@<host>)")
    worker.set_defaults(func=cmd_worker)

    inference = sub.add_parser("inference", help="run one inference process (serves /v1/chat/completions)")
    inference.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0 in a container)")
    inference.add_argument("--port", type=int, default=0, help="0: any free port (it registers the one it got)")
    inference.add_argument("--url", default=None, help="URL the API reaches it at (default: from host and port)")
    inference.set_defaults(func=cmd_inference)

    migrate = sub.add_parser("migrate", help="upgrade the database to the latest schema")
    migrate.set_defaults(func=cmd_migrate)

    keys = sub.add_parser("keys", help="manage API keys")
    key_actions = keys.add_subparsers(dest="action", required=True)
    create = key_actions.add_parser("create", help="create a key and print it once")
    create.add_argument("name")
    create.add_argument("--scope", type=_scopes, default=["admin"],
                        help="comma-separated: read (every GET), train (also files and jobs), admin (everything, "
                             "keys included; the default)")
    create.add_argument("--expires-in", type=_duration, default=None, metavar="DURATION",
                        help="e.g. 90d, 12h, 30m; default: never")
    revoke = key_actions.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("name")
    key_actions.add_parser("list", help="list keys (names and prefixes, never secrets)")
    keys.set_defaults(func=cmd_keys)

    init_base = sub.add_parser("init-base", help="build a base model folder")
    init_base.add_argument("--tiny", action="store_true", help="a tiny model and tokenizer built in code")
    init_base.add_argument("--kind", choices=["causal", "t5"], default="causal", help="decoder-only or T5")
    init_base.add_argument("path")
    init_base.set_defaults(func=cmd_init_base)

    demo = sub.add_parser("demo", help="run the end-to-end demo: SmolLM2-135M-Instruct (fetched with pip) learns two "
                                       "tasks with the default strategy and with plain full fine-tuning, and the "
                                       "demo compares what each kept (about 6 minutes on 2 CPU cores)")
    demo.add_argument("--tiny", action="store_true",
                      help="a tiny model built in code instead (about a minute): the product, not the method; "
                           "also what runs where the real model cannot be fetched")
    demo.set_defaults(func=cmd_demo)

    add_client_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO)
    logsafe.install()  # the one log format (SCULPT_LOG_FORMAT) and one line per event
    logging.getLogger("alembic").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
