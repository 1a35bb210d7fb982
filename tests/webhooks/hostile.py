"""A hostile webhook receiver on loopback: it reads each POST whole, then answers slowly or never.

``drip_body``: a 200 that promises a megabyte and sends one byte every ``DRIP_SECONDS``;
``drip_headers``: a status line, then one header byte every ``DRIP_SECONDS``;
``hold``: nothing until ``release`` is set, then a 500.
Every mode stops at ``release`` (or when the client hangs up) and counts the POSTs that arrived.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from dataclasses import dataclass, field

DRIP_SECONDS = 0.2


@dataclass
class HostileReceiver:
    mode: str
    posts: int = 0
    release: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Event = field(default_factory=threading.Event)  # set at each POST
    hung_up: int = 0  # answers the client cut short
    server: socketserver.ThreadingTCPServer | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> HostileReceiver:
        receiver = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                if not _read_request(self.request):
                    return
                receiver.posts += 1
                receiver.arrived.set()
                try:
                    receiver.answer(self.request)
                except OSError:
                    receiver.hung_up += 1

        socketserver.ThreadingTCPServer.daemon_threads = True
        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def answer(self, connection: socket.socket) -> None:
        if self.mode == "hold":
            self.release.wait(30)
            connection.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
            return
        if self.mode == "drip_body":
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000000\r\n\r\n")
        else:
            connection.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        while not self.release.wait(DRIP_SECONDS):
            connection.sendall(b"x")

    def stop(self) -> None:
        self.release.set()
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()


def _read_request(connection: socket.socket) -> bool:
    """Read one request's head and its Content-Length body; False when the client sent none."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return False
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            return False
        body += chunk
    return True
