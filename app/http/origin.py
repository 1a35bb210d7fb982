"""What keeps web pages out of an open server (the embedded one on loopback while it has no key).

Such a server trusts whoever reaches it, and a browser reaches it for any page its user visits: a page may
post a form to ``http://127.0.0.1:PORT`` (the request is sent even though the page cannot read the
answer), or re-point its own name at 127.0.0.1 (DNS rebinding) and then read answers as if same-origin.
So an open server answers only requests whose Host is one of its own names (an IP address, ``localhost``,
the host it is bound to, the machine's name, or SCULPT_ALLOWED_HOSTS; a rebinding page's Host is its own
name), and changes nothing for a request a browser sent from another origin. Clients that are not
browsers send no Origin and are unaffected; with a key, neither check applies.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from fastapi import Request

from app.core.errors import Forbidden
from app.core.settings import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_PORTS = {"http": 80, "https": 443}


def _split_host(host: str, scheme: str) -> tuple[str, int | None]:
    """('name', port) of a Host header; the name lower-cased, an IPv6 address without brackets."""
    try:
        parts = urlsplit(f"//{host}")
        return (parts.hostname or "").lower(), parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:
        return "", None


def _own_name(name: str, settings: Settings) -> bool:
    try:
        ipaddress.ip_address(name)
        return True  # a rebinding page cannot make a browser send an address as its Host
    except ValueError:
        pass
    own = {"localhost", socket.gethostname().lower(), (settings.bind_host or "").lower(), *settings.allowed_hosts}
    return name in own or name.endswith(".localhost")


def check_open_request(request: Request, settings: Settings) -> None:
    """Forbidden unless the request names this server as its Host and, when it changes something, comes
    from no other origin."""
    scheme = request.url.scheme
    host = request.headers.get("host", "")
    name, port = _split_host(host, scheme)
    if not _own_name(name, settings):
        raise Forbidden(f"This server does not answer to the host '{host}': it has no API key, so it answers only "
                        "requests addressed to its own names (set SCULPT_ALLOWED_HOSTS to add one, or create a "
                        "key with `sculpt keys create NAME` and send it)", param="Host", code="foreign_host")
    origin = request.headers.get("origin")
    if request.method in SAFE_METHODS or origin is None:
        return
    origin_parts = urlsplit(origin) if origin != "null" else None
    same = origin_parts is not None and _split_host(origin_parts.netloc, origin_parts.scheme) == (name, port)
    if not same:
        raise Forbidden(f"A request from the web page at '{origin}' may not change anything here: this server has no "
                        "API key, so it accepts changes only from its own pages and from clients that are not "
                        "browsers (or from any client that sends a key)", param="Origin", code="foreign_origin")
