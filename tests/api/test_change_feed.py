"""The read cache behind the polled routes: what it keeps, when it lets go, and that it never serves a
read older than the last change it was told of."""

from __future__ import annotations

import os
import signal
import time

import httpx
import psycopg
import pytest

from app.http import change_feed
from app.http.cached_reads import ReadCache
from app.http.change_feed import EVERYTHING, HEARTBEAT_SECONDS, ChangeFeed
from tests.api.helpers import create_job, register, upload_ok
from tests.faults.api_process import ApiProcess


@pytest.fixture
def live_cache() -> ReadCache:
    feed = ChangeFeed()
    feed.live = True
    return ReadCache(feed)


def test_nothing_is_cached_while_the_feed_is_down():
    cache = ReadCache(ChangeFeed())
    cache.put("job:a", None, "queued", cache.feed.stamp())
    assert cache.get("job:a", None) == (False, None)
    assert cache.lookups["bypass"] == 1


def test_a_change_drops_that_job_only(live_cache):
    live_cache.put("job:a", None, "queued", live_cache.feed.stamp())
    live_cache.put("job:b", None, "queued", live_cache.feed.stamp())
    assert live_cache.get("job:a", None) == (True, "queued")
    live_cache.feed.changed("job:a")
    assert live_cache.get("job:a", None) == (False, None)
    assert live_cache.get("job:b", None) == (True, "queued")


def test_a_read_that_a_change_overtook_is_not_kept(live_cache):
    before_read = live_cache.feed.stamp()
    live_cache.feed.changed("job:a")  # committed while the read was on its way back
    live_cache.put("job:a", None, "stale", before_read)
    assert live_cache.get("job:a", None) == (False, None)
    live_cache.put("job:b", None, "fresh", before_read)  # another job's change does not matter
    assert live_cache.get("job:b", None) == (True, "fresh")


def test_a_lost_feed_or_truncated_table_drops_everything(live_cache):
    before = live_cache.feed.stamp()
    live_cache.put("job:a", None, "queued", before)
    live_cache.feed.changed(EVERYTHING)
    assert live_cache.get("job:a", None) == (False, None)
    live_cache.put("job:a", None, "stale", before)  # read before the reset: suspect
    assert live_cache.get("job:a", None) == (False, None)


def test_jobs_whose_changes_were_forgotten_count_as_just_changed(live_cache, monkeypatch):
    monkeypatch.setattr(change_feed, "REMEMBERED_KEYS", 2)
    before_read = live_cache.feed.stamp()
    for key in ("job:a", "job:b", "job:c"):  # job:a's change is pushed out of memory
        live_cache.feed.changed(key)
    live_cache.put("job:a", None, "stale", before_read)
    assert live_cache.get("job:a", None) == (False, None)


def test_event_pages_are_cached_per_query_and_dropped_together(live_cache):
    live_cache.put("events:a", (None, 20, None, "desc"), ["e2", "e1"], live_cache.feed.stamp())
    live_cache.put("events:a", (None, 20, None, "asc"), ["e1", "e2"], live_cache.feed.stamp())
    assert live_cache.get("events:a", (None, 20, None, "asc")) == (True, ["e1", "e2"])
    live_cache.feed.changed("events:a")
    assert live_cache.get("events:a", (None, 20, None, "desc")) == (False, None)


# Against a real `sculpt serve` on PostgreSQL, with rows changed behind its back as a worker would.

def _eventually(read, expected, within: float = 2.0):
    """Notifications arrive within milliseconds; allow for a loaded machine."""
    deadline = time.monotonic() + within
    while (value := read()) != expected and time.monotonic() < deadline:
        time.sleep(0.02)
    return value


def _cache_figures(client: httpx.Client) -> dict[str, float]:
    text = client.get("/metrics").text
    return {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
            if line.startswith(("sculpt_read_cache_lookups_total", "sculpt_change_feed_live"))}


@pytest.fixture
def served_on_postgres(pg_env, tmp_path):
    with ApiProcess(tmp_path / "api.log") as server, httpx.Client(base_url=server.url, timeout=30) as client:
        assert _eventually(lambda: _cache_figures(client).get("sculpt_change_feed_live"), 1.0) == 1.0
        yield client


def _queued_job(client: httpx.Client, base_model_dir) -> str:
    register(client, "m", base_model_dir)
    return create_job(client, "m", upload_ok(client)).json()["id"]


# The API's LISTEN connection, as PostgreSQL sees it (the feed runs no other query on it).
THE_LISTENER = "FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN sculpt_changes'"


def _cached_job(client: httpx.Client, base_model_dir) -> tuple[str, str]:
    """A queued job, polled twice so that the API holds it in memory."""
    job_id = _queued_job(client, base_model_dir)
    job_url = f"/v1/fine_tuning/jobs/{job_id}"
    for _ in range(2):
        assert client.get(job_url).json()["status"] == "queued"
    return job_id, job_url


@pytest.mark.postgres
def test_polled_reads_come_from_memory_and_follow_every_change(served_on_postgres, pg_database_url,
                                                               base_model_dir):
    client = served_on_postgres
    job_id = _queued_job(client, base_model_dir)
    job_url, events_url = f"/v1/fine_tuning/jobs/{job_id}", f"/v1/fine_tuning/jobs/{job_id}/events"
    before = _cache_figures(client)
    for _ in range(5):
        assert client.get(job_url).json()["status"] == "queued"
        assert client.get(events_url).status_code == 200
    after = _cache_figures(client)
    hits = 'sculpt_read_cache_lookups_total{result="hit"}'
    assert after[hits] - before[hits] >= 8, after  # auth, the job and its events, after the first round

    with psycopg.connect(pg_database_url.replace("+psycopg", "")) as db:  # as a worker writes
        db.execute("UPDATE jobs SET status = 'running', phase = 'training' WHERE id = %s", (job_id,))
        db.execute("INSERT INTO job_events (job_id, level, type, message, created_at) "
                   "VALUES (%s, 'info', 'message', 'Phase: training', now())", (job_id,))
    assert _eventually(lambda: client.get(job_url).json()["status"], "running") == "running"
    assert _eventually(lambda: client.get(events_url).json()["data"][0]["message"],
                       "Phase: training") == "Phase: training"


@pytest.mark.postgres
def test_while_the_feed_is_lost_reads_go_to_the_database_and_caching_resumes(served_on_postgres,
                                                                             pg_database_url, base_model_dir):
    client = served_on_postgres
    job_id, job_url = _cached_job(client, base_model_dir)
    with psycopg.connect(pg_database_url.replace("+psycopg", ""), autocommit=True) as db:
        # Cut the API's LISTEN connection, then change the job: no notification can reach the API.
        cut = db.execute(f"SELECT pg_terminate_backend(pid) {THE_LISTENER}").fetchall()
        assert cut == [(True,)]
        db.execute("UPDATE jobs SET status = 'running' WHERE id = %s", (job_id,))
    assert _eventually(lambda: client.get(job_url).json()["status"], "running") == "running"

    # The feed comes back on its own, and reads are cached again.
    assert _eventually(lambda: _cache_figures(client).get("sculpt_change_feed_live"), 1.0) == 1.0
    before = _cache_figures(client)
    for _ in range(3):
        assert client.get(job_url).json()["status"] == "running"
    hits = 'sculpt_read_cache_lookups_total{result="hit"}'
    assert _cache_figures(client)[hits] > before[hits]


@pytest.mark.postgres
def test_a_listener_that_silently_stops_hearing_is_noticed_within_two_heartbeats(served_on_postgres,
                                                                                  pg_database_url, base_model_dir):
    client = served_on_postgres
    job_id, job_url = _cached_job(client, base_model_dir)
    with psycopg.connect(pg_database_url.replace("+psycopg", ""), autocommit=True) as db:
        (listener,) = db.execute(f"SELECT pid {THE_LISTENER}").fetchone()
        try:
            os.kill(listener, signal.SIGSTOP)  # its connection stays open, but nothing reaches the API
        except PermissionError:
            pytest.skip("cannot stop a PostgreSQL server process here (needs root)")
        try:
            db.execute("UPDATE jobs SET status = 'running' WHERE id = %s", (job_id,))
            started = time.monotonic()
            status = _eventually(lambda: client.get(job_url).json()["status"], "running",
                                 within=2 * HEARTBEAT_SECONDS + 5)
            assert status == "running", "a stalled feed kept serving a stale job"
            assert time.monotonic() - started > 0.5, "the change should have had no way to reach the API"
        finally:
            os.kill(listener, signal.SIGCONT)
