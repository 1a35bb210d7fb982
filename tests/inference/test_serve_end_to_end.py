"""The proof: against `sculpt serve` (API, embedded worker, embedded inference process), train two tasks on
a tiny model, then the openai client's chat.completions and completions on bot:v2 and bot:v3, streaming
and not, give exactly what each checkpoint gives loaded directly with from_pretrained and greedy generate.
Killing the inference process then turns requests into a clear 503."""

from __future__ import annotations

import os
import signal
import time

import httpx
import openai
import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from tests.inference.serve_process import inference_servers, sculpt_serve
from tests.worker.harness import records, submit, upload, wait_for

MAX_TOKENS = 8
JOB_TIMEOUT = 900
MESSAGES = [{"role": "user", "content": "alpha 1:"}]


def direct_greedy(folder: str, prompt: str) -> str:
    model, tokenizer = AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
    out = model.generate(ids, attention_mask=ids.new_ones(ids.shape), do_sample=False, max_new_tokens=MAX_TOKENS,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


def chat_prompt(folder: str) -> str:
    return AutoTokenizer.from_pretrained(folder).apply_chat_template(MESSAGES, tokenize=False,
                                                                     add_generation_prompt=True)


@pytest.mark.timeout(2400)
def test_openai_client_against_sculpt_serve_answers_as_the_checkpoints_do(sqlite_env, tiny_base, tmp_path):
    with sculpt_serve(tmp_path / "serve.log") as url:
        http = httpx.Client(base_url=url, timeout=60)
        assert http.post("/v1/models", json={"id": "bot", "base_model": str(tiny_base)}).status_code == 201
        jobs = [submit(http, "bot", upload(http, records(task)), task) for task in ("alpha", "beta")]
        # Generous: the shared test machine may be slow; serve's own embedded worker trains them.
        assert [wait_for(http, job, timeout=JOB_TIMEOUT)["fine_tuned_model"] for job in jobs] == ["bot:v2", "bot:v3"]
        versions = {v["version"]: v for v in http.get("/v1/models/bot/versions").json()["data"]}
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused-when-open", max_retries=0)
        answers = {}
        for n in (2, 3):
            name, folder = f"bot:v{n}", versions[n]["checkpoint_uri"]
            expected_chat = direct_greedy(folder, chat_prompt(folder))
            reply = client.chat.completions.create(model=name, messages=MESSAGES, temperature=0,
                                                   max_tokens=MAX_TOKENS)
            assert reply.model == name and reply.object == "chat.completion"
            assert reply.choices[0].message.content == expected_chat
            assert reply.choices[0].finish_reason in ("stop", "length")
            assert reply.usage.prompt_tokens > 0  # the answer may be eos at once: no completion tokens
            assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
            chunks = list(client.chat.completions.create(model=name, messages=MESSAGES, temperature=0,
                                                         max_tokens=MAX_TOKENS, stream=True,
                                                         stream_options={"include_usage": True}))
            assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == expected_chat
            assert chunks[-1].usage.total_tokens == reply.usage.total_tokens

            expected_text = direct_greedy(folder, "alpha 1:")
            completion = client.completions.create(model=name, prompt="alpha 1:", temperature=0,
                                                   max_tokens=MAX_TOKENS)
            assert completion.choices[0].text == expected_text
            streamed = client.completions.create(model=name, prompt="alpha 1:", temperature=0,
                                                 max_tokens=MAX_TOKENS, stream=True)
            assert "".join(c.choices[0].text for c in streamed) == expected_text
            assert completion.usage.completion_tokens > 0
            answers[n] = expected_text
        head = client.completions.create(model="bot", prompt="alpha 1:", temperature=0, max_tokens=MAX_TOKENS)
        previous = client.completions.create(model="bot@previous", prompt="alpha 1:", temperature=0,
                                             max_tokens=MAX_TOKENS)
        assert (head.model, head.choices[0].text) == ("bot:v3", answers[3])
        assert (previous.model, previous.choices[0].text) == ("bot:v2", answers[2])
        assert {"bot:v2", "bot:v3"} <= {m.id for m in client.models.list()}

        (server,) = inference_servers()
        assert server["url"].startswith("http://127.0.0.1:")  # serve's embedded process listens on loopback only
        os.kill(int(server["id"].split("-", 1)[1].split("@")[0]), signal.SIGKILL)
        started = time.monotonic()
        with pytest.raises(openai.InternalServerError) as gone:
            client.chat.completions.create(model="bot:v3", messages=MESSAGES, max_tokens=MAX_TOKENS)
        assert gone.value.status_code == 503 and time.monotonic() - started < 30
