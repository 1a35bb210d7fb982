"""The playground in headless Chromium: one prompt, two versions' answers streaming side by side (by
default the head and the version before it), each beside the tasks it learned and its scores. The two
versions are tiny models built in code with different seeds, served by a real inference process."""

from __future__ import annotations

import httpx
from sqlalchemy import update

from app.core.db.session import session_scope
from app.core.db.tables import Evaluation, ModelVersion
from tests.dashboard.test_browser import browser_page, shot, sync_api  # noqa: F401 - the page fixture, shared
from tests.inference.serve_process import PROMPT, greedy, inference_process, two_versions


def test_playground_streams_two_versions_side_by_side(browser_page, live_url, tmp_path):  # noqa: F811 - the fixture
    page, problems = browser_page
    expect = sync_api.expect
    two_versions(live_url, tmp_path)
    with session_scope() as session:  # a version whose checkpoint was deleted cannot be picked
        session.add(ModelVersion(model_id="bot", version=3, parent_version=2, checkpoint_uri="gone",
                                 deletion="deleted"))
    with inference_process(tmp_path / "inference.log"):
        expected = {side: greedy(live_url, model) for side, model in (("A", "bot:v2"), ("B", "bot:v1"))}
        assert expected["A"] != expected["B"]  # two different models: the comparison shows something

        page.goto(f"{live_url}/#/playground")
        expect(page.get_by_label("Version A", exact=True)).to_have_value("2")  # the head…
        expect(page.get_by_label("Version B", exact=True)).to_have_value("1")  # …and the version before it
        expect(page.get_by_label("Version A", exact=True).locator("option")).to_have_text(["v1", "v2 (head)"])
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


EXAMPLES = [{"prompt": "alpha 7:", "system": "Answer with the code only.", "reference": "a1", "answer": "a1",
             "score": 1.0},
            {"prompt": "alpha 9:", "system": None, "reference": "a0", "answer": "b", "score": 0.0}]


def test_the_playground_sends_a_system_message_and_prefills_held_out_examples(browser_page, live_url,  # noqa: F811
                                                                             tmp_path):
    page, problems = browser_page
    expect = sync_api.expect
    two_versions(live_url, tmp_path)
    with session_scope() as session:  # what a worker keeps of the held-out examples behind v2's alpha score
        session.execute(update(Evaluation).where(Evaluation.version == 2).values(examples=EXAMPLES))
    with inference_process(tmp_path / "inference.log"):
        page.goto(f"{live_url}/#/playground")
        page.get_by_label("Held-out example").select_option("alpha")
        expect(page.get_by_label("Prompt")).to_have_value("alpha 7:")
        expect(page.get_by_label("System message")).to_have_value("Answer with the code only.")
        expect(page.locator("#expected")).to_contain_text("the expected answer: a1")
        page.get_by_label("Max tokens").fill("24")
        page.get_by_role("button", name="Ask both").click()
        reply = httpx.post(f"{live_url}/v1/chat/completions", timeout=120, json={
            "model": "bot:v2", "max_tokens": 24, "temperature": 0, "messages": [
                {"role": "system", "content": "Answer with the code only."}, {"role": "user", "content": "alpha 7:"}]})
        expect(page.locator("#answer-A")).to_have_text(reply.json()["choices"][0]["message"]["content"],
                                                       timeout=120_000)
        page.get_by_label("Held-out example").select_option("alpha")  # the next one, which has no system message
        expect(page.get_by_label("Prompt")).to_have_value("alpha 9:")
        expect(page.get_by_label("System message")).to_have_value("")
        shot(page, "11-playground-example")
    assert problems == []
