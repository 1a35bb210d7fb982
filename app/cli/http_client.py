"""A thin HTTP client for a Sculpt server: JSON in, JSON out, the API's error message on failure."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Self

import httpx

from app.cli.sse import ServerEvent, parse_sse

DEFAULT_URL = "http://127.0.0.1:8000"
TIMEOUT = httpx.Timeout(60.0, connect=10.0)
# A stream is quiet between events for at most the server's keep-alive (15 s); allow slack.
STREAM_TIMEOUT = httpx.Timeout(60.0, connect=10.0, read=90.0)


class ClientError(Exception):
    """Anything the command should report and exit non-zero on; the message is fit to print."""


class ApiError(ClientError):
    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(f"{message} (HTTP {status}{', ' + code if code else ''})")
        self.status = status
        self.code = code


def default_url() -> str:
    return os.environ.get("SCULPT_URL") or DEFAULT_URL


def default_key() -> str | None:
    return os.environ.get("SCULPT_API_KEY") or None


def _raise_for_error(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        error = response.json()["error"]
        raise ApiError(response.status_code, error.get("message") or response.reason_phrase, error.get("code"))
    except (ValueError, KeyError, TypeError):
        raise ApiError(response.status_code, response.reason_phrase or "request failed") from None


class SculptClient:
    def __init__(self, url: str, api_key: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=TIMEOUT)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc) -> None:
        self._http.close()

    def _send(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ClientError(f"cannot reach {self.url}: {exc}") from None
        _raise_for_error(response)
        return response

    def request(self, method: str, path: str, **kwargs) -> dict:
        return self._send(method, path, **kwargs).json()

    def content(self, path: str) -> bytes:
        return self._send("GET", path).content

    def get(self, path: str, **params) -> dict:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: dict | None = None, headers: dict | None = None) -> dict:
        return self.request("POST", path, json=body or {}, headers=headers)

    def upload(self, path: Path, purpose: str) -> dict:
        with path.open("rb") as handle:
            return self.request("POST", "/v1/files", data={"purpose": purpose},
                                files={"file": (path.name, handle, "application/jsonl")})

    def delete(self, path: str, **params) -> dict:
        return self.request("DELETE", path, params={k: v for k, v in params.items() if v is not None})

    def put(self, path: str, body: dict) -> dict:
        return self.request("PUT", path, json=body)

    @contextmanager
    def download(self, path: str, headers: dict[str, str]) -> Iterator[httpx.Response]:
        """A streamed GET of raw bytes; StreamDropped if the connection breaks (resume with Range)."""
        try:
            with self._http.stream("GET", path, headers=headers, timeout=STREAM_TIMEOUT) as response:
                if response.status_code >= 400:
                    response.read()
                    _raise_for_error(response)
                yield response
        except httpx.TransportError as exc:
            raise StreamDropped(f"the download from {self.url} broke off: {exc}") from None

    def stream_events(self, job_id: str, last_event_id: str | None = None) -> Iterator[ServerEvent]:
        """The job's event stream from after ``last_event_id``; raises ClientError if the connection drops."""
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        try:
            with self._http.stream("GET", f"/v1/fine_tuning/jobs/{job_id}/events/stream", headers=headers,
                                   timeout=STREAM_TIMEOUT) as response:
                if response.status_code >= 400:
                    response.read()
                    _raise_for_error(response)
                yield from parse_sse(response.iter_lines())
        except httpx.TransportError as exc:
            raise StreamDropped(f"the event stream from {self.url} broke off: {exc}") from None


    def stream_chat(self, body: dict) -> Iterator[str]:
        """The first choice's text of a streamed chat completion, piece by piece as it is generated."""
        try:
            with self._http.stream("POST", "/v1/chat/completions", json={**body, "stream": True},
                                   timeout=STREAM_TIMEOUT) as response:
                if response.status_code >= 400:
                    response.read()
                    _raise_for_error(response)
                for line in response.iter_lines():
                    data = line.removeprefix("data: ")
                    if not line.startswith("data: ") or data == "[DONE]":
                        continue
                    chunk = json.loads(data)
                    if "error" in chunk:
                        raise ApiError(503, chunk["error"]["message"], chunk["error"].get("code"))
                    if chunk["choices"] and (text := chunk["choices"][0]["delta"].get("content")):
                        yield text
        except httpx.TransportError as exc:
            raise StreamDropped(f"the answer from {self.url} broke off: {exc}") from None


class StreamDropped(ClientError):
    """The connection ended early; following again with Last-Event-ID picks up where it stopped."""
