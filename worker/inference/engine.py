"""Generation for an inference process: versions loaded on demand and kept, most recently used first,
within a memory budget; requests for the same version that arrive together decoded as one batch.

One thread owns torch. Requests wait in a queue; the thread takes the oldest, waits a moment
(``inference_batch_wait_ms``) for others on the same version, and decodes them together token by
token with a KV cache, each row with its own sampling parameters and random generator, so a seeded
request gives the same answer alone or in a batch. Each request's events (its prompt's token count,
text deltas per choice, how each choice finished, or an error) go to the sink it brought.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from app.core.inference_wire import Event
from app.core.logsafe import describe
from app.core.settings import get_settings
from worker.cache import local_checkpoint
from worker.engine.loading import load_model_and_tokenizer
from worker.evaluation.batching import is_encoder_decoder, pad_batch, pad_token_id, prompt_ids
from worker.evaluation.generation import fit_context
from worker.prompt_completion import render_chat

log = logging.getLogger("sculpt.inference")

Sink = Callable[[Event], None]  # where a request's events go, in the order they happen


class GenerationError(Exception):
    """A request that cannot be served; ``status`` and ``code`` travel to the client."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Request:
    name: str  # "bot:v3", for messages and the loaded list
    checkpoint_uri: str
    checkpoint_sha256: str | None
    sink: Sink
    prompt: str | None = None
    messages: list[dict[str, str]] | None = None
    max_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    n: int = 1
    cancelled: bool = False

    @property
    def key(self) -> str:
        return f"{self.checkpoint_uri}@{self.checkpoint_sha256}"


@dataclass
class Loaded:
    name: str
    model: Any
    tokenizer: Any
    bytes: int


def _memory(model: Any) -> int:
    return sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))


class ModelPool:
    """Versions in memory, most recently used last; loading one evicts the least recently used others
    until the pool fits the budget (the one just asked for always stays)."""

    def __init__(self, budget_bytes: int, device: str) -> None:
        self.budget, self.device = budget_bytes, device
        self._loaded: OrderedDict[str, Loaded] = OrderedDict()

    def names(self) -> list[str]:
        return [entry.name for entry in self._loaded.values()]

    def get(self, request: Request) -> Loaded:
        if (entry := self._loaded.get(request.key)) is not None:
            self._loaded.move_to_end(request.key)
            return entry
        try:
            folder = local_checkpoint(request.checkpoint_uri, request.checkpoint_sha256)
        except FileNotFoundError as exc:
            raise GenerationError(404, "model_not_found", f"The checkpoint of {request.name} is gone") from exc
        except (OSError, ValueError) as exc:
            raise GenerationError(503, "checkpoint_unavailable",
                                  f"The checkpoint of {request.name} cannot be read: {exc}") from exc
        if Path(folder).is_absolute() and not Path(folder).exists():
            raise GenerationError(404, "model_not_found", f"The checkpoint of {request.name} is gone")
        try:
            model, tokenizer, _kind = load_model_and_tokenizer(
                folder, trust_remote_code=get_settings().trust_remote_code, device=self.device)
        except Exception as exc:  # a truncated or corrupted file fails in many ways; each says why
            reason = f"{type(exc).__name__}: {str(exc).replace(str(folder), '<checkpoint>')}"[:300]
            raise GenerationError(503, "checkpoint_unavailable",
                                  f"The checkpoint of {request.name} cannot be loaded ({reason})") from exc
        if is_encoder_decoder(model):
            raise GenerationError(400, "model_not_supported",
                                  f"{request.name} is an encoder-decoder model; inference serves decoder-only models")
        entry = Loaded(request.name, model, tokenizer, _memory(model))
        self._loaded[request.key] = entry
        self._evict(keep=request.key)
        log.info("loaded %s (%.1f MB); holding %s", request.name, entry.bytes / 1e6, ", ".join(self.names()))
        return entry

    def _evict(self, keep: str) -> None:
        while sum(e.bytes for e in self._loaded.values()) > self.budget and len(self._loaded) > 1:
            oldest = next(k for k in self._loaded if k != keep)
            log.info("unloading %s to stay within the memory budget", self._loaded.pop(oldest).name)
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()


@dataclass
class Row:
    """One choice being decoded."""

    request: Request
    index: int
    ids: list[int]
    generator: torch.Generator | None
    tokens: list[int] = field(default_factory=list)
    sent: int = 0  # characters of the text already sent
    finish: str | None = None


def _choose(logits: torch.Tensor, row: Row) -> int:
    request = row.request
    if request.temperature == 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits / request.temperature, dim=-1)
    if request.top_p < 1:
        ordered, order = torch.sort(probs, descending=True)
        # Keep the smallest set of tokens whose mass reaches top_p (the most likely always stays).
        outside = torch.cumsum(ordered, dim=-1) - ordered >= request.top_p
        ordered[outside] = 0
        probs = torch.zeros_like(probs).scatter_(0, order, ordered)
    return int(torch.multinomial(probs, 1, generator=row.generator))


def _held_back(text: str, stops: list[str]) -> int:
    """How many characters at the end might begin a stop sequence (or an unfinished UTF-8 character),
    so they wait for the next token."""
    hold = len(text) - len(text.rstrip("\ufffd"))
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:size]):
                hold = max(hold, size)
                break
    return hold


class Engine:
    def __init__(self, *, budget_bytes: int, device: str, max_batch: int, batch_wait_s: float) -> None:
        self.pool = ModelPool(budget_bytes, device)
        self.device, self.max_batch, self.batch_wait_s = device, max_batch, batch_wait_s
        self._pending: list[Request] = []
        self._ready = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="inference", daemon=True)
        self._stopping = False

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._ready:
            self._stopping = True
            self._ready.notify()

    def submit(self, request: Request) -> None:
        with self._ready:
            self._pending.append(request)
            self._ready.notify()

    def _next_batch(self) -> list[Request]:
        with self._ready:
            while not self._pending and not self._stopping:
                self._ready.wait()
            if self._stopping:
                return []
        time.sleep(self.batch_wait_s)  # let requests sent at the same moment join this batch
        with self._ready:
            key, rows = self._pending[0].key, 0
            batch: list[Request] = []
            for request in list(self._pending):
                if request.key == key and (not batch or rows + request.n <= self.max_batch):
                    batch.append(request)
                    rows += request.n
                    self._pending.remove(request)
            return batch

    def _run(self) -> None:
        while batch := self._next_batch():
            try:
                self._serve(batch)
            except GenerationError as exc:
                for request in batch:
                    request.sink({"type": "error", "status": exc.status, "code": exc.code, "message": exc.message})
            except Exception as exc:  # noqa: BLE001 - the thread must outlive one bad batch
                log.error("generation failed for %s: %s", batch[0].name, describe(exc))
                for request in batch:
                    request.sink({"type": "error", "status": 500, "code": "generation_failed",
                                  "message": "Generation failed in the inference process; it has been logged"})

    def _serve(self, batch: list[Request]) -> None:
        loaded = self.pool.get(batch[0])
        rows = []
        for request in batch:
            if request.messages is None:
                assert request.prompt is not None  # the API sends a prompt (completions) or messages (chat)
                text = request.prompt
            else:
                text = render_chat(request.messages, loaded.tokenizer)
            try:
                ids = fit_context(loaded.model, prompt_ids(loaded.tokenizer, text), request.max_tokens)
            except ValueError as exc:  # this request alone: the others in the batch still run
                request.sink({"type": "error", "status": 400, "code": "context_length_exceeded", "message": str(exc)})
                continue
            request.sink({"type": "start", "prompt_tokens": len(ids)})
            seed = request.seed if request.seed is not None else secrets.randbits(48)
            for index in range(request.n):
                generator = None
                if request.temperature > 0:
                    generator = torch.Generator(device=self.device).manual_seed(seed + index)
                rows.append(Row(request, index, ids, generator))
        for start in range(0, len(rows), self.max_batch):  # one request's n may pass max_batch
            decode(loaded.model, loaded.tokenizer, rows[start:start + self.max_batch])


@torch.no_grad()
def decode(model: Any, tokenizer: Any, rows: list[Row]) -> None:
    """Decode rows together, left padded so new tokens line up; each row stops at eos, a stop
    sequence or its max_tokens, and sends its text as it grows."""
    device = next(model.parameters()).device
    pad_id = pad_token_id(tokenizer)
    input_ids, attention_mask = pad_batch([r.ids for r in rows], pad_id, left=True)
    input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
    positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    cache = None
    for _step in range(max(r.request.max_tokens for r in rows)):
        out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, cache=cache,
                    use_cache=True, logits_to_keep=1)
        cache, logits = out.cache, out.logits[:, -1, :].float()
        chosen = []
        for i, row in enumerate(rows):
            if row.finish is None and row.request.cancelled:
                row.finish = "cancelled"
            token = pad_id if row.finish else _choose(logits[i], row)
            chosen.append(token)
            if not row.finish:
                _advance(row, token, tokenizer)
        if all(r.finish for r in rows):
            break
        input_ids = torch.tensor(chosen, device=device).unsqueeze(1)
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones((len(rows), 1))], dim=1)
        positions = positions[:, -1:] + 1
    for row in rows:
        if not row.finish:
            _finish(row, tokenizer, "length")


def _advance(row: Row, token: int, tokenizer: Any) -> None:
    request = row.request
    if token == tokenizer.eos_token_id:
        return _finish(row, tokenizer, "stop")
    row.tokens.append(token)
    text = tokenizer.decode(row.tokens, skip_special_tokens=True)
    cut = min((i for i in (text.find(s) for s in request.stop) if i >= 0), default=-1)
    if cut >= 0:
        _send(row, text[:cut])
        return _finish(row, tokenizer, "stop", text_sent=True)
    _send(row, text[:len(text) - _held_back(text, request.stop)])
    if len(row.tokens) >= request.max_tokens:
        _finish(row, tokenizer, "length")
    return None


def _send(row: Row, text: str) -> None:
    if len(text) > row.sent:
        row.request.sink({"type": "delta", "index": row.index, "text": text[row.sent:]})
        row.sent = len(text)


def _finish(row: Row, tokenizer: Any, reason: str, *, text_sent: bool = False) -> None:
    if not text_sent:  # what was held back for a stop sequence that never came
        _send(row, tokenizer.decode(row.tokens, skip_special_tokens=True))
    row.finish = reason
    row.request.sink({"type": "finish", "index": row.index, "reason": reason, "completion_tokens": len(row.tokens)})


def default_device() -> str:
    return get_settings().inference_device or ("cuda" if torch.cuda.is_available() else "cpu")
