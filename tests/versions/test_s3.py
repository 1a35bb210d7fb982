"""Download and deletion with the checkpoints in an object store (moto's S3 server)."""

from __future__ import annotations

import io
import tarfile

from tests.api.helpers import register
from tests.storage.conftest import bucket, s3_client, s3_endpoint, s3_env, stored_keys  # noqa: F401 - fixtures
from tests.versions.conftest import set_head, store_version


def test_content_ranges_and_deletion_through_the_bucket(s3_client, bucket, base_model_dir):  # noqa: F811
    client = s3_client
    register(client, "bot", base_model_dir)
    store_version("bot", 2)
    store_version("bot", 3)
    set_head("bot", 3)

    full = client.get("/v1/models/bot/versions/2/content")
    assert full.status_code == 200 and int(full.headers["content-length"]) == len(full.content)
    with tarfile.open(fileobj=io.BytesIO(full.content)) as archive:
        assert "model.safetensors" in archive.getnames() and archive.getnames()[-1] == "manifest.json"
    cut = len(full.content) // 2 + 7
    rest = client.get("/v1/models/bot/versions/2/content", headers={"Range": f"bytes={cut}-"})
    assert rest.status_code == 206 and full.content[:cut] + rest.content == full.content

    assert client.delete("/v1/models/bot/versions/2").json()["deleted"] is True
    assert not [k for k in stored_keys(bucket, "checkpoints") if k.startswith("checkpoints/bot/v2/")]
    assert [k for k in stored_keys(bucket, "checkpoints") if k.startswith("checkpoints/bot/v3/")]
    deleted = client.delete("/v1/models/bot").json()
    assert deleted["completed"] is True and deleted["bytes_freed"] > 0
    assert stored_keys(bucket, "checkpoints") == []
