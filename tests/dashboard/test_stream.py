"""The job event stream: follows a real worker's job live to its terminal event, resumes with
Last-Event-ID, and answers bad requests with ordinary JSON errors."""

from __future__ import annotations

import time

import httpx

from app.cli.sse import parse_sse
from tests.worker.harness import records, submit, upload

STREAM = "/v1/fine_tuning/jobs/{}/events/stream"


def _follow(url: str, job_id: str, **headers) -> tuple[list, list[str], list[float]]:
    """(events, raw lines, arrival time of each event) of one whole stream."""
    lines: list[str] = []
    with httpx.stream("GET", url + STREAM.format(job_id), headers=headers, timeout=120) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        events, arrivals = [], []
        for event in parse_sse(_recording(response.iter_lines(), lines)):
            events.append(event)
            arrivals.append(time.monotonic())
    return events, lines, arrivals


def _recording(source, sink: list[str]):
    for line in source:
        sink.append(line)
        yield line


def test_stream_follows_a_job_live_to_its_terminal_event_and_resumes(sqlite_client, live_url, tiny_base, workers):
    client = sqlite_client
    client.post("/v1/models", json={"id": "bot", "base_model": str(tiny_base)})
    job_id = submit(client, "bot", upload(client, records("alpha")), "alpha")
    # A tiny model can train between two of the worker's once-a-second progress writes: held at the
    # start of training for a few seconds, the job is seen training whatever the machine's speed.
    workers(1, SCULPT_FAULT_PAUSE_AT="training", SCULPT_FAULT_PAUSE_SECONDS="3")

    events, lines, arrivals = _follow(live_url, job_id)

    logged = [e for e in events if e.event != "progress"]
    stored = client.get(f"/v1/fine_tuning/jobs/{job_id}/events",
                        params={"order": "asc", "limit": 100}).json()["data"]
    assert [e.id for e in logged] == [e["id"] for e in stored]  # every event, oldest first, once
    assert [e.data["message"] for e in logged] == [e["message"] for e in stored]
    assert {e.event for e in logged} == {"message", "metrics"}
    assert all(e.event == e.data["type"] for e in logged)
    assert f"id: {stored[0]['id']}" in lines

    progress = [e.data for e in events if e.event == "progress"]
    assert progress[0]["status"] in ("queued", "running")
    assert any(p["status"] == "running" and p["progress"]["phase"] == "training"
               and (p["progress"]["fraction"] or 0) < 1 for p in progress)
    assert progress[-1]["status"] == "succeeded" and progress[-1]["fine_tuned_model"] == "bot:v2"
    assert logged[-1].data["message"] == "The job has successfully completed"
    assert arrivals[-1] - arrivals[0] > 1.0  # delivered as they happened, not in one lump at the end

    resume_from = logged[2].id
    again, _, _ = _follow(live_url, job_id, **{"Last-Event-ID": resume_from})
    assert [e.id for e in again if e.event != "progress"] == [e.id for e in logged[3:]]
    assert [e.data["status"] for e in again if e.event == "progress"] == ["succeeded"]


def test_stream_of_a_job_cancelled_before_it_ran_ends_at_once(client, base_model_dir):
    client.post("/v1/models", json={"id": "bot", "base_model": str(base_model_dir)})
    job_id = submit(client, "bot", upload(client, records("alpha")), "alpha")
    assert client.post(f"/v1/fine_tuning/jobs/{job_id}/cancel").json()["status"] == "cancelled"

    response = client.get(STREAM.format(job_id))
    events = list(parse_sse(response.text.splitlines()))
    # Created; no live worker serves its queue (none runs here), said at once; cancelled; the end.
    assert [e.event for e in events] == ["message", "message", "message", "progress"]
    assert "queue default has no live worker" in events[1].data["message"]
    assert events[-1].data["status"] == "cancelled"

    after = client.get(STREAM.format(job_id), params={"after": events[0].id})
    assert [e.id for e in parse_sse(after.text.splitlines())][:1] == [events[1].id]


def test_stream_errors_are_json(sqlite_client, tiny_base):
    missing = sqlite_client.get(STREAM.format("ftjob-nope"))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "job_not_found"
    bad = sqlite_client.get(STREAM.format("ftjob-nope"), headers={"Last-Event-ID": "zzz"})
    assert bad.status_code == 422 and "event id" in bad.json()["error"]["message"]


def test_stream_needs_a_key_once_keys_exist(sqlite_client):
    from app.core.db.session import new_session
    from app.keys.service import create_key

    with new_session() as session:
        create_key(session, "ops")
    response = sqlite_client.get(STREAM.format("ftjob-any"))
    assert response.status_code == 401 and response.json()["error"]["type"] == "authentication_error"


def test_a_database_outage_ends_the_stream_with_an_error_event(sqlite_client, tiny_base, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from app.jobs import stream as job_stream

    client = sqlite_client
    client.post("/v1/models", json={"id": "bot", "base_model": str(tiny_base)})
    job_id = submit(client, "bot", upload(client, records("alpha")), "alpha")
    real_read, calls = job_stream._read, []

    def read_then_fail(*args):
        calls.append(args)
        if len(calls) > 1:
            raise OperationalError("SELECT", {}, Exception("connection refused"))
        return real_read(*args)

    monkeypatch.setattr(job_stream, "_read", read_then_fail)
    response = client.get(STREAM.format(job_id))
    events = list(parse_sse(response.text.splitlines()))
    # Created, and waiting for a live worker (none runs here): the events of the first read.
    assert [e.event for e in events] == ["message", "message", "progress", "error"]
    assert "Last-Event-ID" in events[-1].data["message"] and "Traceback" not in response.text
