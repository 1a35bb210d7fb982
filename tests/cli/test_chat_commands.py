"""``sculpt chat`` and ``sculpt compare`` against a real server and inference process: the answers are the
versions' greedy answers, streamed for chat, side by side for compare."""

from __future__ import annotations

import io
import json

from tests.cli.test_client_commands import run
from tests.inference.serve_process import PROMPT, greedy, inference_process, two_versions


def test_chat_and_compare(capsys, live_url, tmp_path, monkeypatch):
    two_versions(live_url, tmp_path)
    with inference_process(tmp_path / "inference.log"):
        head, base = greedy(live_url, "bot:v2"), greedy(live_url, "bot:v1")
        code, out, _ = run(capsys, live_url, "chat", "bot", "--prompt", PROMPT, "--max-tokens", "24")
        assert code == 0 and out == head + "\n"

        code, out, _ = run(capsys, live_url, "compare", "bot:v2", "bot@previous", "--prompt", PROMPT,
                           "--max-tokens", "24")
        assert code == 0
        assert f"== bot:v2 (bot:v2, learned alpha)\n{head}\n" in out
        assert f"== bot@previous (bot:v1, the base model)\n{base}\n" in out
        code, out, _ = run(capsys, live_url, "compare", "bot:v2", "bot:v1", "--prompt", PROMPT,
                           "--max-tokens", "24", "--json")
        assert {m: r["choices"][0]["message"]["content"] for m, r in json.loads(out).items()} == {
            "bot:v2": head, "bot:v1": base}

        # Interactive: each line a turn, the conversation kept, until end of input.
        monkeypatch.setattr("sys.stdin", io.StringIO(f"{PROMPT}\n\n{PROMPT}\n"))
        code, out, err = run(capsys, live_url, "chat", "bot:v2", "--max-tokens", "24")
        assert code == 0 and out.startswith(f"you> {head}\n") and out.count("\n") == 2 and "chatting with" in err

        code, _, err = run(capsys, live_url, "chat", "bot:v9", "--prompt", "hi")
        assert code == 1 and "does not exist" in err
