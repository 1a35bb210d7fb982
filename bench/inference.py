"""Inference through the service against ``generate`` called directly in one process.

    python -m bench.inference [--requests 64] [--max-tokens 32] [--clients 1,8,32]

A tiny model (worker/tiny.py, built in code) is registered as lineage ``bench``. For each number of
concurrent clients:
- direct: that many threads in this process share one model loaded with from_pretrained and each call
  greedy ``model.generate`` on its prompts (what a user's own script would do);
- service: that many asyncio clients POST /v1/completions (greedy, same prompts, same max_tokens) to
  the API (uvicorn in this process, SQLite under a temp SCULPT_HOME), which forwards to an inference
  process (``python -m worker.inference``) of its own.
Reported per path and level: requests, completion tokens/s, p50/p99 request latency in ms, wall time
per request, the service's p50 over direct's at the same concurrency (the target: at most 1.3 at 8
clients), and the service's wall time per request over direct generation one request at a time (the
first level, 1 client). Last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(latencies: list[float], tokens: int, wall: float) -> dict:
    return {"requests": len(latencies), "tokens_per_s": round(tokens / wall, 1),
            "wall_ms_per_request": round(wall / len(latencies) * 1000, 1),
            "p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
            "mean_ms": round(statistics.fmean(latencies) * 1000, 1)}


def prompts(n: int) -> list[str]:
    return [f"alpha {i}:" for i in range(n)]


def direct(folder: Path, clients: int, requests: int, max_tokens: int) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tokenizer = AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)

    def one(prompt: str) -> tuple[float, int]:
        started = time.perf_counter()
        ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=max_tokens,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        new = out[0, ids.shape[1]:]
        return time.perf_counter() - started, int((new != tokenizer.eos_token_id).sum())

    one("warm up")
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(one, prompts(requests)))
    return summary([r[0] for r in results], sum(r[1] for r in results), time.perf_counter() - started)


async def service(url: str, clients: int, requests: int, max_tokens: int) -> dict:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for prompt in prompts(requests):
        queue.put_nowait(prompt)
    latencies, tokens = [], 0

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal tokens
        while not queue.empty():
            prompt = queue.get_nowait()
            started = time.perf_counter()
            response = await http.post("/v1/completions", json={"model": "bench", "prompt": prompt, "temperature": 0,
                                                                 "max_tokens": max_tokens})
            response.raise_for_status()
            latencies.append(time.perf_counter() - started)
            tokens += response.json()["usage"]["completion_tokens"]

    async with httpx.AsyncClient(base_url=url, timeout=300, limits=httpx.Limits(max_connections=None)) as http:
        warm = await http.post("/v1/completions", json={"model": "bench", "prompt": "warm up", "max_tokens": 4})
        warm.raise_for_status()
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
    return summary(latencies, tokens, time.perf_counter() - started)


def start_stack(home: Path, model_dir: Path):
    """The API in a thread of this process and one inference process, on a fresh SQLite home."""
    os.environ.update({"SCULPT_HOME": str(home), "SCULPT_MODEL_ROOTS": str(home.parent),
                       "SCULPT_RATE_LIMIT_PER_MINUTE": "0"})
    import uvicorn

    from app.core.migrate import upgrade_to_head
    from app.main import create_app
    from tests.dashboard.live import free_port

    upgrade_to_head()
    inference = subprocess.Popen([sys.executable, "-m", "worker.inference"], env=os.environ.copy(),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        try:
            httpx.post(f"{url}/v1/models", json={"id": "bench", "base_model": str(model_dir)}, timeout=5)
            if httpx.post(f"{url}/v1/completions", json={"model": "bench", "prompt": "x", "max_tokens": 1},
                          timeout=60).status_code == 200:
                return url, server, inference
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or inference.poll() is not None:
            raise RuntimeError("the inference process did not come up")
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=64, help="requests per level")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads on both paths (OMP_NUM_THREADS); few, on a shared machine")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # before torch loads, here and in the inference process
    levels = [int(c) for c in args.clients.split(",")]

    from worker.tiny import build_tiny_causal_lm

    with tempfile.TemporaryDirectory(prefix="sculpt-bench-inference-") as tmp:
        model_dir = Path(tmp) / "tiny"
        build_tiny_causal_lm(model_dir)
        results: dict = {"model": "worker.tiny causal (hidden 64, 2 layers)", "max_tokens": args.max_tokens,
                         "threads": args.threads, "cpu_count": os.cpu_count(),
                         "load_average": os.getloadavg()[0], "levels": {}}
        count = {c: args.requests if c > 1 else max(1, args.requests // 4) for c in levels}  # one client: fewer
        direct_runs = {c: direct(model_dir, c, count[c], args.max_tokens) for c in levels}
        url, server, inference = start_stack(Path(tmp) / "home", model_dir)
        try:
            for c in levels:
                served = asyncio.run(service(url, c, count[c], args.max_tokens))
                ratio = round(served["p50_ms"] / direct_runs[c]["p50_ms"], 2)
                # What a request costs the machine: wall time per request, against generate one at a time.
                cost = round(served["wall_ms_per_request"] / direct_runs[levels[0]]["wall_ms_per_request"], 2)
                results["levels"][str(c)] = {"direct": direct_runs[c], "service": served,
                                             "service_over_direct_p50": ratio,
                                             "service_cost_over_direct_one_at_a_time": cost}
                print(f"{c:>3} clients  direct {direct_runs[c]}  service {served}", file=sys.stderr)
        finally:
            server.should_exit = True
            inference.terminate()
            inference.wait(30)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
