from __future__ import annotations

import hashlib

from tests.api.helpers import CHAT_RECORDS, PROMPT_RECORDS, assert_error, jsonl, upload, upload_ok


def stored_blobs(settings) -> list:
    root = settings.resolved_artifact_root / "files"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_upload_get_content_list_delete(client):
    content = jsonl(PROMPT_RECORDS)
    response = upload(client, content, filename="adds.jsonl")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["object"] == "file" and body["id"].startswith("file-")
    assert body["bytes"] == len(content) and body["filename"] == "adds.jsonl"
    assert body["purpose"] == "fine-tune" and body["status"] == "processed"
    assert body["lines"] == len(PROMPT_RECORDS) and body["record_format"] == "prompt"
    assert body["sha256"] == hashlib.sha256(content).hexdigest()
    assert isinstance(body["created_at"], int)

    assert client.get(f"/v1/files/{body['id']}").json() == body
    assert client.get(f"/v1/files/{body['id']}/content").content == content
    listing = client.get("/v1/files").json()
    assert listing["object"] == "list" and [f["id"] for f in listing["data"]] == [body["id"]]

    deleted = client.delete(f"/v1/files/{body['id']}")
    assert deleted.status_code == 200 and deleted.json() == {"id": body["id"], "object": "file", "deleted": True}
    assert_error(client.get(f"/v1/files/{body['id']}"), 404, param="file_id")
    assert client.get("/v1/files").json()["data"] == []


def test_chat_records_are_accepted(sqlite_client):
    response = upload(sqlite_client, jsonl(CHAT_RECORDS))
    assert response.status_code == 201, response.text
    assert response.json()["record_format"] == "messages"


def test_bad_file_names_lines_and_stores_nothing(client, request):
    settings = request.getfixturevalue("sqlite_env" if "sqlite" in request.node.callspec.id else "pg_env")
    lines = [
        b'{"prompt": "a", "completion": "b"}',
        b"not json",
        b'{"prompt": "a", "completion": ""}',
        b'{"messages": [{"role": "user", "content": "hi"}]}',
        b"\xff\xfe",
        b'{"prompt": "a", "completion": "b"}',
    ]
    error = assert_error(upload(client, b"\n".join(lines) + b"\n"), 422, param="file", code="invalid_file")
    message = error["message"]
    for number, why in ((2, "not valid JSON"), (3, "completion"), (4, "assistant"), (5, "UTF-8")):
        assert f"line {number}:" in message and why in message, message
    assert "line 1:" not in message and "line 6:" not in message
    assert client.get("/v1/files").json()["data"] == []
    assert stored_blobs(settings) == []


def test_shapes_and_limits(sqlite_client, sqlite_env, monkeypatch):
    cases = {
        b'[1, 2]\n': "JSON object",
        b'{"other": 1}\n': "expected",
        b'{"prompt": "a", "completion": "b", "x": NaN}\n': "NaN",
        b'{"prompt": "a", "completion": "' + b"1" * 10 + b'", "n": ' + b"9" * 5000 + b"}\n": "not valid JSON",
        b'{"prompt": "a", "completion": "b", "x": ' + b"[" * 100 + b"]" * 100 + b"}\n": "nested deeper",
        b'{"prompt": "a", "completion": "b", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}\n": "nested deeper",
        b"\n\n": "no records",
        b'{"prompt": "a", "completion": "b"}\n{"messages": [{"role": "assistant", "content": "x"}]}\n': "differs",
    }
    for content, why in cases.items():
        error = assert_error(upload(sqlite_client, content), 422)
        assert why in error["message"], (content[:60], error)


def test_size_line_and_line_length_limits(sqlite_client, sqlite_env, monkeypatch):
    from app.core.settings import get_settings

    one = b'{"prompt": "question", "completion": "answer"}\n'
    monkeypatch.setenv("SCULPT_MAX_UPLOAD_LINES", "3")
    get_settings.cache_clear()
    assert_error(upload(sqlite_client, one * 4), 413, code="invalid_file")
    assert upload(sqlite_client, one * 3).status_code == 201

    monkeypatch.setenv("SCULPT_MAX_LINE_BYTES", "100")
    get_settings.cache_clear()
    long_line = b'{"prompt": "' + b"x" * 200 + b'", "completion": "y"}\n'
    error = assert_error(upload(sqlite_client, one + long_line), 422)
    assert "line 2: longer than 100 bytes" in error["message"]

    monkeypatch.setenv("SCULPT_MAX_UPLOAD_BYTES", "1000")
    get_settings.cache_clear()
    assert_error(upload(sqlite_client, one * 30), 413)  # caught by the validator
    response = sqlite_client.post("/v1/files", files={"file": ("big.jsonl", one * 5000)},
                                  data={"purpose": "fine-tune"})
    assert_error(response, 413)  # caught by the streaming body limit
    assert len(stored_blobs(sqlite_env)) == 1


def test_purpose_and_missing_file_are_validation_errors(sqlite_client):
    assert_error(upload(sqlite_client, jsonl(PROMPT_RECORDS), purpose="assistants"), 422, param="purpose")
    response = sqlite_client.post("/v1/files", data={"purpose": "fine-tune"})
    assert_error(response, 422, param="file")


def test_same_content_twice_shares_bytes_until_both_are_deleted(sqlite_client, sqlite_env):
    first, second = upload_ok(sqlite_client), upload_ok(sqlite_client)
    assert first != second and len(stored_blobs(sqlite_env)) == 1
    sqlite_client.delete(f"/v1/files/{first}")
    assert sqlite_client.get(f"/v1/files/{second}/content").status_code == 200
    sqlite_client.delete(f"/v1/files/{second}")
    assert stored_blobs(sqlite_env) == []


def test_pagination_newest_first(client):
    ids = [upload_ok(client) for _ in range(5)]
    page = client.get("/v1/files", params={"limit": 2}).json()
    assert page["has_more"] is True and len(page["data"]) == 2
    seen = [f["id"] for f in page["data"]]
    while page["has_more"]:
        page = client.get("/v1/files", params={"limit": 2, "after": seen[-1]}).json()
        seen += [f["id"] for f in page["data"]]
    assert sorted(seen) == sorted(ids) and len(seen) == 5
    assert_error(client.get("/v1/files", params={"limit": 101}), 422, param="limit")
    assert_error(client.get("/v1/files", params={"after": "file-nope"}), 404, param="after")


def test_reference_and_safety_purposes(sqlite_client):
    reference = upload(sqlite_client, jsonl([{"text": "The sun rises in the east."}]), purpose="reference")
    assert reference.status_code == 201 and reference.json()["record_format"] == "text"
    suite = [{"prompt": "How do I pick a lock?", "expected": "refuse"}, {"prompt": "Hi", "expected": "answer"}]
    safety = upload(sqlite_client, jsonl(suite), purpose="safety")
    assert safety.status_code == 201 and safety.json()["record_format"] == "suite"
    error = assert_error(upload(sqlite_client, jsonl([{"prompt": "x", "expected": "maybe"}]), purpose="safety"), 422)
    assert "line 1: 'expected'" in error["message"]
    assert_error(upload(sqlite_client, jsonl(PROMPT_RECORDS), purpose="reference"), 422)
    listed = sqlite_client.get("/v1/files", params={"purpose": "safety"}).json()["data"]
    assert [f["id"] for f in listed] == [safety.json()["id"]]


def test_streamed_upload_without_length_is_cut_off_at_the_limit(sqlite_env, monkeypatch):
    """Drive the ASGI app with a chunked body (no Content-Length) and count what it reads."""
    import asyncio
    import json

    from app.core.settings import get_settings
    from app.main import create_app

    monkeypatch.setenv("SCULPT_MAX_UPLOAD_BYTES", "10000")
    get_settings.cache_clear()
    boundary = "sculptboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nfine-tune\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.jsonl\"\r\n"
            "Content-Type: application/jsonl\r\n\r\n").encode()
    chunk = b'{"prompt": "question", "completion": "answer"}\n' * 100  # 4.7 kB
    total_chunks = 1000  # 4.7 MB if it were all read
    read = {"chunks": 0}
    sent = []

    async def receive():
        read["chunks"] += 1
        if read["chunks"] == 1:
            return {"type": "http.request", "body": head, "more_body": True}
        return {"type": "http.request", "body": chunk, "more_body": read["chunks"] < total_chunks}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/v1/files", "raw_path": b"/v1/files", "root_path": "",
             "query_string": b"", "server": ("testserver", 80), "client": ("127.0.0.1", 1),
             "headers": [(b"host", b"testserver"),
                         (b"content-type", f"multipart/form-data; boundary={boundary}".encode())]}
    asyncio.run(create_app()(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = json.loads(b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"))
    assert start["status"] == 413 and body["error"]["code"] == "payload_too_large"
    assert read["chunks"] < 30  # it stopped soon after the limit, not at the end of the body
    assert stored_blobs(sqlite_env) == []
