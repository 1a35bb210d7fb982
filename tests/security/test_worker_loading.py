"""The worker loads safetensors only: a pickle file in a model folder is refused at load, even when
it appears after the model was registered (the API checked the folder only then)."""

from __future__ import annotations

import pytest

from tests.worker.harness import records, submit, upload, wait_for
from worker.engine.loading import load_model_and_tokenizer


@pytest.mark.parametrize("pickle_at", ["pytorch_model.bin", "extra/optimizer.pt", "weights.pkl"])
def test_a_pickle_file_anywhere_in_the_folder_is_refused_at_load(tiny_base, pickle_at):
    assert load_model_and_tokenizer(tiny_base)[0] is not None
    (tiny_base / pickle_at).parent.mkdir(exist_ok=True)
    (tiny_base / pickle_at).write_bytes(b"\x80\x04K\x01.")  # pickle of the int 1
    with pytest.raises(ValueError, match="pickle"):
        load_model_and_tokenizer(tiny_base)


@pytest.mark.slow
def test_a_job_on_a_folder_that_gained_a_pickle_fails_clearly(sqlite_client, tiny_base, workers):
    client = sqlite_client
    assert client.post("/v1/models", json={"id": "p", "base_model": str(tiny_base)}).status_code == 201
    (tiny_base / "pytorch_model.bin").write_bytes(b"\x80\x04K\x01.")
    job_id = submit(client, "p", upload(client, records("p")), "p")
    workers(1)
    job = wait_for(client, job_id, timeout=300)
    assert job["status"] == "failed" and job["error"]["code"] == "model_not_loadable", job
    assert "pickle" in job["error"]["message"] and "pytorch_model.bin" in job["error"]["message"]
