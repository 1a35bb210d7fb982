"""Turning a dataset record into the (prompt, completion) text pair that is trained and scored.

A record is ``{"prompt": str, "completion": str}`` or ``{"messages": [{"role", "content"}, …]}``
where the last assistant message is the target. Chat records are rendered with the tokenizer's
chat template when it has one, so training and evaluation see the same text, and a prompt's text becomes
the same token ids wherever it is trained, scored or answered (``prompt_token_ids``).
"""

from __future__ import annotations

from typing import Any


def _plain_chat(messages: list[dict[str, str]]) -> str:
    lines = [f"{m['role']}: {m['content']}" for m in messages]
    return "\n".join(lines) + "\nassistant: "


def render_chat(messages: list[dict[str, str]], tokenizer: Any = None) -> str:
    """The prompt that asks for the next assistant message: the chat template when the tokenizer has one,
    else plain "role: content" lines (tiny or base models often have no template)."""
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return _plain_chat(messages)


def to_prompt_completion(record: dict[str, Any], tokenizer: Any = None) -> tuple[str, str]:
    if "messages" not in record:
        return str(record["prompt"]), str(record["completion"])
    messages = list(record["messages"])
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    return render_chat(messages[:last], tokenizer), messages[last]["content"]


def base_question(question: str) -> str:
    """How a model without a chat template is asked something: the question-and-answer form a pretrained
    base completes (a base asked in a chat form it never saw rambles)."""
    return f"Question: {question}\nAnswer:"


def leading_special_ids(tokenizer: Any) -> list[int]:
    """The special tokens the tokenizer puts before every text (Gemma's ``<bos>``; none for many models)."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    return full[:len(full) - len(plain)] if plain and full[len(full) - len(plain):] == plain else []


def prompt_token_ids(tokenizer: Any, prompt: str) -> list[int]:
    """A prompt's token ids as the model was pretrained to read them: with the tokenizer's leading special
    tokens (unless the text, such as a rendered chat template, already starts with them). A model that
    expects ``<bos>`` (Gemma) answers garbage without it, and its activations then have other directions."""
    leading = leading_special_ids(tokenizer)
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    return ids if ids[:len(leading)] == leading else leading + ids


def system_message(record: dict[str, Any]) -> str | None:
    """The record's system message, if it has one: some tasks answer in their trained format only with it."""
    return next((m["content"] for m in record.get("messages", []) if m["role"] == "system"), None)


def shown_prompt(record: dict[str, Any]) -> str:
    """The prompt as a person wrote it (not as a chat template renders it): a record's prompt, or the last user
    message before the target."""
    if "messages" not in record:
        return str(record["prompt"])
    messages = list(record["messages"])
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    return next((m["content"] for m in reversed(messages[:last]) if m["role"] == "user"), "")
