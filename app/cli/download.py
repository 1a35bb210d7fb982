"""``sculpt models download``: fetch a version's checkpoint archive, resuming with Range after a break,
and unpack it into a folder ``from_pretrained`` loads only once every file matches the manifest's sha256."""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
from pathlib import Path, PurePosixPath

from app.cli.http_client import ApiError, ClientError, SculptClient, StreamDropped
from app.core.ids import ascii_number
from app.core.storage import MANIFEST

PART = ".sculpt-download.tar.part"
STAGING = ".sculpt-download"
ATTEMPTS = 5
CHUNK = 1 << 20


def resolve_version(client: SculptClient, reference: str) -> dict:
    """The version object 'bot:v3' names, or the head's for a plain lineage id."""
    lineage, _, number = reference.rpartition(":v")
    if not (lineage and ascii_number(number) is not None):
        lineage, number = reference, str(client.get(f"/v1/models/{reference}")["head"])
    return client.get(f"/v1/models/{lineage}/versions/{number}")


def _total(response) -> int:
    content_range = response.headers.get("Content-Range")
    return int(content_range.rpartition("/")[2]) if content_range else int(response.headers["Content-Length"])


def fetch(client: SculptClient, path: str, part: Path, etag: str) -> None:
    """Download ``path`` into ``part``, continuing from what ``part`` already holds while the server's
    archive is still the one with ``etag``; retries a broken connection from where it stopped."""
    for _ in range(ATTEMPTS):
        have = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={have}-", "If-Range": etag} if have else {}
        try:
            with client.download(path, headers) as response:
                resumed = response.status_code == 206
                total = _total(response)
                with part.open("ab" if resumed else "wb") as sink:
                    for chunk in response.iter_bytes(CHUNK):
                        sink.write(chunk)
        except StreamDropped:
            continue
        except ApiError as exc:
            if exc.status != 416:  # what we hold is not a prefix of this archive: start over
                raise
            part.unlink()
            continue
        if part.stat().st_size == total:
            return
    raise ClientError(f"the download of {path} kept breaking off ({ATTEMPTS} attempts); run the command again "
                      "to resume it")


def _safe_name(member: tarfile.TarInfo) -> str:
    name = PurePosixPath(member.name)
    if not member.isfile() or name.is_absolute() or ".." in name.parts:
        raise ClientError(f"the archive holds an entry Sculpt never writes: {member.name!r}")
    return name.as_posix()


def _copy_hashed(source, target: Path) -> str:
    digest = hashlib.sha256()
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as sink:
        while block := source.read(CHUNK):
            digest.update(block)
            sink.write(block)
    return digest.hexdigest()


def unpack(part: Path, staging: Path, manifest_sha256: str | None) -> dict[str, str]:
    """Extract into ``staging``, checking the manifest against the version's recorded sha256 and every file
    against the manifest; returns the manifest's files. Raises ClientError naming the first mismatch."""
    with tarfile.open(part) as archive:
        members = {_safe_name(m): m for m in archive.getmembers()}
        if MANIFEST not in members:
            raise ClientError(f"the archive has no {MANIFEST}")
        actual = {name: _copy_hashed(archive.extractfile(member), staging / name)
                  for name, member in members.items()}
    if manifest_sha256 and actual[MANIFEST] != manifest_sha256:
        raise ClientError(f"{MANIFEST} does not match the sha256 recorded for this version")
    recorded = json.loads((staging / MANIFEST).read_text())["files"]
    for name in sorted(set(recorded) | set(actual) - {MANIFEST}):
        if recorded.get(name) != actual.get(name):
            raise ClientError(f"{name}: sha256 {actual.get(name) or '(missing)'} does not match the manifest's "
                              f"{recorded.get(name) or '(not listed)'}; the download is corrupt")
    return recorded


def download(client: SculptClient, reference: str, dest: Path) -> tuple[dict, dict[str, str]]:
    """Fetch, verify and unpack a version into ``dest``; returns the version and its manifest's files.
    A corrupt download leaves nothing new in ``dest`` and is fetched afresh by the next run."""
    version = resolve_version(client, reference)
    if version.get("deleted"):
        raise ClientError(f"{version['id']} was deleted; its checkpoint is gone")
    made_dest = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    part, staging = dest / PART, dest / STAGING
    fetch(client, f"/v1/models/{version['model']}/versions/{version['version']}/content", part,
          f'"{version["checkpoint_sha256"]}"')
    shutil.rmtree(staging, ignore_errors=True)
    try:
        files = unpack(part, staging, version["checkpoint_sha256"])
    except (ClientError, tarfile.TarError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        part.unlink(missing_ok=True)
        if made_dest:
            dest.rmdir()  # empty again: a folder this download made is not left behind either
        raise ClientError(f"{version['id']}: {exc}") from None
    for entry in staging.iterdir():
        target = dest / entry.name
        if target.is_dir():
            shutil.rmtree(target)
        entry.replace(target)
    shutil.rmtree(staging)
    part.unlink()
    return version, files
