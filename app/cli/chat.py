"""``sculpt chat`` and ``sculpt compare``: talk to a version, or put two versions' answers side by side,
through the server's OpenAI-compatible /v1/chat/completions."""

from __future__ import annotations

import sys

from app.cli import output
from app.cli.http_client import SculptClient


def _body(args, model: str, messages: list[dict]) -> dict:
    return {"model": model, "messages": messages, "max_tokens": args.max_tokens, "temperature": args.temperature,
            **({"seed": args.seed} if args.seed is not None else {})}


def _opening(args) -> list[dict]:
    return [{"role": "system", "content": args.system}] if args.system else []


def chat(client: SculptClient, args) -> int:
    """One answer to --prompt, or a conversation: each line you type is a turn, until end of input."""
    messages = _opening(args)
    if args.prompt is not None and args.json:
        output.as_json(client.post("/v1/chat/completions", _body(args, args.model, [
            *messages, {"role": "user", "content": args.prompt}])))
        return 0
    interactive = args.prompt is None
    if interactive:
        print(f"chatting with {args.model}; end with Ctrl-D", file=sys.stderr)
    while True:
        if interactive:
            try:
                text = input("you> ")
            except EOFError:
                print(file=sys.stderr)
                return 0
            if not text.strip():
                continue
        else:
            text = args.prompt
        messages.append({"role": "user", "content": text})
        pieces = []
        for piece in client.stream_chat(_body(args, args.model, messages)):
            pieces.append(piece)
            print(piece, end="", flush=True)
        print()
        if not interactive:
            return 0
        messages.append({"role": "assistant", "content": "".join(pieces)})


def compare(client: SculptClient, args) -> int:
    """Each version's answer to the same prompt, one under the other, with the tasks each learned."""
    messages = [*_opening(args), {"role": "user", "content": args.prompt}]
    replies = {model: client.post("/v1/chat/completions", _body(args, model, messages)) for model in args.models}
    if args.json:
        output.as_json(replies)
        return 0
    for model, reply in replies.items():
        version = client.get(f"/v1/models/{reply['model']}")
        task = f"learned {version['task']}" if version.get("task") else "the base model"
        print(f"== {model} ({reply['model']}, {task})")
        print(reply["choices"][0]["message"]["content"])
        print()
    return 0
