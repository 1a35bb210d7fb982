"""The API under load in server mode (PostgreSQL + Redis), with a real worker training a tiny model.

    python -m bench.api_load [--seconds 60] [--pollers 200] [--interval 1.0] [--api-workers 2]
                             [--submissions 1000] [--lineages 10] [--max-queued 20] [--run-workers 2]
                             [--no-settle]

1. Polling: one job trains while ``--pollers`` clients each GET the job and then its events, every
   ``--interval`` seconds (0: back to back, a saturation test), for ``--seconds``. Reported per
   route: requests/s, p50/p99/max latency in ms as the client saw it, and errors (any non-200 or
   transport error; must be 0).
2. Burst: ``--submissions`` job creations at once (``--concurrency`` in flight) over ``--lineages``
   lineages, with SCULPT_MAX_QUEUED_JOBS = ``--max-queued``: accepted vs refused, by status and code.
3. Settle (unless ``--no-settle``): ``--run-workers`` workers run every accepted job; each must end
   in a terminal state and every lineage's versions must form one chain.

Everything is private and local: a fresh PostgreSQL database (dropped afterwards), a redis-server of
its own on a free port, a temp SCULPT_HOME, the API on 127.0.0.1 with rate limiting off. The client
runs on the same machine as the API, the worker and PostgreSQL. Last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Self

import httpx
import psycopg

from app.core.enums import TERMINAL_STATUSES

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
# A deployment trains on its own GPU machine; on a shared CPU box the worker yields to the API instead.
WORKER_NICENESS = 10
ROUTES = {"job": "/v1/fine_tuning/jobs/{id}", "events": "/v1/fine_tuning/jobs/{id}/events"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{what} did not come up in {timeout}s")


def jsonl(task: str, n: int) -> bytes:
    return "".join(json.dumps({"prompt": f"{task} {i}:", "completion": f" {task[0]}{i % 3}"}) + "\n"
                   for i in range(n)).encode()


class Stack:
    """PostgreSQL database, redis-server, API processes and workers of this run; all removed on exit."""

    def __init__(self, api_workers: int, max_queued: int) -> None:
        self.api_workers, self.max_queued = api_workers, max_queued
        self.processes: list[subprocess.Popen] = []
        self.workers: list[subprocess.Popen] = []

    def __enter__(self) -> Self:
        self.tmp = Path(tempfile.mkdtemp(prefix="sculpt-api-load-"))
        self.database = f"sculpt_bench_{secrets.token_hex(4)}"
        try:
            self._start()
        except BaseException:  # a stack that failed to come up is removed too: its database first of all
            self.__exit__()
            raise
        return self

    def _start(self) -> None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{self.database}"')
        redis_port = free_port()
        redis = self._spawn(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], "redis")
        wait_until_up(f"redis://127.0.0.1:{redis_port}", redis, "redis-server")
        self.env = {**os.environ, "SCULPT_HOME": str(self.tmp / "home"), "SCULPT_MODEL_ROOTS": str(self.tmp),
                    "SCULPT_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{self.database}",
                    "SCULPT_BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
                    "SCULPT_RATE_LIMIT_PER_MINUTE": "0", "SCULPT_MAX_QUEUED_JOBS": str(self.max_queued)}
        subprocess.run([sys.executable, "-m", "app.cli.main", "migrate"], env=self.env, check=True,
                       stdout=subprocess.DEVNULL)
        self.base = self.tmp / "tiny-base"
        subprocess.run([sys.executable, "-m", "worker.tiny", str(self.base)], env=self.env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        # The keep-alive outlasts a poller's pause, so an idle connection is never closed just as a
        # request goes out on it (uvicorn's default is 5 s).
        self.api = self._spawn([sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory", "--host",
                                "127.0.0.1", "--port", str(port), "--workers", str(self.api_workers),
                                "--timeout-keep-alive", "75", "--no-access-log", "--log-level", "warning"], "api")
        wait_until_up(self.url, self.api, "the API")

    def _spawn(self, command: list[str], name: str) -> subprocess.Popen:
        with open(self.tmp / f"{name}.log", "ab") as log:  # the child keeps its own copy of the descriptor
            process = subprocess.Popen(command, env=getattr(self, "env", None), stdout=log,
                                       stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def start_worker(self) -> None:
        name = f"w{len(self.workers)}"
        self.workers.append(self._spawn(
            ["nice", "-n", str(WORKER_NICENESS), sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker",
             "--pool", "solo", "--concurrency", "1", "--queues", "default", "--hostname", f"{name}@%h",
             "--loglevel", "WARNING"],
            f"worker-{name}"))

    def cpu_seconds(self) -> dict[str, float]:
        """CPU used so far by this client, the API processes and the workers: what the run cost whatever
        else the machine was doing."""
        return {"client": time.process_time(), "api": cpu_seconds(self.api.pid),
                "workers": sum(cpu_seconds(w.pid) for w in self.workers)}

    def __exit__(self, *_exc) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        shutil.rmtree(self.tmp, ignore_errors=True)


def _parent_and_cpu(pid: int) -> tuple[int, float]:
    # /proc/<pid>/stat after the command's ")": state, ppid, ..., utime (11th), stime (12th) in ticks.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(root: int) -> float:
    """CPU time used so far by a process and all its descendants that are alive (Linux /proc)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                table[int(entry.name)] = _parent_and_cpu(int(entry.name))
            except (OSError, IndexError):
                continue  # exited meanwhile
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, (ppid, _) in table.items() if ppid == parent]
        tree.update(children)
        frontier.extend(children)
    return sum(table[pid][1] for pid in tree if pid in table)


def note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile_ms(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)


def create_job(client: httpx.Client, model: str, file_id: str, task: str, epochs: int = 1) -> str:
    response = client.post("/v1/fine_tuning/jobs", json={
        "model": model, "training_file": file_id, "hyperparameters": {"n_epochs": epochs, "batch_size": 4},
        "continual": {"task": task, "learning_rate": 3e-3}})
    response.raise_for_status()
    return response.json()["id"]


def wait_for_job(client: httpx.Client, job_id: str, until, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/fine_tuning/jobs/{job_id}").json()
        if until(job):
            return job
        time.sleep(0.5)
    raise RuntimeError(f"job {job_id} did not get there in {timeout}s")


class Connection:
    """One keep-alive HTTP/1.1 connection speaking just enough of the protocol to time GETs.

    The pollers' client must cost far less than the server it measures, as wrk's does: httpx's
    async client spent more CPU per request than the API on these shared cores.
    """

    def __init__(self, url: str) -> None:
        self.host, self.port = url.split("//", 1)[1].split(":")
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, int(self.port))
        try:
            self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
            head = await self.reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            lengths = [int(line.split(b":", 1)[1]) for line in head.lower().split(b"\r\n")
                       if line.startswith(b"content-length:")]
            if not lengths:
                raise ValueError("response without Content-Length")
            await self.reader.readexactly(lengths[0])
            return status
        except BaseException:
            self.close()  # a connection in an unknown state is not reused
            raise

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


async def poll(url: str, job_id: str, pollers: int, seconds: float, interval: float) -> dict:
    latencies: dict[str, list[float]] = {route: [] for route in ROUTES}
    errors: Counter[str] = Counter()
    stop = time.monotonic() + seconds

    async def poller() -> None:
        connection = Connection(url)
        await asyncio.sleep(random.uniform(0, interval or 0.05))  # spread the first requests
        while time.monotonic() < stop:
            for route, path in ROUTES.items():
                started = time.perf_counter()
                try:
                    status = await asyncio.wait_for(connection.get(path.format(id=job_id)), 30)
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:  # TimeoutError is an OSError
                    errors[f"{route}: {type(exc).__name__}"] += 1
                    continue
                latencies[route].append(time.perf_counter() - started)
                if status != 200:
                    errors[f"{route}: HTTP {status}"] += 1
            if interval:
                await asyncio.sleep(interval)
        connection.close()

    started = time.monotonic()
    await asyncio.gather(*(poller() for _ in range(pollers)))
    elapsed = time.monotonic() - started
    total = sum(len(v) for v in latencies.values())
    return {"seconds": round(elapsed, 1), "requests": total, "requests_per_second": round(total / elapsed, 1),
            "errors": sum(errors.values()), "error_kinds": dict(errors),
            "routes": {ROUTES[route]: {"requests": len(values), "p50_ms": percentile_ms(values, 0.50),
                                       "p99_ms": percentile_ms(values, 0.99),
                                       "max_ms": percentile_ms(values, 1.0)}
                       for route, values in latencies.items()}}


async def burst(url: str, file_id: str, lineages: list[str], count: int, concurrency: int) -> dict:
    accepted: dict[str, list[str]] = {lineage: [] for lineage in lineages}
    outcomes: Counter[str] = Counter()
    examples: dict[str, str] = {}
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def submit(i: int) -> None:
            lineage = lineages[i % len(lineages)]
            body = {"model": lineage, "training_file": file_id, "hyperparameters": {"n_epochs": 1, "batch_size": 4},
                    "continual": {"task": f"b{i}", "learning_rate": 3e-3}}
            async with gate:
                started = time.perf_counter()
                try:
                    response = await client.post("/v1/fine_tuning/jobs", json=body)
                except httpx.HTTPError as exc:
                    outcomes[f"transport error {type(exc).__name__}"] += 1
                    return
                latencies.append(time.perf_counter() - started)
            if response.status_code == 201:
                accepted[lineage].append(response.json()["id"])
                outcomes["201 accepted"] += 1
                return
            error = response.json().get("error", {})
            kind = f"{response.status_code} {error.get('code')}"
            outcomes[kind] += 1
            examples.setdefault(kind, f"{error.get('message')} (Retry-After: {response.headers.get('retry-after')})")

        started = time.monotonic()
        await asyncio.gather(*(submit(i) for i in range(count)))
        elapsed = time.monotonic() - started
    clear = all(k.startswith(("201", "429", "503")) for k in outcomes)
    return {"submissions": count, "seconds": round(elapsed, 1), "per_second": round(count / elapsed, 1),
            "p50_ms": percentile_ms(latencies, 0.5), "p99_ms": percentile_ms(latencies, 0.99),
            "outcomes": dict(outcomes), "refusal_messages": examples, "only_201_429_503": clear,
            "accepted": accepted}


def settle(client: httpx.Client, accepted: dict[str, list[str]], timeout: float) -> dict:
    pending = {job_id for ids in accepted.values() for job_id in ids}
    statuses: dict[str, str] = {}
    started = time.monotonic()
    while pending and time.monotonic() - started < timeout:
        for job_id in sorted(pending):
            status = client.get(f"/v1/fine_tuning/jobs/{job_id}").json()["status"]
            if status in TERMINAL_STATUSES:
                statuses[job_id] = status
                pending.discard(job_id)
        time.sleep(2)
    chains = {}
    for lineage, ids in accepted.items():
        versions = client.get(f"/v1/models/{lineage}/versions?limit=100").json()["data"]
        parents = {v["version"]: v["parent_version"] for v in versions}
        succeeded = sum(statuses.get(job_id) == "succeeded" for job_id in ids)
        chains[lineage] = parents == {1: None, **{n: n - 1 for n in range(2, succeeded + 2)}}
    return {"jobs": sum(len(ids) for ids in accepted.values()), "seconds": round(time.monotonic() - started, 1),
            "not_terminal": len(pending), "statuses": dict(Counter(statuses.values())),
            "every_lineage_one_chain": all(chains.values()), "chains": chains}


def run(args: argparse.Namespace) -> dict:
    result: dict = {"command": "python -m bench.api_load " + " ".join(sys.argv[1:]),
                    "config": {k: v for k, v in vars(args).items()}, "cpus": os.cpu_count()}
    with Stack(args.api_workers, args.max_queued) as stack, httpx.Client(base_url=stack.url, timeout=60) as client:
        lineages = [f"lineage-{i}" for i in range(args.lineages)]
        for model in ["polled", *lineages]:
            client.post("/v1/models", json={"id": model, "base_model": str(stack.base)}).raise_for_status()
        upload = client.post("/v1/files", data={"purpose": "fine-tune"},
                             files={"file": ("t.jsonl", jsonl("load", 400), "application/jsonl")})
        upload.raise_for_status()
        long_file = upload.json()["id"]
        stack.start_worker()
        note(f"API up at {stack.url} ({args.api_workers} processes); waiting for the polled job to train")
        # Long enough to outlast the polling phase; cancelled afterwards.
        polled = create_job(client, "polled", long_file, "long", epochs=100)
        before = wait_for_job(client, polled, lambda j: (j["progress"] or {}).get("phase") == "training", 300)
        note(f"polling with {args.pollers} clients for {args.seconds:.0f} s")
        cpu_before = stack.cpu_seconds()
        result["polling"] = asyncio.run(poll(stack.url, polled, args.pollers, args.seconds, args.interval))
        result["polling"]["cpu_seconds"] = {name: round(after - cpu_before[name], 1)
                                            for name, after in stack.cpu_seconds().items()}
        result["polling"]["load_average_1m"] = os.getloadavg()[0]
        during = client.get(f"/v1/fine_tuning/jobs/{polled}").json()
        result["polling"]["job_during_polling"] = {
            "status": during["status"], "steps_before": before["progress"]["step"],
            "steps_after": during["progress"]["step"]}
        client.post(f"/v1/fine_tuning/jobs/{polled}/cancel")
        wait_for_job(client, polled, lambda j: j["status"] in TERMINAL_STATUSES, 120)

        short = client.post("/v1/files", data={"purpose": "fine-tune"},
                            files={"file": ("s.jsonl", jsonl("burst", 12), "application/jsonl")})
        short.raise_for_status()
        note(f"burst of {args.submissions} submissions")
        burst_result = asyncio.run(burst(stack.url, short.json()["id"], lineages, args.submissions,
                                         args.concurrency))
        accepted = burst_result.pop("accepted")
        result["burst"] = burst_result
        if not args.no_settle:
            for _ in range(args.run_workers - 1):
                stack.start_worker()
            note(f"running the {sum(map(len, accepted.values()))} accepted jobs on {args.run_workers} workers")
            result["settle"] = settle(client, accepted, args.settle_timeout)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the polling phase")
    parser.add_argument("--pollers", type=int, default=200)
    parser.add_argument("--interval", type=float, default=1.0, help="pause between a poller's rounds; 0: none")
    parser.add_argument("--api-workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--submissions", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50, help="submissions in flight at once")
    parser.add_argument("--lineages", type=int, default=10)
    parser.add_argument("--max-queued", type=int, default=20, help="SCULPT_MAX_QUEUED_JOBS for the run")
    parser.add_argument("--run-workers", type=int, default=2, help="workers that run the accepted jobs")
    parser.add_argument("--settle-timeout", type=float, default=1800.0)
    parser.add_argument("--no-settle", action="store_true", help="skip running the accepted jobs")
    result = run(parser.parse_args(argv))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
