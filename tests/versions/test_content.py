"""GET /v1/models/{id}/versions/{n}/content: the checkpoint as a tar that is the same bytes every time,
with Content-Length and ranges, so a broken download resumes."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

from tests.api.helpers import assert_error

CONTENT = "/v1/models/bot/versions/{}/content"


def test_the_archive_holds_the_checkpoint_and_a_manifest_and_is_the_same_bytes_each_time(lineage):
    client, _ = lineage
    first = client.get(CONTENT.format(2))
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "application/x-tar" and first.headers["accept-ranges"] == "bytes"
    assert int(first.headers["content-length"]) == len(first.content)
    assert client.get(CONTENT.format(2)).content == first.content

    with tarfile.open(fileobj=io.BytesIO(first.content)) as archive:
        names = archive.getnames()
        manifest_bytes = archive.extractfile("manifest.json").read()
        manifest = json.loads(manifest_bytes)
        for name, sha in manifest["files"].items():
            assert hashlib.sha256(archive.extractfile(name).read()).hexdigest() == sha, name
    assert names[-1] == "manifest.json" and names[:-1] == sorted(manifest["files"])
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= set(names)
    version = client.get("/v1/models/bot/versions/2").json()
    assert first.headers["etag"] == f'"{version["checkpoint_sha256"]}"'
    assert hashlib.sha256(manifest_bytes).hexdigest() == version["checkpoint_sha256"]
    assert client.get(CONTENT.format(3)).content != first.content


def test_ranges_continue_the_same_bytes(lineage):
    client, _ = lineage
    full = client.get(CONTENT.format(2)).content
    size = len(full)
    cut = size // 3
    rest = client.get(CONTENT.format(2), headers={"Range": f"bytes={cut}-"})
    assert rest.status_code == 206
    assert rest.headers["content-range"] == f"bytes {cut}-{size - 1}/{size}"
    assert int(rest.headers["content-length"]) == size - cut and full[:cut] + rest.content == full
    middle = client.get(CONTENT.format(2), headers={"Range": "bytes=600-1699"})
    assert middle.status_code == 206 and middle.content == full[600:1700]
    tail = client.get(CONTENT.format(2), headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == full[-10:]

    etag = rest.headers["etag"]
    same = client.get(CONTENT.format(2), headers={"Range": f"bytes={cut}-", "If-Range": etag})
    assert same.status_code == 206 and same.content == full[cut:]
    changed = client.get(CONTENT.format(2), headers={"Range": f"bytes={cut}-", "If-Range": '"other"'})
    assert changed.status_code == 200 and changed.content == full  # not the archive the client began
    several = client.get(CONTENT.format(2), headers={"Range": "bytes=0-1,5-6"})
    assert several.status_code == 200 and several.content == full

    past = client.get(CONTENT.format(2), headers={"Range": f"bytes={size}-"})
    assert_error(past, 416, param="Range", code="range_not_satisfiable")
    assert past.headers["content-range"] == f"bytes */{size}"


def test_no_content_for_the_base_a_missing_version_or_a_deleted_one(lineage):
    client, _ = lineage
    assert_error(client.get(CONTENT.format(1)), 404, param="version", code="checkpoint_not_stored")
    assert_error(client.get(CONTENT.format(9)), 404, param="version", code="version_not_found")
    assert_error(client.get("/v1/models/nope/versions/2/content"), 404, code="model_not_found")
    assert client.delete("/v1/models/bot/versions/2").status_code == 200
    assert_error(client.get(CONTENT.format(2)), 404, param="version", code="version_deleted")
