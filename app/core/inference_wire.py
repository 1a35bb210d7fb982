"""What the API and an inference process (``sculpt inference``) send each other over HTTP: the body of
``POST /generate``, and the events it streams back, one JSON object a line. The API builds the one
and reads the other; ``worker/inference`` the other way round."""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict


class GenerateRequest(TypedDict):
    name: str  # "bot:v3", for messages and the process's list of loaded versions
    checkpoint_uri: str
    checkpoint_sha256: str | None
    max_tokens: int
    temperature: float
    top_p: float
    stop: list[str]
    seed: int | None
    n: int
    prompt: NotRequired[str]  # a completion ...
    messages: NotRequired[list[dict[str, str]]]  # ... or a chat: {"role", "content"} each


class Start(TypedDict):
    type: Literal["start"]
    prompt_tokens: int


class Delta(TypedDict):
    type: Literal["delta"]
    index: int  # the choice (of n)
    text: str


class Finish(TypedDict):
    type: Literal["finish"]
    index: int
    reason: str  # OpenAI's finish_reason: "stop" or "length"
    completion_tokens: int


class Error(TypedDict):
    type: Literal["error"]
    status: int  # the HTTP status the API answers with
    code: str
    message: str


Event = Start | Delta | Finish | Error
