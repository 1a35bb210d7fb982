"""The continual-learning harness (bench/continual): library runs, user streams, and runs through a live
service with a real worker, each on a micro stream small enough for a test."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from bench.continual.__main__ import main
from bench.continual.streams import cipher_task

# Two tasks, trained long enough to be learned, so the matrices are not all zeros and a mix-up would show.
MICRO = ["--task-count", "2", "--train-size", "16", "--held-out", "8", "--epochs", "30", "--base-epochs", "10"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _last_json_line(capsys) -> dict:
    lines = capsys.readouterr().out.strip().splitlines()
    return json.loads(lines[-1])


def _valid_png(path) -> tuple[int, int]:
    assert path.read_bytes()[:8] == PNG_MAGIC, path
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        return image.size


def test_library_run_reports_every_figure_per_seed_and_aggregated_and_draws_pngs(tmp_path, capsys):
    out = tmp_path / "out"
    returned = main([*MICRO, "--strategies", "full,replay", "--seeds", "0,1", "--out", str(out)])
    printed = _last_json_line(capsys)
    assert printed == json.loads(json.dumps(returned))
    assert json.loads((out / "results.json").read_text()) == printed

    assert printed["stream"]["tasks"] == ["t01", "t02"]
    assert printed["stream"]["train_records"] == [16, 16] and printed["stream"]["held_out_records"] == [8, 8]
    assert "VmHWM" in printed["memory_measure"]
    assert 0.0 <= printed["base"]["general"] <= 1.0
    assert set(printed["strategies"]) == {"full", "replay"}
    for name, result in printed["strategies"].items():
        assert result["seeds"] == [0, 1]
        assert len(result["runs"]) == 2
        for run in result["runs"]:
            matrix = run["matrix"]
            assert len(matrix) == 2 and all(len(row) == 2 for row in matrix), name
            assert all(0.0 <= v <= 1.0 for row in matrix for v in row)
            # The figures are those of the matrix: ACC = mean of the last row, BWT = its drop on task 1,
            # forgetting = best earlier score on task 1 minus the final one.
            assert run["acc"] == pytest.approx((matrix[1][0] + matrix[1][1]) / 2)
            assert run["bwt"] == pytest.approx(matrix[1][0] - matrix[0][0])
            assert run["forgetting"] == pytest.approx(matrix[0][0] - matrix[1][0])
            assert run["learning_accuracy"] == pytest.approx((matrix[0][0] + matrix[1][1]) / 2)
            assert len(run["general"]) == 2
            assert run["general_drift"] == pytest.approx(run["general"][-1] - printed["base"]["general"])
            assert run["train_seconds"] > 0 and run["wall_seconds"] >= run["train_seconds"]
            assert run["peak_memory_mb"] > 0
        for key in ("acc", "bwt", "forgetting", "general_drift", "wall_seconds", "peak_memory_mb"):
            values = [run[key] for run in result["runs"]]
            assert result["mean"][key] == pytest.approx(sum(values) / 2)
            assert result["std"][key] == pytest.approx(abs(values[0] - values[1]) / 2 ** 0.5)
        assert len(result["matrix_mean"]) == 2
        assert result["mean"]["learning_accuracy"] > 0.5  # each task is learned when it is learned

    expected = ["heatmap-full.png", "heatmap-replay.png", "heatmaps.png", "cost.png"]
    for name in expected:
        width, height = _valid_png(out / name)
        assert width > 200 and height > 200


def _write(path, lines: list[str]) -> str:
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


def test_a_user_stream_is_read_with_the_service_parser_and_split_for_scoring(tmp_path, monkeypatch):
    from bench.continual import __main__ as harness

    records = cipher_task(1, 0, 10, 0).train
    first = _write(tmp_path / "refunds.jsonl", [json.dumps(r) for r in records])
    chat = [{"messages": [{"role": "user", "content": r["prompt"]},
                          {"role": "assistant", "content": r["completion"]}]} for r in records]
    second = _write(tmp_path / "shipping.jsonl", [json.dumps(r) for r in chat] + [""])

    args = harness.parse_args(["--tasks", first, second, "--held-out-fraction", "0.2", "--seeds", "0,1"])
    stream = args.streams[0]
    assert [t.name for t in stream] == ["refunds", "shipping"]
    assert [(len(t.train), len(t.held_out)) for t in stream] == [(8, 2), (8, 2)]
    assert sorted(map(json.dumps, stream[0].train + stream[0].held_out)) == sorted(map(json.dumps, records))
    assert stream[1].held_out[0]["messages"][1]["role"] == "assistant"
    assert [t.held_out for t in args.streams[1]] != [t.held_out for t in stream]  # the split follows the seed


def test_bad_jsonl_is_refused_before_training_with_the_file_and_lines(tmp_path, capsys):
    good = _write(tmp_path / "good.jsonl", [json.dumps(r) for r in cipher_task(1, 0, 4, 0).train])
    bad = _write(tmp_path / "bad.jsonl", ['{"prompt": "a", "completion": "b"}', "{not json",
                                          '{"prompt": "c"}', '{"text": "d"}'])
    with pytest.raises(SystemExit) as stopped:
        main(["--tasks", good, bad])
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert "bad.jsonl: not a Sculpt task file" in error
    assert "line 2: not valid JSON" in error
    assert "line 3: 'completion' (the target) must be a non-empty string" in error
    assert "line 4: expected {'prompt', 'completion'} or {'messages': [...]}" in error

    with pytest.raises(SystemExit):
        main(["--tasks", good, str(tmp_path / "missing.jsonl")])
    assert "missing.jsonl: cannot read it" in capsys.readouterr().err


@pytest.mark.timeout(180)
def test_via_api_runs_the_stream_through_a_live_service_and_reads_its_matrix(
        sqlite_env, live_url, workers, tmp_path, capsys):
    workers(1)
    base_dir = tmp_path / "bench-base"  # inside SCULPT_MODEL_ROOTS (the test's tmp_path)
    # No reference prior: the tiny model's reference set is the general task's texts, the very inputs its
    # tasks share, and keeping them leaves its second task too little room to be learned (bench/RESULTS.md).
    result = main([*MICRO, "--via-api", live_url, "--strategies", "adaptive_svd", "--base-dir", str(base_dir),
                   "--out", str(tmp_path / "out"), "--job-timeout", "150", "--reference-share", "0"])
    assert _last_json_line(capsys) == json.loads(json.dumps(result))
    assert result["via_api"] == live_url
    (run,) = result["strategies"]["adaptive_svd"]["runs"]
    assert run["versions"] == [2, 3]
    matrix = run["matrix"]
    assert len(matrix) == 2 and all(len(row) == 2 for row in matrix)
    assert matrix[0][0] is not None and matrix[1][0] is not None and matrix[1][1] is not None
    assert run["acc"] == pytest.approx((matrix[1][0] + matrix[1][1]) / 2)
    assert run["bwt"] == pytest.approx(matrix[1][0] - matrix[0][0])
    assert run["general"]["perplexity_ratio"] > 0
    assert run["perplexity_ratio"] == run["general_after_each_task"]["perplexity_ratio"][-1] > 0
    assert run["general_kept"] is None  # a tiny model answers too few general questions to measure it
    assert run["train_seconds"] > 0
    first, second = run["kept_room"]  # from each version's retention summary, as the service shows it
    assert all(0 < room[k] <= 1 for room in (first, second) for k in room) and second["ratio"] > first["ratio"]

    import httpx

    record = httpx.get(f"{live_url}/v1/models/{run['model']}/evaluations").json()
    assert record["tasks"] == ["t01", "t02"] and record["acc"] == run["acc"]
    rows = dict(zip(record["versions"], record["matrix"], strict=True))
    assert matrix == [rows[2], rows[3]]  # row t: the version that learned task t
    assert matrix[1][1] > 0.5 and matrix[0] != matrix[1]
    jobs = httpx.get(f"{live_url}/v1/fine_tuning/jobs", params={"limit": 10}).json()["data"]
    assert sorted(j["continual"]["task"] for j in jobs) == ["t01", "t02"]
    assert all(j["continual"]["strategy"] == "adaptive_svd" and j["hyperparameters"]["n_epochs"] == 30
               and j["continual"]["retention"]["reference_share"] == 0 for j in jobs)
    _valid_png(tmp_path / "out" / "heatmap-adaptive_svd.png")


def test_peft_osf_and_replay_train_in_the_engines_loop_with_its_nan_guard():
    from bench.continual.strategies import TrainSettings, learn
    from worker.engine import NonFiniteLoss
    from worker.tiny import build_tiny_causal_lm

    records = cipher_task(1, 0, 8, 0).train
    for strategy in ("peft_osf", "replay"):
        model, tokenizer = build_tiny_causal_lm()
        model.model.layers[0].mlp.register_forward_hook(lambda _m, _a, out: out * float("nan"))
        with pytest.raises(NonFiniteLoss, match="at step 1 "):
            learn(strategy, model, tokenizer, records, [records], records, TrainSettings(1, 1e-3, 4, 2), seed=0)


def test_the_real_model_runs_its_chat_stream_with_each_strategys_own_learning_rate():
    from bench.continual import __main__ as harness
    from bench.continual.strategies import _config

    args = harness.parse_args(["--model", "smollm2-135m"])
    assert [t.name for t in args.streams[0]] == ["tickets", "contacts", "dates", "dock"]
    assert all((len(t.train), len(t.held_out)) == (32, 16) for t in args.streams[0])
    assert args.strategies == ["full", "lora", "adaptive_svd", "adaptive_svd_replay", "peft_osf", "replay"]
    settings = harness.TrainSettings(args.epochs, args.lr, args.batch_size, args.replay_per_task)
    assert _config("lora", settings, 0).learning_rate == 1e-3 and _config("replay", settings, 0).learning_rate == 1e-4
    assert harness.parse_args(["--model", "smollm2-135m", "--lr", "0.01"]).lr == 0.01
    assert harness.parse_args(["--model", "smollm2-135m", "--via-api", "http://127.0.0.1:1"]).via_api


def test_the_real_models_long_stream_is_twelve_distinct_tasks_of_the_kinds_users_post():
    from bench.continual import __main__ as harness

    args = harness.parse_args(["--model", "smollm2-135m", "--stream", "long"])
    stream = args.streams[0]
    assert [t.name for t in stream[:4]] == ["tickets", "contacts", "dates", "dock"] and len(stream) == 12
    assert {"orders", "tool-calls", "word-problems", "past-tense", "sentiment"} <= {t.name for t in stream}
    assert all((len(t.train), len(t.held_out)) == (32, 16) for t in stream)
    prompts = [[r["messages"][0]["content"] for r in t.train + t.held_out] for t in stream]
    assert all(len(set(p)) == 48 for p in prompts)  # no held-out item is also trained on
    assert len({p for task in prompts for p in task}) == 12 * 48  # no item belongs to two tasks
    tool_call = json.loads(next(t for t in stream if t.name == "tool-calls").train[0]["messages"][1]["content"])
    assert tool_call["tool"] in ("get_weather", "book_meeting") and tool_call["arguments"]
    base_form = harness.parse_args(["--model", "gemma3-270m", "--stream", "long"]).streams[0]
    assert base_form[7].train[0]["prompt"].endswith("\nAnswer:")  # a base model's prompt/completion form
    assert harness.parse_args(["--model", "smollm2-135m"]).streams[0][-1].name == "dock"


def test_each_version_reports_the_room_it_kept_so_a_long_stream_shows_it_running_out():
    from bench.continual.strategies import TrainSettings, kept_room, learn
    from worker.tiny import build_tiny_causal_lm

    records = cipher_task(1, 0, 8, 0).train
    model, tokenizer = build_tiny_causal_lm()
    settings = TrainSettings(1, 1e-3, 4, 2)
    first = kept_room(learn("adaptive_svd", model, tokenizer, records, [], records, settings, seed=0).retention)
    later = kept_room(learn("adaptive_svd", model, tokenizer, records, [records] * 3, records, settings,
                            seed=0).retention)
    assert all(0.0 < first[k] <= 1.0 for k in ("ratio", "inputs", "frozen")), first
    assert later["ratio"] > first["ratio"]  # three tasks learned: more of each matrix is kept
    assert kept_room(learn("full", model, tokenizer, records, [], records, settings, seed=0).retention) is None


def test_through_the_service_replay_is_the_jobs_rehearsal_option():
    from bench.continual.strategies import TrainSettings
    from bench.continual.via_api import _continual

    settings = TrainSettings(2, None, 8, replay_per_task=4)
    assert _continual("adaptive_svd_replay", "t", settings) == {
        "task": "t", "strategy": "adaptive_svd", "learning_rate": None, "replay": 4}
    replay = _continual("replay", "t", settings)
    assert replay["strategy"] == "full" and replay["replay"] == 4
    assert "replay" not in _continual("adaptive_svd", "t", settings)
    assert _continual("adaptive_svd_fixed", "t", settings)["retention"] == {"mode": "fixed"}


def test_a_base_saved_over_another_models_folder_keeps_nothing_of_it(tmp_path, capsys):
    # A chat model's chat_template.jinja left beside a base model's files made the service ask the base
    # model in chat form.
    from transformers import AutoTokenizer

    from bench.continual.via_api import save_base
    from worker.tiny import build_tiny_causal_lm

    folder = tmp_path / "bench-base"
    chat_model, chat_tokenizer = build_tiny_causal_lm()
    chat_tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    save_base(chat_model, chat_tokenizer, folder)
    assert any("chat_template" in p.name for p in folder.iterdir())
    base_model, base_tokenizer = build_tiny_causal_lm()
    base_tokenizer.chat_template = None  # a pretrained base: no chat template
    save_base(base_model, base_tokenizer, folder)
    assert AutoTokenizer.from_pretrained(folder).chat_template is None

    # A folder of other files is refused before anything is built, and left as it was.
    other = tmp_path / "notes"
    other.mkdir()
    (other / "mine.txt").write_text("keep me")
    with pytest.raises(SystemExit):
        main([*MICRO, "--via-api", "http://127.0.0.1:9", "--base-dir", str(other)])
    assert "not a saved model" in capsys.readouterr().err
    assert (other / "mine.txt").read_text() == "keep me"
