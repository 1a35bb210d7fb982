"""Generation results to OpenAI's objects: chat.completion / text_completion, and their stream chunks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reply:
    """What every object of one response shares."""

    chat: bool
    id: str
    created: int
    model: str

    def _head(self, chunk: bool) -> dict:
        kind = ("chat.completion.chunk" if chunk else "chat.completion") if self.chat else "text_completion"
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model,
                "system_fingerprint": None}

    def completion(self, texts: list[str], finishes: list[str], usage: dict) -> dict:
        if self.chat:
            choices = [{"index": i, "message": {"role": "assistant", "content": text, "refusal": None},
                        "finish_reason": finish, "logprobs": None}
                       for i, (text, finish) in enumerate(zip(texts, finishes, strict=True))]
        else:
            choices = [{"index": i, "text": text, "finish_reason": finish, "logprobs": None}
                       for i, (text, finish) in enumerate(zip(texts, finishes, strict=True))]
        return {**self._head(False), "choices": choices, "usage": usage}

    def chunk(self, index: int, *, text: str | None = None, finish: str | None = None, role: bool = False,
              with_usage: bool = False) -> dict:
        if self.chat:
            delta = {"role": "assistant", "content": ""} if role else ({"content": text} if text is not None else {})
            choice = {"index": index, "delta": delta, "finish_reason": finish, "logprobs": None}
        else:
            choice = {"index": index, "text": text or "", "finish_reason": finish, "logprobs": None}
        return {**self._head(True), "choices": [choice], **({"usage": None} if with_usage else {})}

    def usage_chunk(self, usage: dict) -> dict:
        return {**self._head(True), "choices": [], "usage": usage}


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}
