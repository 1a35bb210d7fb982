"""A version keeps its base's dtype: a bfloat16 base gives bfloat16 versions (trained on float32 master
weights), and a GGUF base is dequantized to the dtype the operator set (SCULPT_GGUF_DTYPE)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from transformers import AutoModelForCausalLM

from tests.conftest import reset_caches
from tests.worker.harness import train_two_tasks
from worker.base_scores import base_fingerprint
from worker.cache import local_checkpoint
from worker.engine import load_model_and_tokenizer, round_to, stored_dtype
from worker.tiny import build_tiny_causal_lm


def _tensor_dtypes(folder: Path) -> set[torch.dtype]:
    dtypes = set()
    for file in folder.glob("*.safetensors"):
        with safe_open(str(file), "pt") as weights:
            dtypes |= {weights.get_slice(name).get_dtype() for name in weights.keys()}  # noqa: SIM118 - not a dict
    return {getattr(torch, {"BF16": "bfloat16", "F32": "float32", "F16": "float16"}[d]) for d in dtypes}


@pytest.fixture
def bf16_base(tmp_path):
    model, tokenizer = build_tiny_causal_lm()
    path = tmp_path / "bf16-base"
    model.to(torch.bfloat16).save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


def test_rounding_keeps_float32_storage_and_is_what_a_bfloat16_save_stores(tmp_path):
    model, _ = build_tiny_causal_lm()
    round_to(model, torch.bfloat16)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    rounded = {k: v.clone() for k, v in model.state_dict().items()}
    model.to(torch.bfloat16).save_pretrained(tmp_path / "saved")
    assert stored_dtype(tmp_path / "saved") == torch.bfloat16
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "saved", dtype=torch.float32).state_dict()
    assert all(torch.equal(reloaded[k], rounded[k]) for k in reloaded)


def test_a_bfloat16_base_gives_bfloat16_versions_that_load_and_generate(sqlite_client, bf16_base, workers):
    assert stored_dtype(bf16_base) == torch.bfloat16
    _jobs, versions = train_two_tasks(sqlite_client, bf16_base, workers)
    base, _, _ = load_model_and_tokenizer(bf16_base)
    for n in (2, 3):
        folder = Path(versions[n]["checkpoint_uri"])
        assert _tensor_dtypes(folder) == {torch.bfloat16}, n
        assert '"dtype": "bfloat16"' in (folder / "manifest.json").read_text()
        model, tokenizer, _ = load_model_and_tokenizer(folder)  # float32 master weights again, for the next job
        assert model.dtype == torch.float32
        changed = max((p - q).abs().max().item() for p, q in zip(model.parameters(), base.parameters(), strict=True))
        assert changed > 0, f"v{n} did not train"
        prompt = tokenizer("alpha 1:", return_tensors="pt")
        out = model.generate(**prompt, max_new_tokens=4, do_sample=False)
        assert out.shape[1] == prompt["input_ids"].shape[1] + 4


@pytest.mark.slow
def test_a_gguf_base_is_dequantized_to_the_operators_dtype(sqlite_env, smollm2, monkeypatch):
    monkeypatch.setenv("SCULPT_GGUF_DTYPE", "bfloat16")
    reset_caches()
    folder = Path(local_checkpoint(str(smollm2), None))
    assert folder.name.endswith("-bfloat16")
    assert _tensor_dtypes(folder) == {torch.bfloat16}
    assert stored_dtype(folder) == torch.bfloat16
    bf16 = base_fingerprint(str(smollm2), None)

    # Another dtype is another base: its own folder, and suite scores kept apart from the bfloat16 one's.
    monkeypatch.setenv("SCULPT_GGUF_DTYPE", "float32")
    reset_caches()
    assert base_fingerprint(str(smollm2), None) != bf16
