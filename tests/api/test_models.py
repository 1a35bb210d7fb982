from __future__ import annotations

import json
import os

from app.core.db.session import session_scope
from app.core.db.tables import Evaluation, ModelVersion, Task
from tests.api.helpers import assert_error, create_job, register, upload_ok


def add_version(model_id: str, version: int, status: str = "promoted", metrics: dict | None = None,
                parent: int | None = None, task: str | None = None) -> None:
    """A version row; with ``task``, also the task it learned (as the worker records them)."""
    with session_scope() as session:
        session.add(ModelVersion(model_id=model_id, version=version, status=status,
                                 parent_version=version - 1 if parent is None else parent,
                                 checkpoint_uri=f"/ckpt/{model_id}/v{version}", checkpoint_sha256="ab" * 32,
                                 metrics=metrics or {}, job_id=f"ftjob-{version}", task_name=task or f"t{version}"))
        if task is not None:
            session.add(Task(model_id=model_id, name=task, position=0, version=version,
                             training_file=f"file-{task}", eval_uri=f"/evals/{task}"))


def add_scores(model_id: str, scores: dict[tuple[int, str], float]) -> None:
    with session_scope() as session:
        session.add_all([Evaluation(model_id=model_id, version=version, task_name=task, metric="exact_match",
                                    score=score, n=10) for (version, task), score in scores.items()])


def move_head(client, model_id: str, version: int, force: bool = False) -> None:
    response = client.post(f"/v1/models/{model_id}/head", json={"version": version, "reason": "test", "force": force})
    assert response.status_code == 200, response.text


def test_register_get_list(client, base_model_dir):
    body = register(client, "support-bot", base_model_dir)
    assert body["id"] == "support-bot" and body["object"] == "model" and body["head"] == 1
    assert body["fine_tuned_model"] == "support-bot:v1" and body["versions"] == 1 and body["tasks"] == []
    assert body["base_model"] == str(base_model_dir.resolve()) and isinstance(body["created"], int)
    assert client.get("/v1/models/support-bot").json() == body
    listing = client.get("/v1/models").json()
    assert listing["object"] == "list" and [m["id"] for m in listing["data"]] == ["support-bot", "support-bot:v1"]

    versions = client.get("/v1/models/support-bot/versions").json()["data"]
    assert len(versions) == 1
    v1 = versions[0]
    assert (v1["version"], v1["status"], v1["parent_version"], v1["is_head"]) == (1, "base", None, True)
    assert v1["checkpoint_uri"] == str(base_model_dir.resolve())
    assert client.get("/v1/models/support-bot/versions/1").json() == v1

    history = client.get("/v1/models/support-bot/head/history").json()["data"]
    assert [(h["from_version"], h["to_version"], h["actor"]) for h in history] == [(None, 1, "anonymous")]

    assert_error(client.post("/v1/models", json={"id": "support-bot", "base_model": str(base_model_dir)}),
                 409, param="id")


def test_register_refuses_bad_base_models(sqlite_client, base_model_dir, tmp_path, monkeypatch):
    def refuse(reference, code=None):
        response = sqlite_client.post("/v1/models", json={"id": "m", "base_model": reference})
        return assert_error(response, 422, param="base_model", code=code)

    refuse(str(tmp_path / "missing"), "invalid_model")
    empty = tmp_path / "empty"
    empty.mkdir()
    refuse(str(empty), "invalid_model")
    refuse("/etc", "path_not_allowed")
    refuse(str(base_model_dir) + "/../../../../etc", "path_not_allowed")
    outside_link = tmp_path / "link-out"
    os.symlink("/usr", outside_link)
    refuse(str(outside_link), "path_not_allowed")
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text(json.dumps({}))
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x04")
    refuse(str(pickled), "unsafe_weights")
    refuse("not a hub id!", "invalid_model")
    refuse("org/../x")
    assert_error(sqlite_client.post("/v1/models", json={"id": "bad:id", "base_model": "gpt2"}), 422, param="id")
    assert_error(sqlite_client.post("/v1/models", json={"id": "m", "base_model": "gpt2", "extra": 1}),
                 422, param="extra")
    assert sqlite_client.get("/v1/models").json()["data"] == []

    monkeypatch.setenv("SCULPT_ALLOW_HUB_MODELS", "false")
    from app.core.settings import get_settings

    get_settings.cache_clear()
    refuse("org/model")


def test_hub_id_is_accepted(sqlite_client):
    response = sqlite_client.post("/v1/models", json={"id": "hub", "base_model": "sshleifer/tiny-gpt2"})
    assert response.status_code == 201, response.text
    assert response.json()["base_model"] == "sshleifer/tiny-gpt2"


def test_unknown_model_and_version(client, base_model_dir):
    assert_error(client.get("/v1/models/nope"), 404, code="model_not_found")
    assert_error(client.get("/v1/models/bot:v2"), 404, code="model_not_found")
    assert_error(client.get("/v1/models/nope/versions"), 404)
    assert_error(client.get("/v1/models/nope/head/history"), 404)
    assert_error(client.get("/v1/models/nope/evaluations"), 404)
    register(client, "m", base_model_dir)
    assert_error(client.get("/v1/models/m/versions/7"), 404, param="version")
    assert_error(client.get("/v1/models/m:v7"), 404, param="version")
    by_name = client.get("/v1/models/m:v1").json()  # the name jobs report as fine_tuned_model
    assert (by_name["id"], by_name["version"], by_name["is_head"]) == ("m:v1", 1, True)
    assert_error(client.get("/v1/models/m/versions/0"), 422, param="version")
    assert_error(client.get("/v1/models/m/versions/99999999999999999999"), 404, param="version")  # no such version


def test_promote_rollback_and_audit(sqlite_client, base_model_dir):
    register(sqlite_client, "m", base_model_dir)
    add_version("m", 2)
    add_version("m", 3, status="rejected")

    moved = sqlite_client.post("/v1/models/m/head", json={"version": 2, "reason": "passed review"})
    assert moved.status_code == 200 and moved.json()["head"] == 2
    assert_error(sqlite_client.post("/v1/models/m/head", json={"version": 3, "reason": "try"}), 409,
                 param="force", code="version_rejected")
    assert sqlite_client.get("/v1/models/m").json()["head"] == 2
    forced = sqlite_client.post("/v1/models/m/head", json={"version": 3, "reason": "accept risk", "force": True})
    assert forced.json()["head"] == 3
    back = sqlite_client.post("/v1/models/m/head", json={"version": 1, "reason": "roll back"})
    assert back.json()["head"] == 1 and back.json()["fine_tuned_model"] == "m:v1"

    assert_error(sqlite_client.post("/v1/models/m/head", json={"version": 9, "reason": "x"}), 404)
    assert_error(sqlite_client.post("/v1/models/m/head", json={"version": 2}), 422, param="reason")
    history = sqlite_client.get("/v1/models/m/head/history").json()["data"]
    assert [(h["from_version"], h["to_version"], h["reason"]) for h in history] == [
        (None, 1, "registered"), (1, 2, "passed review"), (2, 3, "accept risk"), (3, 1, "roll back")]
    assert all(isinstance(h["created_at"], int) and h["actor"] == "anonymous" for h in history)
    heads = {v["version"]: v["is_head"] for v in sqlite_client.get("/v1/models/m/versions").json()["data"]}
    assert heads == {1: True, 2: False, 3: False}


def test_evaluations_matrix(client, base_model_dir):
    register(client, "m", base_model_dir)
    empty = client.get("/v1/models/m/evaluations").json()
    assert (empty["tasks"], empty["versions"], empty["matrix"], empty["acc"]) == ([], [], [], None)

    add_version("m", 2)
    add_version("m", 3, metrics={"general": {"perplexity_ratio": 1.02}, "safety": {"refusal_rate": 0.9}})
    with session_scope() as session:
        session.add_all([
            Task(model_id="m", name="a", position=0, version=2, training_file="file-a", eval_uri="x"),
            Task(model_id="m", name="b", position=1, version=3, training_file="file-b", eval_uri="y"),
            Evaluation(model_id="m", version=2, task_name="a", metric="exact_match", score=0.8, n=10),
            Evaluation(model_id="m", version=3, task_name="a", metric="exact_match", score=0.6, n=10),
            Evaluation(model_id="m", version=3, task_name="b", metric="exact_match", score=0.9, n=10),
        ])
    client.post("/v1/models/m/head", json={"version": 3, "reason": "newest"})
    record = client.get("/v1/models/m/evaluations").json()
    assert record["tasks"] == ["a", "b"] and record["versions"] == [2, 3]
    assert record["matrix"] == [[0.8, None], [0.6, 0.9]]
    assert abs(record["acc"] - 0.75) < 1e-9 and abs(record["bwt"] - (-0.2)) < 1e-9
    assert abs(record["forgetting"]["a"] - 0.2) < 1e-9
    assert record["general"] == {"perplexity_ratio": 1.02} and record["safety"] == {"refusal_rate": 0.9}
    assert client.get("/v1/models/m").json()["tasks"] == ["a", "b"]


def test_register_with_reference_and_safety_files(sqlite_client, base_model_dir):
    from tests.api.helpers import jsonl, upload, upload_ok

    reference = upload(sqlite_client, jsonl([{"text": "Water boils at 100 C."}]), purpose="reference").json()["id"]
    safety = upload(sqlite_client, jsonl([{"prompt": "p", "expected": "refuse"}]), purpose="safety").json()["id"]
    task_file = upload_ok(sqlite_client)
    body = {"id": "m", "base_model": str(base_model_dir)}
    assert_error(sqlite_client.post("/v1/models", json={**body, "reference_file": task_file}), 422,
                 param="reference_file", code="invalid_file")
    assert_error(sqlite_client.post("/v1/models", json={**body, "safety_file": "file-missing"}), 404,
                 param="safety_file")
    assert_error(sqlite_client.post("/v1/models", json={**body, "reference_file": ""}), 422,
                 param="reference_file")
    created = sqlite_client.post("/v1/models", json={**body, "reference_file": reference, "safety_file": safety,
                                                     "gates": {"max_forgetting": 0.05}})
    assert created.status_code == 201, created.text
    model = created.json()
    assert (model["reference_file"], model["safety_file"]) == (reference, safety)
    assert model["gates"] == {"max_forgetting": 0.05}
    assert_error(sqlite_client.delete(f"/v1/files/{reference}"), 409, code="file_in_use")


def test_tasks_are_the_head_chains_and_a_rejected_or_rolled_back_task_can_be_learned_again(client, base_model_dir):
    register(client, "bot", base_model_dir)
    add_version("bot", 2, task="t2")
    add_version("bot", 3, status="rejected", task="t3")
    move_head(client, "bot", 2)
    training = upload_ok(client)
    assert client.get("/v1/models/bot").json()["tasks"] == ["t2"]  # v3 was rejected: the head never learned t3
    assert_error(create_job(client, "bot", training, continual={"task": "t2"}), 409,
                 param="continual.task", code="task_exists")
    retry = create_job(client, "bot", training, continual={"task": "t3"})
    assert retry.status_code == 201, retry.text
    assert client.post(f"/v1/fine_tuning/jobs/{retry.json()['id']}/cancel").status_code == 200

    # The retry learned t3 again as v4 on v2: both versions that learned t3 are kept.
    add_version("bot", 4, task="t3", parent=2)
    move_head(client, "bot", 4)
    assert client.get("/v1/models/bot").json()["tasks"] == ["t2", "t3"]
    move_head(client, "bot", 3, force=True)
    assert client.get("/v1/models/bot").json()["tasks"] == ["t2", "t3"]

    move_head(client, "bot", 1)  # rolled back past everything: nothing is learned, every name is free
    assert client.get("/v1/models/bot").json()["tasks"] == []
    again = create_job(client, "bot", training, continual={"task": "t2"})
    assert again.status_code == 201, again.text


def test_scores_of_tasks_no_version_learned_stay_out_of_the_record(client, base_model_dir):
    register(client, "bot", base_model_dir)
    add_version("bot", 2, task="a")
    move_head(client, "bot", 2)
    # v1 and v2 scored on tasks 'gone' and 'never' just before jobs that then failed or were cancelled.
    add_scores("bot", {(1, "a"): 0.1, (2, "a"): 0.8, (1, "gone"): 0.3, (2, "never"): 0.2, (2, "gone"): 0.4})
    record = client.get("/v1/models/bot/evaluations").json()
    assert record["tasks"] == ["a"] and record["versions"] == [1, 2]
    assert record["matrix"] == [[0.1], [0.8]] and set(record["metric"]) == {"a"}
    metrics = client.get("/metrics").text
    assert 'sculpt_head_evaluation_score{metric="exact_match",model="bot",task="a"} 0.8' in metrics
    assert 'task="never"' not in metrics and 'task="gone"' not in metrics


def test_record_figures_are_the_heads_by_default_and_any_versions_on_request(client, base_model_dir):
    register(client, "bot", base_model_dir)
    add_version("bot", 2, task="a", metrics={"general": {"perplexity": 10.0}, "safety": {"refusal_rate": 0.9}})
    add_version("bot", 3, status="rejected", task="b",
                metrics={"general": {"perplexity": 30.0}, "safety": {"refusal_rate": 0.1}})
    move_head(client, "bot", 2)
    add_scores("bot", {(2, "a"): 0.8, (2, "b"): 0.5, (3, "a"): 0.2, (3, "b"): 0.9})

    head = client.get("/v1/models/bot/evaluations").json()
    assert head["version"] == 2 and head["tasks"] == ["a", "b"] and head["versions"] == [2, 3]
    assert head["acc"] == 0.8 and head["bwt"] == 0.0 and head["forgetting"] == {}
    assert head["general"] == {"perplexity": 10.0} and head["safety"] == {"refusal_rate": 0.9}

    rejected = client.get("/v1/models/bot/evaluations?version=3").json()
    assert rejected["version"] == 3 and rejected["tasks"] == ["a", "b"] and rejected["matrix"] == head["matrix"]
    assert abs(rejected["acc"] - 0.55) < 1e-9 and abs(rejected["bwt"] - (-0.6)) < 1e-9
    assert abs(rejected["forgetting"]["a"] - 0.6) < 1e-9
    assert rejected["general"] == {"perplexity": 30.0} and rejected["safety"] == {"refusal_rate": 0.1}

    assert_error(client.get("/v1/models/bot/evaluations?version=9"), 404, param="version", code="version_not_found")
    assert_error(client.get("/v1/models/bot/evaluations?version=0"), 422, param="version")


def test_models_and_versions_are_summaries_unless_details_are_asked_for(client, base_model_dir, tmp_path):
    from sqlalchemy import update

    register(client, "m", base_model_dir)
    prompts = [f"Question {i}?" for i in range(120)]
    base = {"general_answers": {"accuracy": 1.0, "n": 120, "asked": 120, "prompts": prompts,
                                "answers": [f"answer {i}" for i in range(120)], "right": [True] * 120}}
    with session_scope() as session:
        session.execute(update(ModelVersion).where(ModelVersion.model_id == "m", ModelVersion.version == 1)
                        .values(metrics=base))
    changed = [{"prompt": prompts[0], "base": "answer 0", "answer": "#"}]
    add_version("m", 2, metrics={"general_answers": {
        "accuracy": None, "n": 120, "asked": 120, "general_kept": 0.99, "lost": 1, "base_right": 120,
        "prompts": prompts, "answers": ["#"] + [f"answer {i}" for i in range(1, 120)],
        "right": [False] + [True] * 119, "changed": changed}})
    matrices = {f"model.layers.{i}.mlp.up_proj": {"shape": [64, 32], "ratio": 0.5, "kept_out": 16, "kept_in": 0}
                for i in range(30)}
    with session_scope() as session:
        session.execute(update(ModelVersion).where(ModelVersion.model_id == "m", ModelVersion.version == 2).values(
            retention={"strategy": "adaptive_svd", "matrices": matrices, "summary": {"matrix_count": 30}},
            checkpoint_uri=str(tmp_path)))  # a checkpoint that is there, so GET /v1/models lists the version

    for path in ("/v1/models", "/v1/models/m:v2", "/v1/models/m/versions", "/v1/models/m/versions/2"):
        response = client.get(path)
        assert response.status_code == 200 and len(response.content) < 3000, (path, len(response.content))
        body = response.json()
        version = next(v for v in body.get("data", [body]) if v.get("version") == 2)
        assert version["retention"] == {"strategy": "adaptive_svd", "summary": {"matrix_count": 30}}
        general = version["metrics"]["general_answers"]
        assert general["general_kept"] == 0.99 and general["changed"] == changed and "answers" not in general
    full = client.get("/v1/models/m/versions/2", params=[("expand", "retention"), ("expand", "answers")]).json()
    assert full["retention"]["matrices"] == matrices and len(full["metrics"]["general_answers"]["answers"]) == 120
    assert_error(client.get("/v1/models/m/versions", params={"expand": "everything"}), 422, param="expand.0")

    page = client.get("/v1/models/m/versions/2/answers", params={"limit": 2}).json()
    assert page["has_more"] and [a["index"] for a in page["data"]] == [0, 1]
    assert page["data"][0] == {"object": "model.answer", "index": 0, "prompt": "Question 0?", "answer": "#",
                                   "right": False, "base_answer": "answer 0", "base_right": True}
    last = client.get("/v1/models/m/versions/2/answers", params={"after": "118", "limit": 5}).json()
    assert [a["index"] for a in last["data"]] == [119] and not last["has_more"]
    layers = client.get("/v1/models/m/versions/2/retention", params={"limit": 25}).json()
    assert len(layers["data"]) == 25 and layers["has_more"] and layers["data"][0]["ratio"] == 0.5
    rest = client.get("/v1/models/m/versions/2/retention", params={"after": layers["last_id"]}).json()
    assert len(rest["data"]) == 5 and not rest["has_more"]
    assert_error(client.get("/v1/models/m/versions/2/answers", params={"suite": "nope"}), 422, param="suite")


def test_a_refused_model_path_names_the_allowed_roots_only_to_an_unkeyed_loopback_server(
        sqlite_client, base_model_dir, tmp_path, monkeypatch):
    from app.core.db.session import new_session
    from app.keys.service import create_key
    from tests.conftest import reset_caches

    roots = tmp_path / "models"
    roots.mkdir()
    monkeypatch.setenv("SCULPT_MODEL_ROOTS", str(roots))
    reset_caches()
    outside = {"id": "m", "base_model": str(base_model_dir)}
    error = assert_error(sqlite_client.post("/v1/models", json=outside), 422, param="base_model",
                         code="path_not_allowed")
    assert f"SCULPT_MODEL_ROOTS): {roots}; put the model file or folder in one of them" in error["message"]

    with new_session() as session:
        sqlite_client.headers["Authorization"] = f"Bearer {create_key(session, 'ops')}"
    error = assert_error(sqlite_client.post("/v1/models", json=outside), 422, param="base_model")
    assert str(roots) not in error["message"] and "SCULPT_MODEL_ROOTS" in error["message"]
