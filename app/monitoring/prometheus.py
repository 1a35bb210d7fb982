"""Prometheus metrics: HTTP traffic counted in-process, job and model figures read from the database.

The worker is another process, so job state is not counted as it happens: ``DatabaseCollector``
queries the jobs, job_events, evaluations and models tables at scrape time. Each app gets its own
registry (``Metrics``), so several apps in one process (tests) never clash.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.db.session import new_session
from app.core.db.tables import Evaluation, Job, JobEvent, Model, Task
from app.core.enums import JOB_STATUSES, TERMINAL_STATUSES
from app.http.cached_reads import ReadCache
from app.workers.service import workers_per_queue

JOB_BUCKETS = (10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400)
PHASE_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)


def _histogram(name: str, doc: str, label: str, samples: dict[str, list[float]],
               buckets: tuple[float, ...]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=[label])
    for value, durations in sorted(samples.items()):
        cumulative = [(str(float(b)), sum(1 for d in durations if d <= b)) for b in buckets]
        cumulative.append(("+Inf", len(durations)))
        family.add_metric([value], cumulative, sum_value=sum(durations))
    return family


def phase_durations(started_at, changes: Iterable[tuple[str, object]], finished_at) -> dict[str, float]:
    """Seconds spent in each phase of one attempt: loading from its start to the first phase change,
    each later phase until the next change, the last one until the job finished."""
    durations: dict[str, float] = defaultdict(float)
    phase, since = "loading", started_at
    for next_phase, at in changes:
        durations[phase] += max((at - since).total_seconds(), 0.0)
        phase, since = next_phase, at
    durations[phase] += max((finished_at - since).total_seconds(), 0.0)
    return dict(durations)


class DatabaseCollector(Collector):
    def collect(self) -> Iterator:
        with new_session() as session:
            yield from self._jobs(session)
            yield from self._durations(session)
            yield from self._models(session)
            yield from self._workers(session)

    @staticmethod
    def _workers(session) -> Iterator:
        """Live workers per queue, with a 0 for each queue that jobs wait on and no worker serves."""
        served = workers_per_queue(session)
        waiting = session.scalars(select(Job.queue).where(Job.status == "queued").distinct())
        live = GaugeMetricFamily("sculpt_live_workers", "Live training workers serving each queue", labels=["queue"])
        for queue in sorted(set(served) | set(waiting)):
            live.add_metric([queue], served[queue])
        yield live

    @staticmethod
    def _jobs(session) -> Iterator:
        counts = dict(session.execute(select(Job.status, func.count()).group_by(Job.status)).all())
        by_status = GaugeMetricFamily("sculpt_jobs", "Fine-tuning jobs by status", labels=["status"])
        for status in JOB_STATUSES:
            by_status.add_metric([status], counts.get(status, 0))
        yield by_status

        queued = dict(session.execute(select(Job.model_id, func.count()).where(Job.status == "queued")
                                      .group_by(Job.model_id)).all())
        depth = GaugeMetricFamily("sculpt_queue_depth", "Jobs waiting to run, per lineage", labels=["model"])
        for model_id in session.scalars(select(Model.id).order_by(Model.id)):
            depth.add_metric([model_id], queued.get(model_id, 0))
        yield depth

        tokens = CounterMetricFamily("sculpt_trained_tokens", "Tokens trained by succeeded jobs, per lineage",
                                     labels=["model"])
        for model_id, total in session.execute(select(Job.model_id, func.sum(Job.trained_tokens))
                                               .where(Job.trained_tokens.is_not(None))
                                               .group_by(Job.model_id).order_by(Job.model_id)):
            tokens.add_metric([model_id], float(total or 0))
        yield tokens

    @staticmethod
    def _durations(session) -> Iterator:
        finished = session.execute(select(Job.id, Job.status, Job.started_at, Job.finished_at).where(
            Job.status.in_(TERMINAL_STATUSES), Job.started_at.is_not(None), Job.finished_at.is_not(None))).all()
        by_status: dict[str, list[float]] = defaultdict(list)
        for _id, status, started, ended in finished:
            by_status[status].append(max((ended - started).total_seconds(), 0.0))
        yield _histogram("sculpt_job_duration_seconds", "Run time of finished jobs (last attempt)",
                         "status", by_status, JOB_BUCKETS)

        changes: dict[str, list[tuple[str, object]]] = defaultdict(list)
        # A phase change is the event whose data names the phase; its message is for people.
        phase = JobEvent.data["phase"].as_string()
        for job_id, name, at in session.execute(
                select(JobEvent.job_id, phase, JobEvent.created_at)
                .join(Job, Job.id == JobEvent.job_id)
                .where(Job.status == "succeeded", phase.is_not(None))
                .order_by(JobEvent.id)):
            changes[job_id].append((name, at))
        by_phase: dict[str, list[float]] = defaultdict(list)
        for job_id, status, started, ended in finished:
            if status != "succeeded":
                continue
            attempt = [(p, at) for p, at in changes.get(job_id, []) if at >= started]
            for phase, seconds in phase_durations(started, attempt, ended).items():
                by_phase[phase].append(seconds)
        yield _histogram("sculpt_job_phase_duration_seconds", "Time succeeded jobs spent in each phase",
                         "phase", by_phase, PHASE_BUCKETS)

    @staticmethod
    def _models(session) -> Iterator:
        scores = GaugeMetricFamily("sculpt_head_evaluation_score",
                                   "The head version's score on each task its lineage learned",
                                   labels=["model", "task", "metric"])
        head = GaugeMetricFamily("sculpt_model_head_version", "The head version of each lineage",
                                 labels=["model"])
        rows = session.execute(select(Evaluation.model_id, Evaluation.task_name, Evaluation.metric,
                                      Evaluation.score)
                               .join(Model, (Model.id == Evaluation.model_id)
                                     & (Model.head_version == Evaluation.version))
                               # A score measured before training by a job that then failed is no task's.
                               .where(select(Task.id).where(Task.model_id == Evaluation.model_id,
                                                            Task.name == Evaluation.task_name).exists())
                               .order_by(Evaluation.model_id, Evaluation.task_name))
        for model_id, task, metric, score in rows:
            scores.add_metric([model_id, task, metric], score)
        for model_id, version in session.execute(select(Model.id, Model.head_version).order_by(Model.id)):
            head.add_metric([model_id], version)
        yield scores
        yield head


class ReadCacheCollector(Collector):
    """This process's cached reads (app/cached_reads.py) and whether its change feed is live."""

    def __init__(self, cache: ReadCache) -> None:
        self.cache = cache

    def collect(self) -> Iterator:
        lookups = CounterMetricFamily("sculpt_read_cache_lookups", "Cached API reads by result (bypass: the "
                                      "change feed was down, so the database was read)", labels=["result"])
        for result in ("hit", "miss", "bypass"):
            lookups.add_metric([result], self.cache.lookups[result])
        yield lookups
        yield GaugeMetricFamily("sculpt_change_feed_live", "1 while this process follows PostgreSQL's change "
                                "notifications (reads may be cached), else 0", value=int(self.cache.feed.live))


class Metrics:
    """One app's registry: the database collector, the read cache, HTTP request counts and latencies."""

    def __init__(self, cache: ReadCache) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(DatabaseCollector())
        self.registry.register(ReadCacheCollector(cache))
        self.requests = Counter("sculpt_http_requests", "HTTP requests", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram("sculpt_http_request_duration_seconds", "HTTP request latency",
                                 ["method", "route"], registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def route_template(scope: Scope) -> str:
    """The matched route with its parameters named, e.g. /v1/fine_tuning/jobs/{job_id}: the raw path
    would give every job id its own time series. Derived from what the router left in the scope (path
    parameters; a mount's root_path), which works for routes under any prefix."""
    mount = scope.get("root_path", "").removeprefix(scope.get("app_root_path", ""))
    if mount:  # e.g. /static: whatever file was asked for
        return mount + "/{path}"
    params = scope.get("path_params")
    if params is None:
        return "unmatched"
    names = {str(value): name for name, value in params.items()}
    return "/".join(f"{{{names[part]}}}" if part in names else part for part in scope["path"].split("/"))


class HttpMetricsMiddleware:
    """Counts requests and their latency by method, route template and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = route_template(scope)
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(scope["method"], route).observe(time.perf_counter() - started)
