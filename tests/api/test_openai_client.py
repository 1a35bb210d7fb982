"""The official openai package, pointed at the app, speaks to Sculpt unchanged."""

from __future__ import annotations

import io

import openai
import pytest

from tests.api.helpers import PROMPT_RECORDS, jsonl, register


@pytest.fixture
def openai_client(client):
    # FastAPI's TestClient is an httpx.Client on the ASGI app, so the official client can use it as is.
    return openai.OpenAI(base_url=f"{client.base_url}/v1", api_key="unused-when-open", http_client=client,
                         max_retries=0)


def test_openai_client_round_trip(openai_client, client, base_model_dir):
    register(client, "support-bot", base_model_dir)
    uploaded = openai_client.files.create(file=("task.jsonl", io.BytesIO(jsonl(PROMPT_RECORDS))),
                                          purpose="fine-tune")
    assert uploaded.id.startswith("file-") and uploaded.status == "processed"
    assert openai_client.files.retrieve(uploaded.id).bytes == uploaded.bytes
    assert [f.id for f in openai_client.files.list()] == [uploaded.id]

    job = openai_client.fine_tuning.jobs.create(model="support-bot", training_file=uploaded.id, suffix="adds",
                                                seed=3, hyperparameters={"n_epochs": 2},
                                                extra_body={"continual": {"strategy": "adaptive_svd"}})
    assert job.status == "queued" and job.model == "support-bot" and job.seed == 3
    assert job.hyperparameters.n_epochs == 2 and job.hyperparameters.batch_size == "auto"
    assert isinstance(job.created_at, int)

    listed = openai_client.fine_tuning.jobs.list(limit=10)
    assert [j.id for j in listed.data] == [job.id] and listed.has_more is False
    tagged = openai_client.fine_tuning.jobs.create(model="support-bot", training_file=uploaded.id, suffix="tagged",
                                                   metadata={"pipeline": "nightly"})
    assert [j.id for j in openai_client.fine_tuning.jobs.list(metadata={"pipeline": "nightly"})] == [tagged.id]
    assert [j.id for j in openai_client.fine_tuning.jobs.list(limit=1)] == [tagged.id, job.id]  # auto-paging

    events = openai_client.fine_tuning.jobs.list_events(job.id, limit=5)
    assert events.data and events.data[0].object == "fine_tuning.job.event"
    assert events.data[-1].message == f"Created fine-tuning job: {job.id}"

    fetched = openai_client.fine_tuning.jobs.retrieve(job.id)
    assert fetched.id == job.id and fetched.training_file == uploaded.id
    cancelled = openai_client.fine_tuning.jobs.cancel(job.id)
    assert cancelled.status == "cancelled" and isinstance(cancelled.finished_at, int)
    assert list(openai_client.fine_tuning.jobs.checkpoints.list(job.id)) == []

    models = openai_client.models.list()
    assert [m.id for m in models] == ["support-bot", "support-bot:v1"]  # the lineage, then its versions
    assert openai_client.models.retrieve("support-bot").owned_by == "sculpt"


def test_openai_client_raises_typed_errors(openai_client, client):
    with pytest.raises(openai.NotFoundError) as missing:
        openai_client.fine_tuning.jobs.retrieve("ftjob-nope")
    assert missing.value.code == "job_not_found"
    with pytest.raises(openai.UnprocessableEntityError) as bad:
        openai_client.files.create(file=("bad.jsonl", io.BytesIO(b"nope\n")), purpose="fine-tune")
    assert "line 1" in bad.value.message


def test_openai_method_form_carries_the_hyperparameters(openai_client, client, base_model_dir):
    register(client, "method-bot", base_model_dir)
    uploaded = openai_client.files.create(file=("t.jsonl", io.BytesIO(jsonl(PROMPT_RECORDS))), purpose="fine-tune")
    job = openai_client.fine_tuning.jobs.create(
        model="method-bot", training_file=uploaded.id, integrations=[],
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 4, "batch_size": 2}}})
    assert job.hyperparameters.n_epochs == 4 and job.hyperparameters.batch_size == 2
    with pytest.raises(openai.UnprocessableEntityError) as dpo:
        openai_client.fine_tuning.jobs.create(model="method-bot", training_file=uploaded.id,
                                              method={"type": "dpo", "dpo": {}})
    assert "supervised" in dpo.value.message
    with pytest.raises(openai.UnprocessableEntityError):
        openai_client.fine_tuning.jobs.create(
            model="method-bot", training_file=uploaded.id, hyperparameters={"n_epochs": 1},
            method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}})
