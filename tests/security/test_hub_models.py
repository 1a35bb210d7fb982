"""What base models a server lets a key holder name: hub ids only where SCULPT_ALLOWED_HUB_MODELS allows them,
local folders only inside SCULPT_MODEL_ROOTS (never the server's working directory)."""

from __future__ import annotations

import pytest

from app.core.db.session import new_session
from app.keys.service import create_key
from tests.api.helpers import assert_error
from tests.conftest import reset_caches


@pytest.fixture
def configure(sqlite_client, monkeypatch):
    """Set the environment the API reads per request, then forget the cached settings."""
    def apply(**env: str | None) -> None:
        for name, value in env.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        reset_caches()

    with new_session() as session:
        sqlite_client.headers["Authorization"] = f"Bearer {create_key(session, 'ops')}"
    return apply


def register(client, reference: str):
    return client.post("/v1/models", json={"id": "m", "base_model": reference})


@pytest.mark.parametrize("how", [{"SCULPT_BIND_HOST": "0.0.0.0"},
                                 {"SCULPT_BIND_HOST": "127.0.0.1", "SCULPT_REQUIRE_AUTH": "true"}])
def test_a_server_takes_no_hub_id_unless_allowed(sqlite_client, configure, how):
    configure(**how)
    error = assert_error(register(sqlite_client, "sshleifer/tiny-gpt2"), 422, param="base_model",
                         code="hub_model_not_allowed")
    assert "SCULPT_ALLOWED_HUB_MODELS" in error["message"]

    configure(SCULPT_ALLOWED_HUB_MODELS="sshleifer/*, Qwen/Qwen2.5-0.5B")
    for refused in ("evil/tiny-gpt2", "SSHLEIFER/tiny-gpt2", "Qwen/Qwen2.5-7B", "gpt2"):
        assert_error(register(sqlite_client, refused), 422, code="hub_model_not_allowed")
    assert sqlite_client.get("/v1/models").json()["data"] == []
    assert register(sqlite_client, "sshleifer/tiny-gpt2").status_code == 201


def test_patterns_hold_on_loopback_too(sqlite_client, configure):
    configure(SCULPT_ALLOWED_HUB_MODELS="sshleifer/*")
    assert_error(register(sqlite_client, "gpt2"), 422, code="hub_model_not_allowed")
    assert register(sqlite_client, "sshleifer/tiny-gpt2").status_code == 201


def test_a_server_without_model_roots_reads_no_local_folder(sqlite_client, configure, base_model_dir, monkeypatch):
    monkeypatch.chdir(base_model_dir.parent)  # the model sits in the working directory
    configure(SCULPT_MODEL_ROOTS=None, SCULPT_BIND_HOST="0.0.0.0")
    for reference in (str(base_model_dir), base_model_dir.name, f"./{base_model_dir.name}"):
        error = assert_error(register(sqlite_client, reference), 422, param="base_model", code="path_not_allowed")
        assert "SCULPT_MODEL_ROOTS" in error["message"]

    configure(SCULPT_BIND_HOST="127.0.0.1")  # embedded: the working directory is a root, as before
    assert register(sqlite_client, base_model_dir.name).status_code == 201
