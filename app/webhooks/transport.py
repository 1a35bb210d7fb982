"""Webhooks for pipelines: which URLs a job may name, how a delivery is signed, how it is sent.

A delivery is a POST of a JSON body, signed with HMAC-SHA256 over ``timestamp + "." + body``
(headers ``Sculpt-Timestamp`` and ``Sculpt-Signature: v1=<hex>``), retried with exponential
backoff while the receiver fails. Redirects are not followed, so a delivery never leaves the
operator's allowed hosts. What is posted and where attempts are recorded: ``app.webhooks.delivery``.

A receiver cannot hold a delivery: each attempt, resolution included, has a total deadline
(SCULPT_WEBHOOK_TIMEOUT_SECONDS, not a per-read timeout that a receiver dripping bytes keeps alive), and
only the response's status is read, never its body, however large it says it is.

An allowed host is ``host:port`` (a bare host: the scheme's default port only). Each attempt resolves the
host again and connects to the address it checked (so a name cannot be re-pointed between the check and
the connection): loopback, private, link-local (cloud metadata) and other non-public addresses only where
SCULPT_WEBHOOK_ALLOWED_NETWORKS allows them, or where the operator listed the address itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

import httpx

from app.core.errors import Unprocessable
from app.core.settings import Settings

SIGNATURE_SCHEME = "v1"
USER_AGENT = "Sculpt-Webhooks/1"
DEFAULT_PORTS = {"http": 80, "https": 443}
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class WebhookRefused(Exception):
    """The target may not be posted to now (say, its name resolves to a private address): not retried."""


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _literal(host: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _allow_listed(parts: SplitResult, settings: Settings) -> bool:
    host, port = _host(parts), parts.port or DEFAULT_PORTS[parts.scheme]
    allowed = settings.webhook_allowed_hosts
    return _netloc(host, port) in allowed or (host in allowed and port == DEFAULT_PORTS[parts.scheme])


def address_problem(address: IpAddress, settings: Settings) -> str | None:
    """Why a webhook may not connect to ``address``, or None."""
    address = getattr(address, "ipv4_mapped", None) or address
    if any(address in ipaddress.ip_network(n, strict=False) for n in settings.webhook_allowed_networks):
        return None
    if address.is_global and not address.is_multicast:
        return None
    kind = ("loopback" if address.is_loopback else "link-local (where cloud metadata lives)" if address.is_link_local
            else "private" if address.is_private else "non-public")
    return f"{address}, a {kind} address (the operator may allow it with SCULPT_WEBHOOK_ALLOWED_NETWORKS)"


def _host(parts: SplitResult) -> str:
    # Only URLs url_problem has passed get here, and it refuses those without a host.
    assert parts.hostname is not None
    return parts.hostname.lower()


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
    if not _allow_listed(parts, settings):
        return (f"host '{_netloc(parts.hostname.lower(), port or DEFAULT_PORTS[parts.scheme])}' is not one the "
                "operator allows (SCULPT_WEBHOOK_ALLOWED_HOSTS lists host:port)")
    return None


@dataclass(frozen=True)
class Target:
    """Where one attempt connects: the checked addresses in the resolver's order, as URLs, with the URL's
    host kept for Host and TLS."""

    urls: list[str]
    host_header: str
    sni_hostname: str | None


def resolve_target(url: str, settings: Settings) -> Target:
    """Resolve an allowed URL's host now and check every address it has; WebhookRefused if one is not allowed."""
    parts = urlsplit(url)
    host, port = _host(parts), parts.port or DEFAULT_PORTS[parts.scheme]
    literal = _literal(host)
    if literal is not None:
        addresses = [literal]  # the operator listed this very address: it is allowed as it stands
    else:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)  # OSError: a failed attempt, retried
        addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))
        for address in addresses:
            problem = address_problem(address, settings)
            if problem:
                raise WebhookRefused(f"host '{host}' resolves to {problem}")
    return Target(urls=[parts._replace(netloc=_netloc(str(a), port)).geturl() for a in addresses],
                  host_header=parts.netloc.rpartition("@")[2],
                  sni_hostname=host if parts.scheme == "https" and literal is None else None)


def check_webhook_url(url: str, settings: Settings) -> str:
    problem = url_problem(url, settings)
    if problem:
        raise Unprocessable(f"webhook_url {problem}", param="webhook_url", code="invalid_webhook_url")
    return url


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_SCHEME}={digest}"


async def _attempt(client: httpx.AsyncClient, url: str, body: bytes, settings: Settings, number: int) -> dict:
    outcome: dict = {"attempt": number, "at": int(time.time())}
    try:
        # At every attempt: what the name points at may change. On a thread, so the deadline holds it too.
        target = await asyncio.to_thread(resolve_target, url, settings)
    except OSError as exc:
        outcome["error"] = f"host '{urlsplit(url).hostname}' did not resolve: {exc.strerror or exc}"[:300]
        return outcome
    timestamp = str(int(time.time()))
    assert settings.webhook_secret is not None  # url_problem turns webhooks off without a secret
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, "Sculpt-Timestamp": timestamp,
               "Sculpt-Signature": signature(settings.webhook_secret.get_secret_value(), timestamp, body),
               "Host": target.host_header}
    extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else None
    for index, address_url in enumerate(target.urls):
        try:
            # The status is the answer; leaving the stream unread closes the connection.
            async with client.stream("POST", address_url, content=body, headers=headers,
                                     extensions=extensions) as response:
                outcome["status_code"] = response.status_code
            return outcome
        except httpx.ConnectError as exc:  # as a plain connection would: on to the host's next address
            if index == len(target.urls) - 1:
                outcome["error"] = f"{type(exc).__name__}: {exc}"[:300]
        except httpx.HTTPError as exc:
            outcome["error"] = f"{type(exc).__name__}: {exc}"[:300]
            return outcome
    return outcome


async def _attempt_within_deadline(client: httpx.AsyncClient, url: str, body: bytes, settings: Settings,
                                   number: int) -> dict:
    seconds = settings.webhook_timeout_seconds
    try:
        return await asyncio.wait_for(_attempt(client, url, body, settings, number), seconds)
    except TimeoutError:
        return {"attempt": number, "at": int(time.time()),
                "error": f"no complete answer within {seconds:g} s (SCULPT_WEBHOOK_TIMEOUT_SECONDS)"}


def delivery_seconds(settings: Settings) -> float:
    """The longest a whole delivery can take: every attempt running to its deadline, every backoff slept."""
    return (settings.webhook_attempts * settings.webhook_timeout_seconds
            + settings.webhook_backoff_seconds * (2 ** (settings.webhook_attempts - 1) - 1))


def post_signed(url: str, body: bytes, settings: Settings, begin: Callable[[int], bool],
                on_attempt: Callable[[dict], None], first: int = 1) -> bool:
    """POST until a 2xx or the attempts run out, numbering them from ``first`` (a resumed delivery).
    ``begin(number)`` is asked before each send and stops the delivery when it answers False (another process
    holds it now); ``on_attempt`` sees each outcome. Returns delivered. A target refused when resolved ends
    the delivery."""
    return asyncio.run(_post_signed(url, body, settings, begin, on_attempt, first))


async def _post_signed(url: str, body: bytes, settings: Settings, begin: Callable[[int], bool],
                       on_attempt: Callable[[dict], None], first: int) -> bool:
    async with httpx.AsyncClient(timeout=settings.webhook_timeout_seconds, follow_redirects=False) as client:
        for number in range(first, settings.webhook_attempts + 1):
            if not begin(number):
                return False
            try:
                outcome = await _attempt_within_deadline(client, url, body, settings, number)
            except WebhookRefused as exc:
                on_attempt({"attempt": number, "at": int(time.time()), "error": f"not sent: webhook_url {exc}"})
                return False
            on_attempt(outcome)
            if 200 <= outcome.get("status_code", 0) < 300:
                return True
            if number < settings.webhook_attempts:
                await asyncio.sleep(settings.webhook_backoff_seconds * 2 ** (number - 1))
    return False
