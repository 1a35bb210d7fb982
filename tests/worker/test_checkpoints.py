"""Checkpoints are written complete or not at all, and verified against their manifest."""

import json
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM

from app.core.settings import get_settings
from app.core.storage import get_storage
from worker.checkpoints import (
    CorruptCheckpoint,
    checkpoint_key,
    save_checkpoint,
    verify_checkpoint,
    verify_stored,
)
from worker.tiny import build_tiny_causal_lm


@pytest.fixture
def artifact_root(tmp_path, monkeypatch):
    monkeypatch.setenv("SCULPT_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    get_settings.cache_clear()
    yield tmp_path / "artifacts"
    get_settings.cache_clear()


def test_saved_checkpoint_verifies_and_reloads_with_plain_from_pretrained(artifact_root):
    model, tokenizer = build_tiny_causal_lm()
    sha = save_checkpoint(model, tokenizer, checkpoint_key("m", 2), extra={"version": 2})
    verify_stored(checkpoint_key("m", 2), sha)
    target = artifact_root / "checkpoints" / "m" / "v2"
    verify_checkpoint(target, sha)
    manifest = json.loads((target / "manifest.json").read_text())
    assert "model.safetensors" in manifest["files"] and manifest["version"] == 2
    assert not list(target.parent.glob(".tmp-*"))
    reloaded = AutoModelForCausalLM.from_pretrained(target)
    pairs = zip(model.state_dict().values(), reloaded.state_dict().values(), strict=True)
    assert all((a == b).all() for a, b in pairs)


def test_a_changed_file_or_manifest_fails_verification(artifact_root):
    model, tokenizer = build_tiny_causal_lm()
    sha = save_checkpoint(model, tokenizer, checkpoint_key("m", 2))
    target = Path(get_storage().uri(checkpoint_key("m", 2)))
    verify_checkpoint(target, sha)
    with pytest.raises(CorruptCheckpoint, match="sha256"):
        verify_checkpoint(target, "0" * 64)
    weights = target / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(CorruptCheckpoint, match=r"model\.safetensors"):
        verify_checkpoint(target)


def test_a_failed_save_leaves_nothing_behind(artifact_root):
    model, _ = build_tiny_causal_lm()

    class ExplodingTokenizer:
        def save_pretrained(self, path):  # noqa: ARG002 - the tokenizer's signature
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(model, ExplodingTokenizer(), checkpoint_key("m", 3))
    target = artifact_root / "checkpoints" / "m" / "v3"
    assert not target.exists()
    assert list(target.parent.iterdir()) == []
