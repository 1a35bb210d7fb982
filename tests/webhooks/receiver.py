"""A real HTTP receiver for webhook tests: a threaded http.server on a free port that answers with
the statuses it is given and records what arrived."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    arrived: float

    @property
    def job(self) -> dict:
        return json.loads(self.body)

    def signed_with(self, secret: str) -> bool:
        """The receiver's check, written out as a pipeline would: HMAC-SHA256 of 'timestamp.body'."""
        expected = hmac.new(secret.encode(), self.headers["Sculpt-Timestamp"].encode() + b"." + self.body,
                            hashlib.sha256).hexdigest()
        return hmac.compare_digest(self.headers["Sculpt-Signature"], f"v1={expected}")


@dataclass
class Receiver:
    statuses: list[int] = field(default_factory=list)  # answered in order; then 200
    deliveries: list[Delivery] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/sculpt"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.deliveries.append(Delivery(dict(self.headers), body, time.monotonic()))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, timeout: float = 30) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while len(self.deliveries) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.deliveries


def settled_deliveries(job_id: str, timeout: float = 30) -> list[dict]:
    """The job's delivery attempts as stored, once no delivery of it is pending: deliveries run on threads
    of their own, after the request that started them has been answered."""
    from sqlalchemy import select

    from app.core.db.session import session_scope
    from app.core.db.tables import Job

    deadline = time.monotonic() + timeout
    while True:
        with session_scope() as session:
            job = session.scalars(select(Job).where(Job.id == job_id)).one()
            if not job.webhook_pending or time.monotonic() > deadline:
                return list(job.webhook_deliveries or [])
        time.sleep(0.05)


def settle_head_changes(timeout: float = 30) -> None:
    """Wait until no head change has a delivery pending (each runs on a thread of its own)."""
    from sqlalchemy import func, select

    from app.core.db.session import session_scope
    from app.core.db.tables import HeadChange

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope() as session:
            if not session.scalar(select(func.count()).where(HeadChange.webhook_pending.is_(True))):
                return
        time.sleep(0.05)
