"""The playground in headless Chromium: one prompt, two versions' answers streaming side by side (by
default the head and the version before it), each beside the tasks it learned and its scores. The two
versions are tiny models built in code with different seeds, served by a real inference process."""

from __future__ import annotations

import httpx
from sqlalchemy import update

from app.core.db.session import session_scope
from app.core.db.tables import Evaluation, Model, ModelVersion, Task
from tests.dashboard.test_browser import browser_page, shot, sync_api  # noqa: F401 - the page fixture, shared
from tests.inference.serve_process import inference_process
from worker.tiny import build_tiny_causal_lm

PROMPT = "alpha 1:"


def two_versions(live_url: str, tmp_path) -> None:
    """Lineage ``bot``: v1 the base, v2 (the head) a differently seeded model that 'learned' alpha."""
    base, other = tmp_path / "base", tmp_path / "v2"
    build_tiny_causal_lm(base, seed=0)
    build_tiny_causal_lm(other, seed=1)
    httpx.post(f"{live_url}/v1/models", json={"id": "bot", "base_model": str(base)}).raise_for_status()
    with session_scope() as session:
        session.add(ModelVersion(model_id="bot", version=2, parent_version=1, checkpoint_uri=str(other),
                                 task_name="alpha", strategy="adaptive_svd"))
        session.add(Task(model_id="bot", name="alpha", position=0, version=2, training_file="file-x",
                         eval_uri="unused"))
        session.add(Evaluation(model_id="bot", version=2, task_name="alpha", metric="exact_match", score=0.75, n=4))
        session.add(Evaluation(model_id="bot", version=1, task_name="alpha", metric="exact_match", score=0.0, n=4))
        session.execute(update(Model).where(Model.id == "bot").values(head_version=2))


def greedy(live_url: str, model: str) -> str:
    reply = httpx.post(f"{live_url}/v1/chat/completions", timeout=120, json={
        "model": model, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 24, "temperature": 0})
    reply.raise_for_status()
    return reply.json()["choices"][0]["message"]["content"]


def test_playground_streams_two_versions_side_by_side(browser_page, live_url, tmp_path):  # noqa: F811 - the fixture
    page, problems = browser_page
    expect = sync_api.expect
    two_versions(live_url, tmp_path)
    with inference_process(tmp_path / "inference.log"):
        expected = {side: greedy(live_url, model) for side, model in (("A", "bot:v2"), ("B", "bot:v1"))}
        assert expected["A"] != expected["B"]  # two different models: the comparison shows something

        page.goto(f"{live_url}/#/playground")
        expect(page.get_by_label("Version A", exact=True)).to_have_value("2")  # the head…
        expect(page.get_by_label("Version B", exact=True)).to_have_value("1")  # …and the version before it
        side_a, side_b = page.get_by_role("region", name="Side A"), page.get_by_role("region", name="Side B")
        expect(side_a.get_by_role("cell", name="alpha")).to_be_visible()
        expect(side_a.get_by_role("cell", name="0.750")).to_be_visible()
        expect(side_b).to_contain_text("The base model")

        page.get_by_label("Prompt").fill(PROMPT)
        page.get_by_label("Max tokens").fill("24")
        page.get_by_role("button", name="Ask both").click()
        expect(page.locator("#answer-A")).to_have_text(expected["A"], timeout=120_000)
        expect(page.locator("#answer-B")).to_have_text(expected["B"], timeout=120_000)
        shot(page, "10-playground")

        page.get_by_label("Version B", exact=True).select_option("2")  # any two: here the head against itself
        expect(side_b.get_by_role("cell", name="alpha")).to_be_visible()
        page.get_by_role("button", name="Ask both").click()
        expect(page.locator("#answer-B")).to_have_text(expected["A"], timeout=120_000)
    assert problems == []
