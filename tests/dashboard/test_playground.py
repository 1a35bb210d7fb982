"""The playground in headless Chromium: one prompt, two versions' answers streaming side by side (by
default the head and the version before it), each beside the tasks it learned and its scores. The two
versions are tiny models built in code with different seeds, served by a real inference process."""

from __future__ import annotations

from app.core.db.session import session_scope
from app.core.db.tables import ModelVersion
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
