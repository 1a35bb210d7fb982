"""Request bodies of the inference endpoints, in OpenAI's shapes. Unknown or unsupported parameters are
refused by name (see service.parse_request) rather than ignored."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextPart(_Body):
    type: Literal["text"]
    text: str


class ChatMessage(_Body):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)


class StreamOptions(_Body):
    include_usage: bool = False


class _Generation(_Body):
    model: str = Field(min_length=1, max_length=200, description="A lineage (its head), '<lineage>:v<n>', "
                                                                 "or '<lineage>@previous' (the head's parent).")
    max_tokens: int | None = Field(None, ge=1, description="At most SCULPT_INFERENCE_MAX_TOKENS.")
    temperature: float = Field(1.0, ge=0.0, le=2.0, description="0: greedy.")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stop: str | list[str] | None = Field(None, description="Up to 4 sequences; the text ends before the first.")
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    n: int = Field(1, ge=1, description="Choices per request; at most SCULPT_INFERENCE_MAX_N.")
    stream: bool = False
    stream_options: StreamOptions | None = None

    def stops(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])


class ChatCompletionRequest(_Generation):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1, description="The newer name of max_tokens.")


class CompletionRequest(_Generation):
    prompt: str | list[str] = Field(description="A prompt (a list holding one prompt is accepted too).")
