"""/metrics: Prometheus text with job, phase, token, evaluation and HTTP figures read at scrape time."""

from __future__ import annotations

from datetime import datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from app.monitoring.prometheus import phase_durations
from tests.worker.harness import records, submit, upload, wait_for


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def value(samples, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_metrics_follow_a_real_job(sqlite_client, tiny_base, workers):
    client = sqlite_client
    client.post("/v1/models", json={"id": "bot", "base_model": str(tiny_base)})
    before = scrape(client)
    assert value(before, "sculpt_jobs", status="queued") == 0
    assert value(before, "sculpt_queue_depth", model="bot") == 0
    assert value(before, "sculpt_model_head_version", model="bot") == 1
    assert value(before, "sculpt_job_duration_seconds_count", status="succeeded") is None

    job_id = submit(client, "bot", upload(client, records("alpha")), "alpha")
    queued = scrape(client)
    assert value(queued, "sculpt_jobs", status="queued") == 1
    assert value(queued, "sculpt_queue_depth", model="bot") == 1

    workers(1)
    job = wait_for(client, job_id)
    assert job["status"] == "succeeded", job
    after = scrape(client)
    assert value(after, "sculpt_jobs", status="queued") == 0 and value(after, "sculpt_jobs", status="succeeded") == 1
    assert value(after, "sculpt_queue_depth", model="bot") == 0
    assert value(after, "sculpt_trained_tokens_total", model="bot") == job["trained_tokens"] > 0
    assert value(after, "sculpt_job_duration_seconds_count", status="succeeded") == 1
    assert value(after, "sculpt_job_duration_seconds_sum", status="succeeded") > 0
    assert value(after, "sculpt_model_head_version", model="bot") == 2
    score = job["result"]["scores"]["alpha"]
    assert value(after, "sculpt_head_evaluation_score", model="bot", task="alpha", metric="exact_match") == (
        score["score"] if isinstance(score, dict) else score)
    phases = {labels[0][1] for name, labels in after if name == "sculpt_job_phase_duration_seconds_count"}
    assert phases == {"loading", "evaluating_base", "calibrating", "decomposing", "training", "evaluating", "saving"}
    total = sum(v for (name, _), v in after.items() if name == "sculpt_job_phase_duration_seconds_sum")
    assert 0 < total <= value(after, "sculpt_job_duration_seconds_sum", status="succeeded") + 1


def test_http_requests_are_counted_by_route_template(sqlite_client):
    sqlite_client.get("/v1/fine_tuning/jobs/ftjob-a")
    sqlite_client.get("/v1/fine_tuning/jobs/ftjob-b")
    sqlite_client.get("/static/missing-1.js")
    sqlite_client.get("/nowhere")
    samples = scrape(sqlite_client)
    route = "/v1/fine_tuning/jobs/{job_id}"
    assert value(samples, "sculpt_http_requests_total", method="GET", route=route, status="404") == 2
    assert value(samples, "sculpt_http_request_duration_seconds_count", method="GET", route=route) == 2
    assert value(samples, "sculpt_http_requests_total", method="GET", route="/static/{path}", status="404") == 1
    assert value(samples, "sculpt_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert not any("ftjob-a" in str(labels) or "missing-1" in str(labels) for _, labels in samples)


def test_metrics_need_a_key_once_keys_exist(sqlite_client):
    from app.core.db.session import new_session
    from app.keys.service import create_key

    with new_session() as session:
        secret = create_key(session, "prometheus")
    assert sqlite_client.get("/metrics").status_code == 401
    response = sqlite_client.get("/metrics", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200 and "sculpt_jobs" in response.text


def test_phase_durations_split_an_attempt_at_each_phase_change():
    start = datetime(2026, 1, 1)
    at = [start + timedelta(seconds=s) for s in (2, 5, 9)]
    assert phase_durations(start, [("calibrating", at[0]), ("training", at[1]), ("saving", at[2])],
                           start + timedelta(seconds=10)) == {
        "loading": 2.0, "calibrating": 3.0, "training": 4.0, "saving": 1.0}


def test_the_grafana_dashboard_queries_only_metrics_we_export(sqlite_client):
    import json
    import re
    from pathlib import Path

    families = text_string_to_metric_families(sqlite_client.get("/metrics").text)
    exported = {family.name + suffix for family in families for suffix in ("", "_total", "_sum", "_count", "_bucket")}
    dashboard = json.loads((Path(__file__).parents[2] / "deploy" / "grafana-dashboard.json").read_text())
    queried = {name for panel in dashboard["panels"] for target in panel["targets"]
               for name in re.findall(r"sculpt_\w+", target["expr"])}
    assert len(queried) >= 8 and queried <= exported, queried - exported


def test_the_collector_queries_run_on_both_backends(client, base_model_dir):
    from tests.api.helpers import create_job, register, upload_ok

    register(client, "bot", base_model_dir)
    assert create_job(client, "bot", upload_ok(client)).status_code == 201
    samples = scrape(client)
    assert value(samples, "sculpt_jobs", status="queued") == 1
    assert value(samples, "sculpt_queue_depth", model="bot") == 1
    assert value(samples, "sculpt_model_head_version", model="bot") == 1


def test_phase_metrics_read_the_phase_from_the_event_data_not_its_wording(client, base_model_dir):
    from sqlalchemy import update

    from app.core.db.session import session_scope
    from app.core.db.tables import Job, JobEvent
    from tests.api.helpers import create_job, register, upload_ok

    register(client, "bot", base_model_dir)
    job_id = create_job(client, "bot", upload_ok(client)).json()["id"]
    start = datetime(2026, 1, 1)
    with session_scope() as session:
        session.execute(update(Job).where(Job.id == job_id).values(
            status="succeeded", started_at=start, finished_at=start + timedelta(seconds=10)))
        # The wording of a phase change is for people and may change; its data names the phase.
        session.add(JobEvent(job_id=job_id, message="Now training", data={"phase": "training"},
                             created_at=start + timedelta(seconds=4)))
        session.add(JobEvent(job_id=job_id, message="Phase: which is not a phase change", data=None,
                             created_at=start + timedelta(seconds=6)))
    samples = scrape(client)
    assert value(samples, "sculpt_job_phase_duration_seconds_sum", phase="loading") == 4.0
    assert value(samples, "sculpt_job_phase_duration_seconds_sum", phase="training") == 6.0
    assert value(samples, "sculpt_job_phase_duration_seconds_count", phase="which is not a phase change") is None
