"""The inference endpoints' contract without a model: parameters refused by name (400), OpenAI's 404 for
a model that cannot serve, and 503 when no inference process can answer, including one that dies
mid-answer. Generation itself is proved end to end in tests/inference/test_serve_end_to_end.py."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import openai
import pytest

from app.core.db.session import session_scope
from app.core.db.tables import InferenceServer, ModelVersion, utcnow
from app.core.settings import get_settings
from tests.api.helpers import assert_error, register

CHAT = {"model": "bot", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def openai_client(client):
    return openai.OpenAI(base_url=f"{client.base_url}/v1", api_key="unused", http_client=client, max_retries=0)


def add_server(url: str, seconds_ago: float = 0.0) -> None:
    with session_scope() as session:
        session.add(InferenceServer(id=url, url=url, token="unused", loaded=[],
                                    heartbeat_at=utcnow() - timedelta(seconds=seconds_ago)))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def dying_server(after: bytes) -> Iterator[str]:
    """An inference process that answers 200, sends ``after`` and then drops the connection, as one killed
    mid-answer does."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                connection.recv(65536)
                connection.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\n"
                                   b"transfer-encoding: chunked\r\n\r\n"
                                   + (f"{len(after):x}\r\n".encode() + after + b"\r\n" if after else b""))
                connection.shutdown(socket.SHUT_RDWR)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


def test_unsupported_parameters_are_refused_by_name(client, base_model_dir, openai_client):
    register(client, "bot", base_model_dir)
    error = assert_error(client.post("/v1/chat/completions", json={**CHAT, "tools": [], "logprobs": True}), 400,
                         param="logprobs", code="unsupported_parameter")
    assert "logprobs" in error["message"] and "tools" in error["message"]
    assert_error(client.post("/v1/completions", json={"model": "bot", "prompt": "x", "echo": True}), 400,
                 param="echo", code="unsupported_parameter")
    with pytest.raises(openai.BadRequestError) as refused:
        openai_client.chat.completions.create(model="bot", messages=CHAT["messages"], presence_penalty=0.5)
    assert "presence_penalty" in refused.value.message


@pytest.mark.parametrize(("body", "param"), [
    ({**CHAT, "temperature": 3}, "temperature"),
    ({**CHAT, "top_p": 0}, "top_p"),
    ({**CHAT, "max_tokens": 10**6}, "max_tokens"),
    ({**CHAT, "n": 1000}, "n"),
    ({**CHAT, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"model": "bot"}, "messages"),
    ({"model": "bot", "messages": [{"role": "robot", "content": "hi"}]}, "messages.0.role"),
    ({"model": "bot", "messages": []}, "messages"),
])
def test_invalid_values_are_a_400_naming_the_parameter(sqlite_client, base_model_dir, body, param):
    register(sqlite_client, "bot", base_model_dir)
    assert_error(sqlite_client.post("/v1/chat/completions", json=body), 400, param=param, code="invalid_value")


def test_a_model_that_cannot_serve_is_openais_404(client, base_model_dir, openai_client):
    register(client, "bot", base_model_dir)
    gone = get_settings().resolved_artifact_root / "checkpoints" / "bot" / "v2"
    with session_scope() as session:  # a version whose checkpoint was deleted
        session.add(ModelVersion(model_id="bot", version=2, parent_version=1, checkpoint_uri=str(gone),
                                 checkpoint_sha256="ab" * 32))
    for name in ("nobody", "bot:v9", "bot:vx", "bot@older", "bot@previous", "bot:v2"):
        assert_error(client.post("/v1/chat/completions", json={**CHAT, "model": name}), 404, param="model",
                     code="model_not_found")
    with pytest.raises(openai.NotFoundError):
        openai_client.completions.create(model="bot:v2", prompt="x")
    assert [m["id"] for m in client.get("/v1/models").json()["data"]] == ["bot", "bot:v1"]  # v2 cannot serve


def test_no_inference_process_is_a_503(client, base_model_dir):
    register(client, "bot", base_model_dir)
    assert_error(client.post("/v1/chat/completions", json=CHAT), 503, code="inference_unavailable")
    add_server("http://127.0.0.1:9", seconds_ago=3600)  # a registration whose heartbeat lapsed long ago
    assert_error(client.post("/v1/chat/completions", json=CHAT), 503, code="inference_unavailable")
    add_server(f"http://127.0.0.1:{closed_port()}")  # registered, heartbeat current, but nothing listens
    response = client.post("/v1/completions", json={"model": "bot", "prompt": "x"})
    assert_error(response, 503, code="inference_unavailable")
    assert response.headers["retry-after"]


def test_an_inference_process_dying_mid_answer_is_a_503_not_a_hang(client, base_model_dir, openai_client):
    register(client, "bot", base_model_dir)
    start = b'{"type": "start", "prompt_tokens": 3}\n{"type": "delta", "index": 0, "text": "he"}\n'
    with dying_server(start) as url:
        add_server(url)
        assert_error(client.post("/v1/chat/completions", json=CHAT), 503, code="inference_unavailable")
        stream = openai_client.chat.completions.create(model="bot", messages=CHAT["messages"], stream=True)
        seen = []
        with pytest.raises(openai.APIError) as broke:
            seen.extend(chunk.choices[0].delta.content for chunk in stream)
        assert seen == ["", "he"] and "stopped answering" in broke.value.message


def test_an_inference_process_dying_before_it_starts_is_a_503(client, base_model_dir):
    register(client, "bot", base_model_dir)
    with dying_server(b"") as url:
        add_server(url)
        assert_error(client.post("/v1/chat/completions", json={**CHAT, "stream": True}), 503,
                     code="inference_unavailable")


def test_versions_are_listed_and_retrievable_as_openai_models(client, base_model_dir, openai_client):
    register(client, "bot", base_model_dir)
    assert [m.id for m in openai_client.models.list()] == ["bot", "bot:v1"]
    version = openai_client.models.retrieve("bot:v1")
    assert version.id == "bot:v1" and isinstance(version.created, int) and version.owned_by == "sculpt"
    lineage = client.get("/v1/models").json()["data"][0]
    assert lineage["head"] == 1 and lineage["tasks"] == []  # the lineage object keeps its fields


def test_a_deleted_or_half_deleted_version_and_a_deleted_lineage_are_openais_404(client, base_model_dir):
    from tests.versions.conftest import set_head, store_version

    register(client, "bot", base_model_dir)
    for version in (2, 3, 4):
        store_version("bot", version)
    set_head("bot", 4)
    assert client.delete("/v1/models/bot/versions/2").status_code == 200
    with session_scope() as session:  # a deletion a crash cut short: its files are all still there
        session.query(ModelVersion).filter_by(model_id="bot", version=3).update({"deletion": "deleting"})
    for name in ("bot:v2", "bot:v3", "bot@previous"):
        assert_error(client.post("/v1/chat/completions", json={**CHAT, "model": name}), 404, param="model",
                     code="model_not_found")
    assert [m["id"] for m in client.get("/v1/models").json()["data"]] == ["bot", "bot:v1", "bot:v4"]
    assert client.delete("/v1/models/bot").status_code == 200
    assert_error(client.post("/v1/completions", json={"model": "bot", "prompt": "x"}), 404, code="model_not_found")
