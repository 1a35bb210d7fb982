"""Files and checkpoints on an S3 API server: the same guarantees as on disk, and a local cache
so each checkpoint is downloaded once per machine."""

from __future__ import annotations

import hashlib
import json

import pytest
from transformers import AutoModelForCausalLM

from app.core.db.session import session_scope
from app.core.db.tables import ModelVersion
from app.core.storage import StorageError, checkpoint_key, get_storage
from app.core.storage.s3 import S3Storage
from tests.storage.conftest import stored_keys
from tests.worker.harness import jsonl, records, upload
from worker import cache
from worker.checkpoints import save_checkpoint, verify_stored
from worker.reconciler import sweep_artifacts
from worker.tiny import build_tiny_causal_lm


def test_an_uploaded_file_lives_in_the_bucket_and_reads_back(s3_client, s3_env, bucket):
    content = jsonl(records("alpha", 5))
    file_id = upload(s3_client, records("alpha", 5))
    sha = hashlib.sha256(content).hexdigest()
    assert stored_keys(bucket, "files") == [f"files/{sha[:2]}/{sha}"]
    assert s3_client.get(f"/v1/files/{file_id}/content").content == content
    assert not (s3_env.home_path / "artifacts").exists()
    assert cache.local_file(sha).read_bytes() == content

    assert s3_client.delete(f"/v1/files/{file_id}").status_code == 200
    assert stored_keys(bucket, "files") == []


def test_a_checkpoint_is_stored_verified_and_downloaded_once(s3_env, bucket, monkeypatch):
    model, tokenizer = build_tiny_causal_lm()
    key = checkpoint_key("m", 2)
    sha = save_checkpoint(model, tokenizer, key, extra={"version": 2})
    verify_stored(key, sha)
    keys = stored_keys(bucket, "checkpoints")
    assert "checkpoints/m/v2/manifest.json" in keys and "checkpoints/m/v2/model.safetensors" in keys
    assert not [k for k in keys if ".tmp-" in k]
    assert not list((s3_env.home_path / "staging").iterdir())

    uri = get_storage().uri(key)
    assert uri == f"s3://{bucket.bucket}/sculpt/checkpoints/m/v2"
    downloads = []
    original = S3Storage.download_file
    monkeypatch.setattr(S3Storage, "download_file", lambda self, k, dest: (downloads.append(k),
                                                                             original(self, k, dest))[1])
    first = cache.local_checkpoint(uri, sha)
    assert first.startswith(str(s3_env.home_path / "cache"))
    fetched = len(downloads)
    assert fetched == len([k for k in keys if k.startswith("checkpoints/m/v2/")])
    assert cache.local_checkpoint(uri, sha) == first and len(downloads) == fetched  # served from the cache
    reloaded = AutoModelForCausalLM.from_pretrained(first)
    pairs = zip(model.state_dict().values(), reloaded.state_dict().values(), strict=True)
    assert all((a == b).all() for a, b in pairs)


def test_a_changed_object_fails_verification_before_any_version(s3_env, bucket):
    model, tokenizer = build_tiny_causal_lm()
    key = checkpoint_key("m", 2)
    sha = save_checkpoint(model, tokenizer, key)
    bucket.pipe(f"{bucket.bucket}/sculpt/{key}/model.safetensors", b"truncated")
    with pytest.raises(Exception, match=r"model\.safetensors"):
        verify_stored(key, sha)
    with pytest.raises(Exception, match="sha256"):
        verify_stored(key, "0" * 64)


def test_an_upload_failing_after_the_first_file_leaves_no_keys(s3_env, bucket, monkeypatch):
    storage = get_storage()
    real_put = storage.fs.put_file
    calls = []

    def put_then_fail(lpath, rpath, **kwargs):
        if calls:
            raise ConnectionError("connection reset by peer")
        calls.append(rpath)
        return real_put(lpath, rpath, **kwargs)

    monkeypatch.setattr(storage.fs, "put_file", put_then_fail)
    model, tokenizer = build_tiny_causal_lm()
    with pytest.raises(StorageError, match="connection reset"):
        save_checkpoint(model, tokenizer, checkpoint_key("m", 2))
    assert len(calls) == 1 and ".tmp-v2-" in calls[0]
    assert stored_keys(bucket, "checkpoints") == []
    assert not list((s3_env.home_path / "staging").iterdir())


def test_the_sweep_removes_what_a_killed_upload_left_and_keeps_recorded_versions(
        s3_client, s3_env, bucket, tiny_base):
    assert s3_client.post("/v1/models", json={"id": "m", "base_model": str(tiny_base)}).status_code == 201
    model, tokenizer = build_tiny_causal_lm()
    sha = save_checkpoint(model, tokenizer, checkpoint_key("m", 2))
    with session_scope() as session:
        session.add(ModelVersion(model_id="m", version=2, parent_version=1, checkpoint_uri=get_storage().uri(
            checkpoint_key("m", 2)), checkpoint_sha256=sha))
    root = f"{bucket.bucket}/sculpt/checkpoints/m"
    # What a worker killed mid-save leaves: part of a temp key, and part of an unrecorded version.
    bucket.pipe(f"{root}/.tmp-v3-dead0001/config.json", json.dumps({"model_type": "gpt2"}).encode())
    bucket.pipe(f"{root}/v3/config.json", b"{}")

    removed = sweep_artifacts()
    leftovers = (".tmp-v3-dead0001", "v3")
    assert sorted(removed) == sorted(get_storage().uri(f"checkpoints/m/{name}") for name in leftovers)
    assert {k.split("/")[2] for k in stored_keys(bucket, "checkpoints")} == {"v2"}
    verify_stored(checkpoint_key("m", 2), sha)


def test_an_upload_while_the_store_is_down_is_a_retryable_503_and_stores_nothing(s3_client, monkeypatch):
    from tests.conftest import reset_caches
    from tests.storage.conftest import _free_port

    monkeypatch.setenv("SCULPT_S3_ENDPOINT_URL", f"http://127.0.0.1:{_free_port()}")  # nothing listens there
    reset_caches()
    response = s3_client.post("/v1/files", data={"purpose": "fine-tune"},
                              files={"file": ("t.jsonl", jsonl(records("alpha")), "application/jsonl")})
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "artifact_store_unavailable" and response.headers["retry-after"] == "5"
    assert "127.0.0.1" not in response.text  # where the store lives is for operators, not clients
    assert s3_client.get("/v1/files").json()["data"] == []


def test_the_download_cache_drops_the_least_recently_used_entries_beyond_its_limit(s3_client, monkeypatch):
    import os
    import time

    from tests.conftest import reset_caches

    contents = [jsonl(records(task, 40)) for task in ("alpha", "beta", "gamma")]
    for task in ("alpha", "beta", "gamma"):
        upload(s3_client, records(task, 40))
    shas = [hashlib.sha256(content).hexdigest() for content in contents]
    monkeypatch.setenv("SCULPT_CACHE_MAX_BYTES", str(len(contents[0]) + len(contents[1])))
    reset_caches()
    alpha, beta = cache.local_file(shas[0]), cache.local_file(shas[1])
    long_ago = time.time() - 2 * cache.IN_USE_SECONDS
    os.utime(alpha, (long_ago, long_ago))
    os.utime(beta, (long_ago + 1, long_ago + 1))
    assert cache.local_file(shas[0]) == alpha  # a hit: alpha is now the most recently used
    gamma = cache.local_file(shas[2])  # three entries do not fit: the least recently used one goes
    assert alpha.exists() and gamma.exists() and not beta.exists()
    assert cache.local_file(shas[1]).read_bytes() == contents[1]  # fetched again when needed
