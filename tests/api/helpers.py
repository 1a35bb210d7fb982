"""Small builders the API tests share."""

from __future__ import annotations

import json

PROMPT_RECORDS = [{"prompt": f"What is {i} + 1?", "completion": str(i + 1)} for i in range(12)]
CHAT_RECORDS = [{"messages": [{"role": "user", "content": f"Say {i}"}, {"role": "assistant", "content": str(i)}]}
                for i in range(12)]


def jsonl(records: list) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def upload(client, content: bytes, filename: str = "task.jsonl", purpose: str = "fine-tune"):
    return client.post("/v1/files", files={"file": (filename, content, "application/jsonl")},
                       data={"purpose": purpose})


def upload_ok(client, records: list | None = None) -> str:
    response = upload(client, jsonl(records or PROMPT_RECORDS))
    assert response.status_code == 201, response.text
    return response.json()["id"]


def register(client, model_id: str, base_model_dir) -> dict:
    response = client.post("/v1/models", json={"id": model_id, "base_model": str(base_model_dir)})
    assert response.status_code == 201, response.text
    return response.json()


def create_job(client, model: str, training_file: str, **fields):
    return client.post("/v1/fine_tuning/jobs", json={"model": model, "training_file": training_file, **fields})


def assert_error(response, status: int, param: str | None = None, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    if param is not None:
        assert error["param"] == param, error
    if code is not None:
        assert error["code"] == code, error
    return error
