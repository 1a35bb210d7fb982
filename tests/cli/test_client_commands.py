"""``sculpt models|files|jobs|eval`` against a real server over HTTP: tables, --json, errors, and
``jobs watch`` exit codes that follow a real worker's job."""

from __future__ import annotations

import json

import pytest

from app.cli.main import main
from tests.worker.harness import jsonl, records


def run(capsys, url: str, *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--url", url])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def dataset(tmp_path):
    path = tmp_path / "alpha.jsonl"
    path.write_bytes(jsonl(records("alpha")))
    return path


def test_models_files_and_jobs_as_tables_and_json(capsys, live_url, base_model_dir, dataset):
    code, out, _ = run(capsys, live_url, "models", "create", "bot", str(base_model_dir))
    assert code == 0 and "head        v1" in out
    code, out, _ = run(capsys, live_url, "models", "list")
    assert code == 0 and out.splitlines()[0].split()[:3] == ["ID", "HEAD", "VERSIONS"]
    assert out.splitlines()[1].split()[:3] == ["bot", "v1", "1"]
    code, out, _ = run(capsys, live_url, "models", "show", "bot", "--json")
    shown = json.loads(out)
    assert code == 0 and shown["model"]["id"] == "bot" and shown["versions"][0]["status"] == "base"

    code, out, _ = run(capsys, live_url, "files", "upload", str(dataset), "--json")
    file_id = json.loads(out)["id"]
    code, out, _ = run(capsys, live_url, "files", "list")
    assert code == 0 and file_id in out and "alpha.jsonl" in out

    code, out, _ = run(capsys, live_url, "jobs", "create", "--model", "bot", "--training-file", str(dataset),
                       "--task", "alpha", "--epochs", "1", "--metadata", "pipeline=ci", "--json")
    job = json.loads(out)
    assert code == 0 and job["status"] == "queued" and job["metadata"] == {"pipeline": "ci"}
    assert job["training_file"].startswith("file-") and job["training_file"] != file_id  # uploaded anew
    code, out, _ = run(capsys, live_url, "jobs", "list")
    assert code == 0 and job["id"] in out and "queued" in out
    code, out, _ = run(capsys, live_url, "jobs", "show", job["id"])
    assert code == 0 and "alpha" in out and "n_epochs" in out

    code, out, _ = run(capsys, live_url, "jobs", "cancel", job["id"])
    assert code == 0 and "cancelled" in out
    code, out, _ = run(capsys, live_url, "jobs", "watch", job["id"])
    assert code == 4 and f"{job['id']} cancelled" in out

    code, out, _ = run(capsys, live_url, "eval", "show", "bot")
    assert code == 0 and out.startswith("VERSION") and "ACC -" in out


def test_errors_print_the_api_message_and_exit_non_zero(capsys, live_url, tmp_path):
    code, out, err = run(capsys, live_url, "models", "show", "ghost")
    assert code == 1 and out == "" and "No model" in err and "HTTP 404" in err and "Traceback" not in err

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "hi"}\nnot json\n')
    code, _, err = run(capsys, live_url, "files", "upload", str(bad))
    assert code == 1 and "line 1" in err and "HTTP 422" in err

    code, _, err = run(capsys, live_url, "jobs", "create", "--model", "ghost", "--training-file", "file-nope")
    assert code == 1 and "HTTP 404" in err

    code, _, err = run(capsys, "http://127.0.0.1:9", "jobs", "list")
    assert code == 1 and "cannot reach http://127.0.0.1:9" in err


def test_strategy_choices_are_the_servers(capsys, live_url, base_model_dir, dataset):
    from app.jobs import strategies as specs

    assert run(capsys, live_url, "models", "create", "bot", str(base_model_dir))[0] == 0
    code, out, err = run(capsys, live_url, "jobs", "create", "--model", "bot", "--training-file", str(dataset),
                         "--strategy", "magic")
    assert code == 1 and out == ""
    assert f"'magic' is not one of this server's strategies: {', '.join(specs.names())}" in err
    specs.register(specs.StrategySpec("norms_only", "A strategy only this test's server has."))
    try:  # a plug-in of the server is a choice, though this client has no copy of its name
        code, out, err = run(capsys, live_url, "jobs", "create", "--model", "bot", "--training-file", str(dataset),
                             "--strategy", "norms_only", "--replay", "3", "--json")
    finally:
        specs.unregister("norms_only")
    assert code == 0, err
    assert json.loads(out)["continual"]["strategy"] == "norms_only"
    assert json.loads(out)["continual"]["replay"] == 3  # rehearsal works with every strategy


def test_a_key_is_sent_and_a_wrong_one_refused(capsys, live_url, monkeypatch):
    from app.core.db.session import new_session
    from app.keys.service import create_key

    with new_session() as session:
        secret = create_key(session, "ci")
    code, _, err = run(capsys, live_url, "models", "list")
    assert code == 1 and "Missing API key" in err
    code, _, err = run(capsys, live_url, "models", "list", "--api-key", "sk-wrong")
    assert code == 1 and "Invalid or revoked API key" in err
    monkeypatch.setenv("SCULPT_API_KEY", secret)
    code, out, _ = run(capsys, live_url, "models", "list")
    assert code == 0 and "(none)" in out


def test_watch_exits_zero_on_success_and_non_zero_on_failure(capsys, live_url, tiny_base, base_model_dir,
                                                              dataset, workers):
    # base_model_dir has a config but no real weights: its job fails while loading.
    assert run(capsys, live_url, "models", "create", "bot", str(tiny_base))[0] == 0
    assert run(capsys, live_url, "models", "create", "broken", str(base_model_dir))[0] == 0
    workers(1)

    code, out, err = run(capsys, live_url, "jobs", "create", "--model", "bot", "--training-file", str(dataset),
                         "--task", "alpha", "--epochs", "1", "--batch-size", "4", "--learning-rate", "0.003",
                         "--watch")
    assert code == 0, out + err
    for phase in ("loading", "evaluating base", "calibrating", "decomposing", "training", "evaluating", "saving"):
        assert f"  {phase} done in" in out
    assert "succeeded: bot:v2 promoted to head" in out

    code, out, _ = run(capsys, live_url, "jobs", "create", "--model", "broken", "--training-file", str(dataset),
                       "--task", "alpha", "--json")
    failing = json.loads(out)["id"]
    code, out, _ = run(capsys, live_url, "jobs", "watch", failing)
    assert code == 3 and f"{failing} failed: " in out

    code, out, _ = run(capsys, live_url, "jobs", "watch", failing, "--json")
    events = [json.loads(line) for line in out.splitlines()]
    assert code == 3 and events[-1]["event"] == "progress" and events[-1]["data"]["status"] == "failed"

    code, out, _ = run(capsys, live_url, "eval", "show", "bot")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["VERSION", "ALPHA"]
    assert [line.split()[0] for line in lines[1:3]] == ["v1", "v2"]  # the base's baseline, then the new version
    assert "ACC " in out and "BWT " in out
    assert any(line.startswith("general ") and "perplexity_ratio" in line for line in lines)
    # A tiny model's base answers none of the general questions, so later versions are asked none.
    assert any(line.startswith("general_answers ") and "base_right 0" in line and "asked 0" in line for line in lines)

    code, out, _ = run(capsys, live_url, "models", "rollback", "bot", "--reason", "v2 regressed")
    assert code == 0 and "head is now v1" in out
    code, _, err = run(capsys, live_url, "models", "rollback", "bot", "--reason", "again")
    assert code == 1 and "v1 of bot is the base" in err
    code, out, _ = run(capsys, live_url, "models", "promote", "bot", "2", "--reason", "fixed after all", "--json")
    assert code == 0 and json.loads(out)["head"] == 2
    code, out, _ = run(capsys, live_url, "models", "show", "bot")
    assert code == 0 and "v2 regressed" in out and "fixed after all" in out and "v2 (head)" in out


def test_global_options_work_before_the_command(capsys, live_url, base_model_dir):
    assert main(["--url", live_url, "models", "create", "bot", str(base_model_dir)]) == 0
    capsys.readouterr()
    code = main(["--url", live_url, "--json", "models", "list"])
    assert code == 0 and json.loads(capsys.readouterr().out)[0]["id"] == "bot"
    # After the command still works, and wins over what came before it.
    assert main(["--url", "http://127.0.0.1:9", "models", "list", "--url", live_url]) == 0


def test_bad_input_gets_one_line_and_nothing_is_uploaded(capsys, live_url, base_model_dir, dataset):
    code, out, err = run(capsys, live_url, "models", "create", "bot", str(base_model_dir), "--gates", "notjson")
    assert code == 1 and "--gates takes a JSON object" in err and "Traceback" not in err + out
    assert run(capsys, live_url, "models", "create", "bot", str(base_model_dir))[0] == 0

    code, _, err = run(capsys, live_url, "jobs", "create", "--model", "bot", "--training-file", str(dataset),
                       "--metadata", "no-equals-sign")
    assert code == 1 and "--metadata takes KEY=VALUE" in err
    code, _, err = run(capsys, live_url, "jobs", "create", "--model", "bot", "--training-file", str(dataset),
                       "--gates", "[1, 2]")
    assert code == 1 and "--gates takes a JSON object" in err
    assert json.loads(run(capsys, live_url, "files", "list", "--json")[1]) == []  # nothing was uploaded

    code, _, err = run(capsys, live_url, "jobs", "create", "--model", "bot", "--training-file", "alpah.jsonl")
    assert code == 1 and "alpah.jsonl does not exist" in err
    code, _, err = run(capsys, live_url, "files", "upload", str(dataset.parent / "missing.jsonl"))
    assert code == 1 and "missing.jsonl does not exist" in err


def test_files_page_like_the_api_and_the_api_s_resources_have_commands(capsys, live_url, base_model_dir, dataset):
    from datetime import UTC, datetime

    from sqlalchemy import update

    from app.core.db.session import session_scope
    from app.core.db.tables import Job

    ids = [json.loads(run(capsys, live_url, "files", "upload", str(dataset), "--json")[1])["id"] for _ in range(3)]
    code, out, err = run(capsys, live_url, "files", "list", "--limit", "2")
    assert code == 0 and ids[2] in out and ids[1] in out and ids[0] not in out
    assert f"more: sculpt files list --after {ids[1]}" in err
    code, out, err = run(capsys, live_url, "files", "list", "--limit", "2", "--after", ids[1])
    assert code == 0 and ids[0] in out and "more:" not in err

    code, out, _ = run(capsys, live_url, "files", "show", ids[0])
    assert code == 0 and "alpha.jsonl" in out and "sha256" in out
    code, out, _ = run(capsys, live_url, "files", "content", ids[0])
    assert code == 0 and out.encode() == dataset.read_bytes()
    code, out, _ = run(capsys, live_url, "files", "delete", ids[2])
    assert code == 0 and f"{ids[2]}: deleted" in out

    assert run(capsys, live_url, "models", "create", "bot", str(base_model_dir))[0] == 0
    code, out, _ = run(capsys, live_url, "models", "gates", "bot", '{"max_forgetting": 0.2}')
    assert code == 0 and "max_forgetting" in out and "0.2" in out
    code, out, _ = run(capsys, live_url, "models", "gates", "bot", "--json")
    assert code == 0 and json.loads(out) == {"max_forgetting": 0.2}
    code, _, err = run(capsys, live_url, "models", "suites", "bot", "--safety-file", ids[0])
    assert code == 1 and "safety" in err  # the server checks the file's purpose
    # A plug-in suite's file (the general-answers suite's purpose is 'general'), uploaded and chosen by purpose.
    general = dataset.parent / "general.jsonl"
    general.write_text(json.dumps({"prompt": "What is the capital of France?", "accept": ["Paris"]}) + "\n")
    code, out, _ = run(capsys, live_url, "files", "upload", str(general), "--purpose", "general", "--json")
    assert code == 0 and json.loads(out)["purpose"] == "general"
    code, out, _ = run(capsys, live_url, "models", "suites", "bot", "--suite", f"general={json.loads(out)['id']}")
    assert code == 0 and "general=file-" in out
    code, _, err = run(capsys, live_url, "models", "suites", "bot", "--suite", "general")
    assert code == 1 and "--suite takes KEY=VALUE" in err

    code, out, _ = run(capsys, live_url, "jobs", "create", "--model", "bot", "--training-file", ids[0], "--json")
    job = json.loads(out)["id"]
    code, out, _ = run(capsys, live_url, "jobs", "events", job, "--order", "asc")
    assert code == 0 and "Created fine-tuning job" in out
    code, out, _ = run(capsys, live_url, "jobs", "checkpoints", job, "--json")
    assert code == 0 and json.loads(out) == []
    code, out, _ = run(capsys, live_url, "workers", "list")
    assert code == 0 and out.split()[:4] == ["ID", "QUEUES", "STARTED", "SEEN"]

    with session_scope() as session:  # as if a worker were training it
        session.execute(update(Job).where(Job.id == job).values(status="running", started_at=datetime.now(UTC)))
    code, _, err = run(capsys, live_url, "models", "rollback", "bot", "1", "--reason", "test")
    assert code == 1 and "pass --force" in err and "force=true" not in err


def test_deleted_and_pinned_versions_say_so_and_a_version_is_named_either_way(capsys, live_url, base_model_dir):
    from sqlalchemy import update

    from app.core.db.session import session_scope
    from app.core.db.tables import ModelVersion
    from tests.versions.conftest import set_head, store_version

    assert run(capsys, live_url, "models", "create", "bot", str(base_model_dir))[0] == 0
    for version in (2, 3):
        store_version("bot", version)
    set_head("bot", 3)
    with session_scope() as session:  # what a worker records of the general-answers suite
        session.execute(update(ModelVersion).where(ModelVersion.version == 3).values(metrics={"general_answers": {
            "general_kept": 0.957, "lost": 3, "asked": 69}}))
    code, out, _ = run(capsys, live_url, "models", "delete", "bot:v2")
    assert code == 0 and out.startswith("bot:v2: deleted (its checkpoint is gone")
    assert "checkpoint    deleted" in out
    code, out, _ = run(capsys, live_url, "models", "pin", "bot", "v3")
    assert code == 0 and "stored, pinned" in out
    code, out, _ = run(capsys, live_url, "models", "show", "bot")
    rows = {line.split()[0]: line for line in out.split("Versions")[1].splitlines()[2:5]}
    assert "deleted" in rows["v2"] and "stored, pinned" in rows["v3"] and "stored" in rows["v1"]
    assert "GENERAL KEPT" in out and "0.957 (3 lost of 69 asked)" in rows["v3"]

    # 'id:vN' and 'id N' name a version in every command that takes one.
    code, out, _ = run(capsys, live_url, "models", "promote", "bot:v1", "--reason", "back to the base")
    assert code == 0 and "head is now v1" in out
    code, out, _ = run(capsys, live_url, "models", "promote", "bot", "3", "--reason", "forward again")
    assert code == 0 and "head is now v3" in out
    code, _, err = run(capsys, live_url, "models", "promote", "bot:v3", "1", "--reason", "which?")
    assert code == 1 and "give one" in err
    code, _, err = run(capsys, live_url, "models", "promote", "bot", "--reason", "which?")
    assert code == 1 and "which version of 'bot'" in err


def test_a_reader_that_stops_early_gets_no_error_and_the_more_hint_comes_last(live_url, dataset):
    import os
    import subprocess
    import sys

    for _ in range(2):
        assert main(["files", "upload", str(dataset), "--url", live_url]) == 0
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # as stdout into a pipe is
    both = subprocess.run([sys.executable, "-m", "app.cli.main", "files", "list", "--limit", "1", "--url", live_url],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120, env=buffered)
    assert both.stdout.startswith("ID ") and both.stdout.splitlines()[-1].startswith("more: sculpt files list")
    assert both.stdout.endswith("\n")
    read, write = os.pipe()
    os.close(read)  # as `| head` does once it has its lines
    done = subprocess.run([sys.executable, "-m", "app.cli.main", "files", "list", "--url", live_url], stdout=write,
                          stderr=subprocess.PIPE, text=True, timeout=120)
    os.close(write)
    assert done.returncode == 0 and done.stderr == ""


def test_a_refused_job_leaves_no_uploads_behind(capsys, live_url, base_model_dir, dataset):
    code, _, err = run(capsys, live_url, "jobs", "create", "--model", "no-such-lineage", "--training-file",
                       str(dataset), "--task", "x")
    assert code == 1 and "no-such-lineage" in err and "HTTP 404" in err
    assert json.loads(run(capsys, live_url, "files", "list", "--json")[1]) == []  # checked before uploading

    assert run(capsys, live_url, "models", "create", "bot", str(base_model_dir))[0] == 0
    held_out = dataset.parent / "held-out.jsonl"
    held_out.write_bytes(jsonl(records("omega", 4)))
    # Refused by the server after both files went up (a gate threshold out of range): both are taken back.
    code, _, err = run(capsys, live_url, "jobs", "create", "--model", "bot", "--training-file", str(dataset),
                       "--validation-file", str(held_out), "--gates", '{"max_forgetting": 5}')
    assert code == 1 and "max_forgetting" in err
    assert json.loads(run(capsys, live_url, "files", "list", "--json")[1]) == []


def test_a_matrix_cell_opens_its_examples_beside_the_previous_versions_answers(capsys, live_url, tiny_base,
                                                                                 dataset, tmp_path):
    import httpx

    from worker.scheduler import run_lineage_for

    assert run(capsys, live_url, "models", "create", "bot", str(tiny_base))[0] == 0
    beta = tmp_path / "beta.jsonl"
    beta.write_bytes(jsonl(records("beta")))
    for task, path in (("alpha", dataset), ("beta", beta)):
        code, out, err = run(capsys, live_url, "jobs", "create", "--model", "bot", "--training-file", str(path),
                             "--task", task, "--epochs", "1", "--batch-size", "4", "--learning-rate", "0.003",
                             "--json")
        assert code == 0, err
        run_lineage_for(json.loads(out)["id"], frozenset({"default"}))  # a real job, in this process

    # alpha's 10% held out (2 of 24 records), as v3 answers them beside v2 (which learned alpha).
    examples = httpx.get(f"{live_url}/v1/models/bot/versions/3/examples", params={"task": "alpha"}).json()["data"]
    assert len(examples) == 2 and all(e["prompt"].startswith("alpha ") for e in examples)
    assert all(e["previous_version"] == 2 and e["previous_answer"] is not None for e in examples)
    record = httpx.get(f"{live_url}/v1/models/bot/evaluations").json()
    cell = record["matrix"][record["versions"].index(3)][record["tasks"].index("alpha")]
    assert sum(e["score"] for e in examples) / 2 == cell  # the examples are what the cell's score rests on
    # A task learned at a version is compared with its parent's score before training on it.
    before = httpx.get(f"{live_url}/v1/models/bot/versions/3/examples", params={"task": "beta"}).json()["data"]
    assert {e["previous_version"] for e in before} == {2}

    code, out, _ = run(capsys, live_url, "eval", "show", "bot:v3", "--task", "alpha")
    lines = out.splitlines()
    assert code == 0 and lines[0] == "bot:v3 on alpha: 'before' is v2's answer, 'now' v3's"
    assert lines[1].split() == ["#", "CHANGE", "PROMPT", "REFERENCE", "BEFORE", "NOW"]
    assert examples[0]["prompt"] in lines[2]
    code, _, err = run(capsys, live_url, "eval", "show", "bot:v3", "--task", "gamma")
    assert code == 1 and "not evaluated on task 'gamma'" in err
