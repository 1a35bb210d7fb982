"""``sculpt files ...``: datasets on the server."""

from __future__ import annotations

import sys
from pathlib import Path

from app.cli import output
from app.cli.commands.common import Command, local_file, page, show
from app.cli.http_client import SculptClient

FILE_COLUMNS = [("id", lambda f: f["id"]), ("filename", lambda f: f["filename"]), ("purpose", lambda f: f["purpose"]),
                ("bytes", lambda f: f["bytes"]), ("lines", lambda f: f.get("lines")),
                ("created", lambda f: output.when(f["created_at"]))]


def files_upload(client: SculptClient, args) -> int:
    return show(args, client.upload(local_file(args.path), args.purpose), FILE_COLUMNS, many=False)


def files_list(client: SculptClient, args) -> int:
    listing = client.get("/v1/files", limit=args.limit, after=args.after, purpose=args.purpose)
    return page(args, listing, FILE_COLUMNS, "sculpt files list")


def files_show(client: SculptClient, args) -> int:
    return show(args, client.get(f"/v1/files/{args.id}"), [*FILE_COLUMNS, ("sha256", lambda f: f["sha256"])],
                many=False)


def files_content(client: SculptClient, args) -> int:
    sys.stdout.buffer.write(client.content(f"/v1/files/{args.id}/content"))
    sys.stdout.flush()
    return 0


def files_delete(client: SculptClient, args) -> int:
    deleted = client.delete(f"/v1/files/{args.id}", force=str(args.force).lower())
    if args.json:
        output.as_json(deleted)
    else:
        print(f"{deleted['id']}: deleted")
    return 0


def register(files: Command) -> None:
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
    remove = files("delete", files_delete, "delete a file (refused while a job uses it)")
    remove.add_argument("id")
    remove.add_argument("--force", action="store_true",
                        help="delete it though a lineage's tasks were taught with it (they are no longer evaluated)")
