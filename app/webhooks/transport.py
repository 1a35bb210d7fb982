"""Webhooks for pipelines: which URLs a job may name, how a delivery is signed, how it is sent.

A delivery is a POST of a JSON body, signed with HMAC-SHA256 over ``timestamp + "." + body``
(headers ``Sculpt-Timestamp`` and ``Sculpt-Signature: v1=<hex>``), retried with exponential
backoff while the receiver fails. Redirects are not followed, so a delivery never leaves the
operator's allowed hosts. What is posted and where attempts are recorded: ``app.webhooks.delivery``.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx

from app.core.errors import Unprocessable
from app.core.settings import Settings

SIGNATURE_SCHEME = "v1"
USER_AGENT = "Sculpt-Webhooks/1"


def url_problem(url: str, settings: Settings) -> str | None:
    """Why ``url`` may not receive webhooks here, or None when it may."""
    if not settings.webhook_allowed_hosts or settings.webhook_secret is None:
        return ("cannot be used: webhooks are turned off on this server (the operator sets "
                "SCULPT_WEBHOOK_ALLOWED_HOSTS and SCULPT_WEBHOOK_SECRET)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "must be an http:// or https:// URL"
    if not parts.hostname:
        return "has no host"
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials"
    host = parts.hostname.lower()
    allowed = settings.webhook_allowed_hosts
    if host not in allowed and (port is None or f"{host}:{port}" not in allowed):
        return f"host '{host}' is not one the operator allows (SCULPT_WEBHOOK_ALLOWED_HOSTS)"
    return None


def check_webhook_url(url: str, settings: Settings) -> str:
    problem = url_problem(url, settings)
    if problem:
        raise Unprocessable(f"webhook_url {problem}", param="webhook_url", code="invalid_webhook_url")
    return url


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_SCHEME}={digest}"


def _attempt(client: httpx.Client, url: str, body: bytes, secret: str, number: int) -> dict:
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, "Sculpt-Timestamp": timestamp,
               "Sculpt-Signature": signature(secret, timestamp, body)}
    outcome: dict = {"attempt": number, "at": int(time.time())}
    try:
        outcome["status_code"] = client.post(url, content=body, headers=headers).status_code
    except httpx.HTTPError as exc:
        outcome["error"] = f"{type(exc).__name__}: {exc}"[:300]
    return outcome


def delivery_seconds(settings: Settings) -> float:
    """The longest a whole delivery can take: every attempt timing out, every backoff slept."""
    return (settings.webhook_attempts * settings.webhook_timeout_seconds
            + settings.webhook_backoff_seconds * (2 ** (settings.webhook_attempts - 1) - 1))


def post_signed(url: str, body: bytes, settings: Settings, on_attempt: Callable[[dict], None],
                first: int = 1) -> bool:
    """POST until a 2xx or the attempts run out, numbering them from ``first`` (a resumed delivery);
    ``on_attempt`` sees each outcome. Returns delivered."""
    secret = settings.webhook_secret.get_secret_value()
    with httpx.Client(timeout=settings.webhook_timeout_seconds, follow_redirects=False) as client:
        for number in range(first, settings.webhook_attempts + 1):
            outcome = _attempt(client, url, body, secret, number)
            on_attempt(outcome)
            if 200 <= outcome.get("status_code", 0) < 300:
                return True
            if number < settings.webhook_attempts:
                time.sleep(settings.webhook_backoff_seconds * 2 ** (number - 1))
    return False
