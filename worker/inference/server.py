"""An inference process: a small HTTP server that the API forwards generation requests to.

It registers its URL in ``inference_servers`` and renews the row every heartbeat with the versions it
holds loaded (the API prefers a process that already holds the version asked for); a row whose
heartbeat has lapsed belongs to a process that is gone. ``POST /generate`` answers with one JSON event a
line (``start``, ``delta``, ``finish`` or ``error``, see worker.inference.engine) as tokens are made,
so the API can stream them on and sees at once when this process dies (the connection breaks).
It listens on loopback unless told otherwise (``sculpt serve`` starts it there; compose binds the
container's network), and wherever it listens it answers ``/generate`` only to a caller that sends the
token it made at start and wrote into its row (``Authorization: Bearer``): only the API, which reads the
row, can make it load or run a checkpoint. The API has validated every parameter.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import secrets
import socket
import threading
from collections.abc import AsyncIterator

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy import delete

from app.core.db.session import new_session
from app.core.db.tables import InferenceServer, utcnow
from app.core.inference_wire import Event, GenerateRequest
from app.core.logsafe import describe
from app.core.settings import get_settings
from worker.inference import engine as generation

log = logging.getLogger("sculpt.inference")


class Registration:
    """This process's row in inference_servers, renewed every heartbeat until stop()."""

    def __init__(self, server_id: str, url: str, engine: generation.Engine) -> None:
        self.server_id, self.url, self.engine = server_id, url, engine
        self.token = secrets.token_urlsafe(32)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="inference-heartbeat", daemon=True)

    def start(self) -> None:
        self._renew()
        self._thread.start()

    def _renew(self) -> None:
        with new_session() as session:
            row = session.get(InferenceServer, self.server_id) or InferenceServer(id=self.server_id, url=self.url)
            row.url, row.token, row.loaded, row.heartbeat_at = self.url, self.token, self.engine.pool.names(), utcnow()
            session.add(row)
            session.commit()

    def _beat(self) -> None:
        while not self._stopped.wait(get_settings().inference_heartbeat_seconds):
            try:
                self._renew()
            except Exception as exc:  # noqa: BLE001 - a database outage must not end the heartbeat
                log.warning("inference heartbeat failed: %s", describe(exc))

    def stop(self) -> None:
        self._stopped.set()
        with contextlib.suppress(Exception), new_session() as session:  # the row lapses by itself otherwise
            session.execute(delete(InferenceServer).where(InferenceServer.id == self.server_id))
            session.commit()


def create_app(engine: generation.Engine, registration: Registration) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        engine.start()
        registration.start()
        try:
            yield
        finally:
            registration.stop()
            engine.stop()

    app = FastAPI(title="Sculpt inference process", lifespan=lifespan)

    expected = f"Bearer {registration.token}".encode()

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.post("/generate", response_model=None)
    async def generate(request: Request) -> StreamingResponse | JSONResponse:
        if not hmac.compare_digest(request.headers.get("authorization", "").encode(), expected):
            return JSONResponse({"error": "this inference process answers only the Sculpt API"}, status_code=401)
        body: GenerateRequest = await request.json()
        loop, events = asyncio.get_running_loop(), asyncio.Queue[Event]()

        def sink(event: Event) -> None:  # called on the engine's thread
            loop.call_soon_threadsafe(events.put_nowait, event)

        job = generation.Request(sink=sink, **body)
        engine.submit(job)

        async def lines() -> AsyncIterator[bytes]:
            open_choices = job.n
            try:
                while open_choices:
                    event = await events.get()
                    yield (json.dumps(event) + "\n").encode()
                    if event["type"] == "error":
                        return
                    open_choices -= event["type"] == "finish"
            finally:  # the API went away (its client left): stop decoding this request
                job.cancelled = True

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    return app


def advertised_url(host: str, port: int) -> str:
    """The URL the API reaches this process at: the host it binds, or this machine's name when it binds
    every interface (in compose, the container's name resolves on the shared network)."""
    return f"http://{socket.gethostname() if host in ('0.0.0.0', '::') else host}:{port}"


def serve(host: str, port: int, url: str | None = None) -> None:
    settings = get_settings()
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))  # port 0: any free port, read back before registering
    port = sock.getsockname()[1]
    url = url or advertised_url(host, port)
    device = generation.default_device()
    engine = generation.Engine(budget_bytes=settings.inference_memory_bytes, device=device,
                               max_batch=settings.inference_max_batch,
                               batch_wait_s=settings.inference_batch_wait_ms / 1000)
    server_id = f"inference-{os.getpid()}@{socket.gethostname()}:{port}"
    registration = Registration(server_id, url, engine)
    print(f"inference    {url} ({device}, id {server_id})", flush=True)
    config = uvicorn.Config(create_app(engine, registration), log_level="warning", timeout_keep_alive=75)
    uvicorn.Server(config).run(sockets=[sock])
