"""Lineages with real stored checkpoints (tiny models saved through the artifact store), no training."""

from __future__ import annotations

import pytest

from app.core.db.session import session_scope
from app.core.db.tables import ModelVersion
from app.core.storage import checkpoint_key, get_storage
from tests.api.helpers import register


def store_version(model_id: str, version: int, status: str = "promoted", seed: int | None = None):
    """Save a tiny model as ``model_id``:v``version`` as a worker would, and record its row; returns the model."""
    from worker.checkpoints import save_checkpoint
    from worker.tiny import build_tiny_causal_lm

    model, tokenizer = build_tiny_causal_lm(seed=version if seed is None else seed)
    key = checkpoint_key(model_id, version)
    sha = save_checkpoint(model, tokenizer, key, extra={"version": version})
    with session_scope() as session:
        session.add(ModelVersion(model_id=model_id, version=version, parent_version=version - 1, status=status,
                                 checkpoint_uri=get_storage().uri(key), checkpoint_sha256=sha,
                                 job_id=f"ftjob-{version}", task_name=f"t{version}"))
    return model


def set_head(model_id: str, version: int) -> None:
    from app.core.db.tables import Model

    with session_scope() as session:
        session.get(Model, model_id).head_version = version


@pytest.fixture
def lineage(client, base_model_dir):
    """'bot' with v2 and v3 stored, v3 the head. Returns the client and the saved models by version."""
    register(client, "bot", base_model_dir)
    models = {v: store_version("bot", v) for v in (2, 3)}
    set_head("bot", 3)
    return client, models
