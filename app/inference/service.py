"""Inference requests: validate, resolve the version, pick an inference process, forward, and turn its
events into OpenAI's objects or server-sent events.

The API holds no model: it forwards over HTTP to inference processes that registered themselves in
``inference_servers`` (see worker/inference/server.py and README "Inference"). A process that is
unreachable is skipped for the next; one that dies while answering ends the request with a 503 (or, once
a stream has begun, an error event), never a hang: a broken connection shows at once, and a silent
process is given up after ``inference_timeout_seconds``.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.db.tables import InferenceServer, Model, ModelVersion, utcnow
from app.core.errors import ApiError, NotFound, ServiceUnavailable
from app.core.ids import DB_INT_MAX, ascii_number
from app.core.inference_wire import GenerateRequest
from app.core.settings import get_settings
from app.inference.presenters import Reply, usage
from app.inference.schemas import ChatCompletionRequest, CompletionRequest
from app.jobs.service import fine_tuned_model_name
from app.lineages.service import checkpoint_present

# Beats an inference process may miss before the API counts it as gone.
MISSED_BEATS = 3


def parse_request(schema: type[ChatCompletionRequest | CompletionRequest], body: object):
    """The body as ``schema``, or a 400 naming the first parameter that is unsupported or invalid."""
    if not isinstance(body, dict):
        raise ApiError("The request body must be a JSON object", code="invalid_request")
    unknown = sorted(set(body) - set(schema.model_fields))
    if unknown:
        raise ApiError(f"Unsupported parameter{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}. "
                       f"Supported: {', '.join(sorted(schema.model_fields))}", param=unknown[0],
                       code="unsupported_parameter")
    try:
        return schema.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        param = ".".join(str(part) for part in error["loc"]) or None
        raise ApiError(f"{param}: {error['msg']}", param=param, code="invalid_value") from None


@dataclass(frozen=True)
class Plan:
    """A validated request, resolved to a version and the processes that may serve it."""

    reply: Reply
    payload: GenerateRequest  # the body of the inference process's POST /generate
    servers: list[tuple[str, str]]  # (url, the token it requires)
    n: int
    stream: bool
    include_usage: bool


def resolve(session: Session, name: str) -> ModelVersion:
    """``lineage`` (its head), ``lineage:vN`` or ``lineage@previous`` (the head's parent) to a version
    that still has its checkpoint; anything else is OpenAI's 404."""
    lineage, at, alias = name.partition("@")
    wanted: int | None = None
    if not at and ":v" in name:
        lineage, _, number = name.rpartition(":v")
        wanted = ascii_number(number)
        if wanted is None or wanted > DB_INT_MAX:
            raise _no_model(name)
    model = session.get(Model, lineage)
    if model is None or model.deleted_at is not None or (at and alias != "previous"):
        raise _no_model(name)
    if wanted is None:
        wanted = model.head_version
    row = session.scalar(select(ModelVersion).where(ModelVersion.model_id == lineage, ModelVersion.version == wanted))
    if at and row is not None:
        if row.parent_version is None:
            raise NotFound(f"The model '{name}' does not exist: the head of '{lineage}' has no parent version",
                           param="model", code="model_not_found")
        row = session.scalar(select(ModelVersion).where(ModelVersion.model_id == lineage,
                                                        ModelVersion.version == row.parent_version))
    if row is None:
        raise _no_model(name)
    if not checkpoint_present(row):
        raise NotFound(f"The model '{name}' cannot serve: its checkpoint was deleted", param="model",
                       code="model_not_found")
    return row


def _no_model(name: str) -> NotFound:
    return NotFound(f"The model '{name}' does not exist", param="model", code="model_not_found")


def live_servers(session: Session, name: str) -> list[tuple[str, str]]:
    """(URL, token) of the inference processes whose heartbeat is current: those already holding ``name``
    first, the rest in random order to spread the load."""
    settings = get_settings()
    since = utcnow() - timedelta(seconds=settings.inference_heartbeat_seconds * MISSED_BEATS)
    rows = list(session.scalars(select(InferenceServer).where(InferenceServer.heartbeat_at >= since)))
    random.shuffle(rows)
    return [(row.url, row.token) for row in sorted(rows, key=lambda row: name not in (row.loaded or []))]


def plan(session: Session, chat: bool, body: object) -> Plan:
    settings = get_settings()
    request = parse_request(ChatCompletionRequest if chat else CompletionRequest, body)
    max_tokens = (request.max_completion_tokens if chat else None) or request.max_tokens
    if max_tokens is not None and max_tokens > settings.inference_max_tokens:
        raise ApiError(f"max_tokens: at most {settings.inference_max_tokens}", param="max_tokens",
                       code="invalid_value")
    if request.n > settings.inference_max_n:
        raise ApiError(f"n: at most {settings.inference_max_n}", param="n", code="invalid_value")
    stops = request.stops()
    if len(stops) > 4 or not all(stops):
        raise ApiError("stop: up to 4 non-empty sequences", param="stop", code="invalid_value")
    if not chat:
        prompts = [request.prompt] if isinstance(request.prompt, str) else request.prompt
        if len(prompts) != 1:
            raise ApiError("prompt: one prompt per request (use n for several answers)", param="prompt",
                           code="invalid_value")
    row = resolve(session, request.model)
    name = fine_tuned_model_name(row.model_id, row.version)
    payload: GenerateRequest = {
        "name": name, "checkpoint_uri": row.checkpoint_uri, "checkpoint_sha256": row.checkpoint_sha256,
        "max_tokens": max_tokens or min(settings.inference_default_max_tokens, settings.inference_max_tokens),
        "temperature": request.temperature, "top_p": request.top_p, "stop": stops, "seed": request.seed,
        "n": request.n}
    if chat:
        payload["messages"] = [{"role": m.role, "content": m.text()} for m in request.messages]
    else:
        payload["prompt"] = prompts[0]
    servers = live_servers(session, name)
    if not servers:
        raise ServiceUnavailable("No inference process is running; start one with `sculpt inference`",
                                 code="inference_unavailable", headers={"Retry-After": "5"})
    reply = Reply(chat=chat, id=f"{'chatcmpl' if chat else 'cmpl'}-{secrets.token_hex(12)}", created=int(time.time()),
                  model=name)
    return Plan(reply, payload, servers, request.n, request.stream,
                bool(request.stream_options and request.stream_options.include_usage))


class InferenceGone(ServiceUnavailable):
    default_code = "inference_unavailable"


def _gone(detail: str) -> InferenceGone:
    return InferenceGone(f"The inference process stopped answering ({detail}); retry the request",
                         headers={"Retry-After": "2"})


# One connection pool per event loop (an httpx client may not cross loops).
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = weakref.WeakKeyDictionary()


def _client() -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    if loop not in _clients:
        timeout = httpx.Timeout(get_settings().inference_timeout_seconds, connect=5.0)
        _clients[loop] = httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_connections=None))
    return _clients[loop]


class Upstream:
    """One inference process's answer: its events, one JSON object a line."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def next_event(self) -> dict | None:
        try:
            async for line in self._lines:
                if line.strip():
                    return json.loads(line)
        except httpx.TimeoutException:
            raise _gone(f"no token for {get_settings().inference_timeout_seconds:g} s") from None
        except (httpx.HTTPError, json.JSONDecodeError) as exc:
            raise _gone(type(exc).__name__) from None
        return None

    async def close(self) -> None:
        await self.response.aclose()


def _upstream_error(event: dict) -> ApiError:
    kinds: dict[int, type[ApiError]] = {404: NotFound, 503: ServiceUnavailable}
    kind = kinds.get(event.get("status", 0), ApiError)
    error = kind(event.get("message") or "Generation failed", param="model" if kind is NotFound else None,
                 code=event.get("code"))
    if kind is ApiError and event.get("status", 400) >= 500:
        error.status_code, error.type = 500, "server_error"
    return error


async def open_upstream(plan: Plan) -> tuple[Upstream, dict]:
    """Send the request to the first process that takes it; returns its answer and first event
    (``start``). An error it answers with becomes the matching ApiError."""
    client = _client()
    for url, token in plan.servers:
        request = client.build_request("POST", f"{url}/generate", json=plan.payload,
                                       headers={"Authorization": f"Bearer {token}"})
        try:
            response = await client.send(request, stream=True)
        except httpx.TransportError:
            continue  # gone without deregistering (killed): try the next one
        if response.status_code != 200:
            await response.aclose()
            continue
        upstream = Upstream(response)
        first = await upstream.next_event()
        if first is None or first["type"] == "error":
            await upstream.close()
            raise _gone("it closed the connection") if first is None else _upstream_error(first)
        return upstream, first
    raise ServiceUnavailable("No inference process is reachable; retry shortly", code="inference_unavailable",
                             headers={"Retry-After": "5"})


async def _answer(upstream: Upstream, n: int) -> AsyncIterator[dict]:
    """The answer's ``delta`` and ``finish`` events until all ``n`` choices finished; a closed
    connection or an ``error`` event raises its ApiError."""
    open_choices = n
    while open_choices:
        event = await upstream.next_event()
        if event is None:
            raise _gone("it closed the connection")
        if event["type"] == "error":
            raise _upstream_error(event)
        if event["type"] == "finish":
            open_choices -= 1
        if event["type"] in ("delta", "finish"):
            yield event


async def collect(plan: Plan, upstream: Upstream, first: dict) -> dict:
    """The whole answer as one OpenAI object."""
    texts, completion_tokens = [""] * plan.n, 0
    finishes: dict[int, str] = {}  # choice index -> finish_reason, once it finished
    try:
        async for event in _answer(upstream, plan.n):
            if event["type"] == "delta":
                texts[event["index"]] += event["text"]
            else:
                finishes[event["index"]] = event["reason"]
                completion_tokens += event["completion_tokens"]
    finally:
        await upstream.close()
    return plan.reply.completion(texts, [finishes[i] for i in range(plan.n)],
                                 usage(first["prompt_tokens"], completion_tokens))


def _sse(data: dict | str) -> bytes:
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n".encode()


async def stream(plan: Plan, upstream: Upstream, first: dict) -> AsyncIterator[bytes]:
    """Server-sent events as OpenAI sends them: chunks, then ``data: [DONE]``; a failure after the
    stream began is an ``error`` object (the openai client raises it)."""
    reply, extra = plan.reply, plan.include_usage
    completion_tokens = 0
    try:
        if reply.chat:
            for index in range(plan.n):
                yield _sse(reply.chunk(index, role=True, with_usage=extra))
        async for event in _answer(upstream, plan.n):
            if event["type"] == "delta":
                yield _sse(reply.chunk(event["index"], text=event["text"], with_usage=extra))
            else:
                completion_tokens += event["completion_tokens"]
                yield _sse(reply.chunk(event["index"], finish=event["reason"], with_usage=extra))
        if extra:
            yield _sse(reply.usage_chunk(usage(first["prompt_tokens"], completion_tokens)))
        yield _sse("[DONE]")
    except ApiError as exc:
        yield _sse({"error": {"message": exc.message, "type": exc.type, "param": exc.param, "code": exc.code}})
    finally:
        await upstream.close()
