"""The inference process's engine, in process on tiny models: requests that arrive together are decoded
as one batch and each gets what it would alone (greedy: what ``generate`` gives); seeds, n, stop and
max_tokens act per request; versions stay loaded within the memory budget, least recently used out first."""

from __future__ import annotations

import queue

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from worker.inference import engine as generation
from worker.tiny import build_tiny_causal_lm

PROMPTS = ["alpha 1:", "a much longer prompt, to be left padded against the short one:"]


@pytest.fixture
def folders(sqlite_env, tmp_path):
    paths = {}
    for seed in (0, 1):
        paths[seed] = tmp_path / f"tiny-{seed}"
        build_tiny_causal_lm(paths[seed], seed=seed)
    return paths


def request(folder, **fields) -> tuple[generation.Request, queue.Queue]:
    events: queue.Queue = queue.Queue()
    return generation.Request(name=folder.name, checkpoint_uri=str(folder), checkpoint_sha256=None,
                              sink=events.put, **{"max_tokens": 12, **fields}), events


def answers(events: queue.Queue, n: int = 1) -> tuple[list[str], list[str], int]:
    """(text per choice, finish reason per choice, completion tokens) once every choice finished."""
    texts, reasons, tokens, open_choices = [""] * n, [""] * n, 0, n
    while open_choices:
        event = events.get(timeout=120)
        assert event["type"] != "error", event
        if event["type"] == "delta":
            texts[event["index"]] += event["text"]
        elif event["type"] == "finish":
            reasons[event["index"]], open_choices = event["reason"], open_choices - 1
            tokens += event["completion_tokens"]
    return texts, reasons, tokens


@pytest.fixture
def engine():
    started = generation.Engine(budget_bytes=1 << 30, device="cpu", max_batch=8, batch_wait_s=0.05)
    started.start()
    yield started
    started.stop()


def direct_greedy(folder, prompt: str, max_tokens: int) -> str:
    model, tokenizer = AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
    out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=max_tokens,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


def test_requests_arriving_together_are_one_batch_and_each_gets_its_own_answer(engine, folders, monkeypatch):
    batches = []
    decode = generation.decode
    monkeypatch.setattr(generation, "decode", lambda model, tok, rows: (batches.append(len(rows)),
                                                                          decode(model, tok, rows)))
    greedy = [request(folders[0], prompt=p, temperature=0) for p in PROMPTS]
    seeded = request(folders[0], prompt=PROMPTS[0], temperature=1.0, seed=7, n=2)
    for r, _ in [*greedy, seeded]:
        engine.submit(r)
    together = [answers(events)[0][0] for _, events in greedy]
    both_seeded = answers(seeded[1], n=2)[0]
    assert batches == [4]  # two greedy rows and the seeded request's two choices, decoded as one batch

    assert together == [direct_greedy(folders[0], p, 12) for p in PROMPTS]
    alone, events = request(folders[0], prompt=PROMPTS[0], temperature=1.0, seed=7, n=2)
    engine.submit(alone)
    assert answers(events, n=2)[0] == both_seeded  # a seeded request answers the same alone or in a batch
    assert batches == [4, 2]


def test_stop_max_tokens_and_top_p_act_per_request(engine, folders):
    full, events = request(folders[0], prompt=PROMPTS[0], temperature=0, max_tokens=12)
    engine.submit(full)
    (text,), (reason,), tokens = answers(events)
    assert reason == "length" and tokens == 12 and len(text) >= 6  # one byte a token, none eos here
    stop = text[3:5]
    cut, events = request(folders[0], prompt=PROMPTS[0], temperature=0, stop=[stop])
    engine.submit(cut)
    (stopped,), (reason,), _ = answers(events)
    assert stopped == text[:text.index(stop)] and reason == "stop"  # the stop sequence itself is not sent
    short, events = request(folders[0], prompt=PROMPTS[0], temperature=0, max_tokens=3)
    engine.submit(short)
    assert answers(events) == ([text[:3]], ["length"], 3)
    nucleus, events = request(folders[0], prompt=PROMPTS[0], temperature=1.5, top_p=1e-6, seed=3)
    engine.submit(nucleus)
    assert answers(events)[0] == [text]  # a tiny top_p keeps only the most likely token: greedy's answer


def test_loaded_versions_stay_within_the_memory_budget_least_recently_used_out_first(folders):
    size = generation._memory(AutoModelForCausalLM.from_pretrained(folders[0]))
    pool = generation.ModelPool(budget_bytes=int(size * 1.5), device="cpu")  # room for one tiny model
    first, second = (request(folders[s], prompt="x")[0] for s in (0, 1))
    pool.get(first)
    assert pool.names() == ["tiny-0"]
    pool.get(second)
    assert pool.names() == ["tiny-1"]  # the older one went to make room
    roomy = generation.ModelPool(budget_bytes=size * 3, device="cpu")
    roomy.get(first)
    roomy.get(second)
    roomy.get(first)  # used again: now the most recent
    assert roomy.names() == ["tiny-1", "tiny-0"]
    assert roomy.get(first) is roomy.get(first)  # held, not loaded again


def test_a_gone_checkpoint_is_a_404_event_and_the_engine_keeps_serving(engine, folders, tmp_path):
    missing, events = request(tmp_path / "nothing-here", prompt="x")
    engine.submit(missing)
    event = events.get(timeout=60)
    assert event["type"] == "error" and event["status"] == 404 and event["code"] == "model_not_found"
    fine, events = request(folders[0], prompt="x", temperature=0, max_tokens=2)
    engine.submit(fine)
    assert answers(events)[1] in (["length"], ["stop"])


def test_a_cancelled_request_stops_decoding_and_the_next_is_served(engine, folders):
    long, events = request(folders[0], prompt=PROMPTS[0], temperature=0, max_tokens=500)
    seen = []

    def sink(event):  # the API's client went away after the first piece of text
        seen.append(event)
        long.cancelled = long.cancelled or event["type"] == "delta"

    long.sink = sink
    engine.submit(long)
    after, events = request(folders[0], prompt="x", temperature=0, max_tokens=2)
    engine.submit(after)
    assert answers(events)[1] in (["length"], ["stop"])
    assert long.cancelled and sum(e["type"] == "delta" for e in seen) == 1  # not 500 tokens decoded for no one


def test_a_corrupted_checkpoint_is_a_503_with_the_reason(engine, folders):
    weights = next(folders[1].glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # cut short, as a broken copy is
    broken, events = request(folders[1], prompt="x")
    engine.submit(broken)
    event = events.get(timeout=60)
    assert event["type"] == "error" and event["status"] == 503 and event["code"] == "checkpoint_unavailable", event
    assert "tiny-1" in event["message"] and "cannot be loaded" in event["message"]
    fine, events = request(folders[0], prompt="x", temperature=0, max_tokens=2)
    engine.submit(fine)
    assert answers(events)[1] in (["length"], ["stop"])
