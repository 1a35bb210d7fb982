"""The dashboard in a real browser: Playwright driving Debian's headless Chromium against a live
server and a real worker. Enter the key, upload a dataset (a bad one first: the API's message is
shown), start a job on a tiny model, watch its progress bar reach done, see the new heatmap row.
Screenshots go to test-artifacts/dashboard/."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from app.jobs import strategies as specs
from tests.worker.harness import jsonl, records

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts" / "dashboard"
JOB_TIMEOUT_MS = 300_000

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
if not CHROMIUM.exists():
    pytest.skip("no Chromium at /usr/bin/chromium: `make install` installs Debian's package when run as root "
                "(apt-get install -y chromium)", allow_module_level=True)


@pytest.fixture
def browser_page(live_url):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1366, "height": 768})  # a laptop screen
        # The browser logs every 4xx as "Failed to load resource"; the 401 and 422 here are meant.
        page.on("console", lambda m: problems.append(f"console: {m.text}")
                if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        own = urlparse(live_url).netloc

        def only_our_server(route):
            if urlparse(route.request.url).netloc == own:
                return route.continue_()
            problems.append(f"request outside the server: {route.request.url}")
            return route.abort()

        page.route("**/*", only_our_server)
        yield page, problems
        browser.close()


RECORD_BAR_STATES = """() => {
  window.barStates = [];
  new MutationObserver(() => {
    const state = document.querySelector("[role=progressbar]")?.getAttribute("aria-valuetext");
    if (state && window.barStates.at(-1) !== state) window.barStates.push(state);
  }).observe(document.getElementById("main"), { subtree: true, childList: true, attributes: true });
}"""


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_upload_train_and_watch_in_the_browser(browser_page, live_url, tiny_base, workers, tmp_path):
    from app.core.db.session import new_session
    from app.keys.service import create_key

    page, problems = browser_page
    with new_session() as session:
        key = create_key(session, "dashboard")
    httpx.post(f"{live_url}/v1/models", json={"id": "bot", "base_model": str(tiny_base)},
               headers={"Authorization": f"Bearer {key}"}).raise_for_status()
    good, bad = tmp_path / "alpha.jsonl", tmp_path / "broken.jsonl"
    good.write_bytes(jsonl(records("alpha")))
    bad.write_text('{"prompt": "hi", "completion": " there"}\n{"prompt": 3}\n')
    expect = sync_api.expect

    page.goto(live_url)
    expect(page.get_by_role("textbox", name="Key")).to_be_visible()
    shot(page, "01-api-key")
    page.get_by_role("textbox", name="Key").fill(key)
    page.get_by_role("button", name="Use key").click()
    expect(page.get_by_text("No jobs yet")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('sculpt.apiKey')") == key

    page.get_by_role("link", name="New job").click()
    page.get_by_label("Dataset file").set_input_files(str(bad))
    page.get_by_role("button", name="Upload").click()
    api_message = httpx.post(f"{live_url}/v1/files", data={"purpose": "fine-tune"},
                             files={"file": ("broken.jsonl", bad.read_bytes())},
                             headers={"Authorization": f"Bearer {key}"}).json()["error"]["message"]
    expect(page.locator("#upload-error")).to_have_text(api_message)
    shot(page, "02-upload-rejected")

    page.get_by_label("Dataset file").set_input_files(str(good))
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-status")).to_contain_text("24 records")
    page.get_by_label("Task name").fill("alpha")
    page.get_by_label("Epochs").fill("2")
    page.get_by_label("Batch size").fill("4")
    page.get_by_label("Learning rate").fill("0.003")
    page.get_by_label("Replay per earlier task").fill("2")
    shot(page, "03-new-job")
    # Training a tiny model can finish between two of the page's polls; holding the job at the
    # start of training for a few seconds makes the "training N%" state one the page must show.
    workers(1, SCULPT_FAULT_PAUSE_AT="training", SCULPT_FAULT_PAUSE_SECONDS="4")
    page.get_by_role("button", name="Start job").click()
    expect(page).to_have_url(re.compile(r"#/jobs/ftjob-"))
    job_id = page.url.rsplit("/", 1)[1]
    created = httpx.get(f"{live_url}/v1/fine_tuning/jobs/{job_id}", headers={"Authorization": f"Bearer {key}"})
    assert created.json()["continual"]["replay"] == 2  # the form's rehearsal setting reached the job

    # Every state the bar shows, however briefly: polling the DOM could miss a short phase.
    page.evaluate(RECORD_BAR_STATES)
    page.wait_for_function("() => window.barStates.some(s => /^training \\d+%$/.test(s))", timeout=JOB_TIMEOUT_MS)
    page.wait_for_timeout(500)  # the page batches chart redraws; let the last one land before the picture
    shot(page, "04-job-training")
    bar = page.get_by_role("progressbar", name=f"Progress of {job_id}")
    expect(bar).to_have_attribute("aria-valuenow", "100", timeout=JOB_TIMEOUT_MS)
    expect(bar).to_have_attribute("aria-valuetext", "done")
    expect(page.get_by_text("The job has successfully completed")).to_be_visible()
    expect(page.locator("svg[aria-label^='Training loss']")).to_be_visible()
    # The loss falls by orders of magnitude: on a log scale the first steps do not flatten the rest.
    expect(page.locator("svg[aria-label^='Training loss']")).to_have_attribute("data-scale", "log")
    shot(page, "05-job-done")
    states = page.evaluate("window.barStates")
    # The bar only moves forward through the phases; a short one may fall between two polls.
    order = ["validating_files", "queued", "running", "loading", "evaluating base", "calibrating", "decomposing",
             "training", "evaluating", "saving", "done"]
    phases = [order.index(re.sub(r" \d+%$", "", state)) for state in states]
    assert phases == sorted(phases) and phases[-1] == order.index("done"), states

    page.get_by_role("link", name="Jobs", exact=True).click()
    expect(page.locator(f"tr[data-job-id='{job_id}']").get_by_role("progressbar")).to_have_attribute(
        "aria-valuetext", "done")
    shot(page, "06-jobs-list")

    page.get_by_role("link", name="bot:v2").first.click()
    heatmap = page.locator("table.heatmap")
    expect(heatmap.locator("tr[data-version='2'] th")).to_have_text("v2")
    expect(heatmap.locator("thead th").nth(1)).to_have_text("alpha")
    expect(page.locator("article[data-version='2']")).to_contain_text("head")
    shot(page, "07-model")

    page.get_by_label("Version to make the head").select_option("1")
    page.get_by_label("Reason").fill("roll back from the browser")
    page.get_by_role("button", name="Move head").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("head v1")
    expect(page.get_by_role("cell", name="roll back from the browser")).to_be_visible()
    assert problems == []


def test_cancel_and_api_errors_in_the_browser(browser_page, live_url, base_model_dir, tmp_path):
    page, problems = browser_page
    expect = sync_api.expect
    httpx.post(f"{live_url}/v1/models", json={"id": "bot", "base_model": str(base_model_dir)}).raise_for_status()
    file_id = httpx.post(f"{live_url}/v1/files", data={"purpose": "fine-tune"},
                         files={"file": ("alpha.jsonl", jsonl(records("alpha")))}).json()["id"]
    queued = httpx.post(f"{live_url}/v1/fine_tuning/jobs", json={
        "model": "bot", "training_file": file_id, "continual": {"task": "alpha"}}).json()["id"]

    specs.register(specs.StrategySpec("norms_only", "A strategy only this test's server has."))
    try:
        page.goto(f"{live_url}/#/new")  # no key exists: the page never asks for one
        # The choices are the server's (GET /v1/capabilities), plug-ins included, with its default chosen.
        expect(page.get_by_label("Strategy").locator("option")).to_have_text(list(specs.names()))
        expect(page.get_by_label("Strategy")).to_have_value(specs.DEFAULT_STRATEGY)
    finally:
        specs.unregister("norms_only")
    page.get_by_label("Training dataset").select_option(file_id)
    page.get_by_label("Task name").fill("alpha")
    # The held-out set is offered, and one that is the training file is refused, naming the field.
    page.get_by_label("Held-out set").select_option(file_id)
    page.get_by_role("button", name="Start job").click()
    expect(page.locator("#job-error")).to_contain_text("is the training file")
    expect(page.locator("#job-error")).to_contain_text("(validation_file)")
    page.get_by_label("Held-out set").select_option("")
    page.get_by_role("button", name="Start job").click()
    expect(page.locator("#job-error")).to_contain_text(
        f"Job {queued} on this model already trains a task named 'alpha'")
    shot(page, "08-start-job-rejected")
    assert page.get_by_role("textbox", name="Key").is_hidden()

    page.goto(f"{live_url}/#/jobs/{queued}")
    expect(page.get_by_role("progressbar", name=f"Progress of {queued}")).to_have_attribute("aria-valuetext", "queued")
    expect(page.locator("dl.facts")).to_contain_text("Held-out set10% of the training file")
    page.get_by_role("button", name=f"Cancel job {queued}").click()
    expect(page.get_by_role("status", name="Job status")).to_have_text("cancelled")
    expect(page.get_by_text("Job cancelled before it started")).to_be_visible()
    expect(page.get_by_role("button", name=f"Cancel job {queued}")).to_have_count(0)
    shot(page, "09-job-cancelled")
    assert httpx.get(f"{live_url}/v1/fine_tuning/jobs/{queued}").json()["status"] == "cancelled"
    assert problems == []


# v1 -> v2 -> v3 -> v4 (rejected); rolled back to v2, then v5 ... v9 trained on: a tree of nine versions.
BRANCHED = {2: 1, 3: 2, 4: 3, 5: 2, 6: 5, 7: 6, 8: 7, 9: 8}
HEAD_METRICS = {"general_answers": {
    "accuracy": 0.5, "n": 2, "general_kept": 0.5, "base_right": 2, "lost": 1,
    "prompts": ["What is the capital of France?", "What is 2 + 2?"], "answers": ["#France", "4"],
    "right": [False, True],
    "changed": [{"prompt": "What is the capital of France?", "base": "The capital of France is Paris.",
                 "answer": "#France"}]}}


EXAMPLES = {9: [{"prompt": "route 1", "system": None, "reference": "billing", "answer": "sales", "score": 0.0},
                {"prompt": "route 2", "system": None, "reference": "sales", "answer": "sales", "score": 1.0}]}
BEFORE = [{"prompt": "route 1", "system": None, "reference": "billing", "answer": "billing", "score": 1.0},
          {"prompt": "route 2", "system": None, "reference": "sales", "answer": "billing", "score": 0.0}]


def test_a_branched_lineage_is_drawn_as_its_tree_with_the_head_in_view(browser_page, live_url, base_model_dir):
    from sqlalchemy import select

    from app.core.db.session import new_session
    from app.core.db.tables import Evaluation, Model, ModelVersion, Task

    page, problems = browser_page
    expect = sync_api.expect
    httpx.post(f"{live_url}/v1/models", json={"id": "tree", "base_model": str(base_model_dir)}).raise_for_status()
    with new_session() as session:
        for version, parent in BRANCHED.items():
            session.add(ModelVersion(model_id="tree", version=version, parent_version=parent, task_name=f"t{version}",
                                     status="rejected" if version == 4 else "promoted",
                                     job_id=f"ftjob-{version}", checkpoint_uri=f"/ckpt/tree/v{version}",
                                     metrics=HEAD_METRICS if version == 9 else {}))
            session.add(Task(model_id="tree", name=f"t{version}", position=0, version=version,
                             training_file="file-x", eval_uri="/x"))
            session.add(Evaluation(model_id="tree", version=version, task_name=f"t{version}", metric="exact_match",
                                   score=version / 10, n=10, examples=EXAMPLES.get(version)))
        # v8's answers on t9's held-out examples, before v9 learned t9: what the head's cell is compared with.
        session.add(Evaluation(model_id="tree", version=8, task_name="t9", metric="exact_match", score=0.5, n=2,
                               examples=BEFORE))
        session.get(Model, "tree").head_version = 9
        row = session.scalars(select(ModelVersion).where(ModelVersion.version == 3)).one()
        row.deletion, row.checkpoint_uri = "deleted", "gone"
        session.scalars(select(ModelVersion).where(ModelVersion.version == 5)).one().pinned = True
        session.commit()

    page.goto(f"{live_url}/#/models/tree")
    head = page.locator("article.is-head")
    expect(head).to_have_attribute("data-version", "9")
    expect(head).to_be_in_viewport()
    shot(page, "10-branched-lineage")
    rows = page.evaluate("""() => [...document.querySelectorAll('.lineage [role=list]')].map((row) =>
        [row.dataset.from, ...[...row.querySelectorAll('article')].map((card) => card.dataset.version)])""")
    # The head's chain first, then the abandoned branch from v2: each arrow joins a parent to its child.
    assert rows == [["", "1", "2", "5", "6", "7", "8", "9"], ["2", "3", "4"]]

    expect(page.locator("#record-shows")).to_contain_text("Figures of v9, the head")
    # The general-answers suite: its figures, and what the head answers where the base was right and it is not.
    expect(page.locator("#suites")).to_contain_text("general kept")
    expect(page.locator("#suites table.changed tbody tr")).to_have_text(re.compile("capital of France.*Paris.*#France"))
    suites = httpx.get(f"{live_url}/v1/models/tree/evaluations").json()["suites"]
    assert suites["general_answers"]["general_kept"] == 0.5 and "answers" not in suites["general_answers"]
    page.get_by_label(re.compile("Figures of v9")).select_option("4")
    expect(page.locator("#record-shows")).to_contain_text("Figures of v4, not the head")
    expect(page.locator("#forgetting .figure").first).to_contain_text("0.400")  # ACC over v4's chain: t4 at 0.4

    # Deleted and pinned versions say so in the tree.
    expect(page.locator("article[data-version='3']")).to_contain_text("deleted")
    expect(page.locator("article[data-version='5']")).to_contain_text("pinned")
    expect(page.locator("article[data-version='9']")).not_to_contain_text("deleted")
    # Counts are whole numbers under readable names.
    page.get_by_label(re.compile("Figures of v4")).select_option("9")
    counts = page.locator("#suites .figure").filter(
        has=page.locator(".name", has_text=re.compile("^(items|lost|base right)$")))
    expect(counts.locator(".value")).to_have_text(["2", "2", "1"])
    # A cell of the matrix opens the held-out examples behind it, beside the previous version's answers.
    page.get_by_role("button", name="Examples of v9 on t9").click()
    examples = page.get_by_role("table", name="Examples of v9 on t9")
    expect(examples.locator("thead th")).to_have_text(["Prompt", "Reference", "v8", "v9", "Change"])
    expect(examples.locator("tbody tr.lost")).to_have_text(re.compile("route 1.*billing.*billing.*sales.*lost"))
    shot(page, "12-cell-examples")
    # A long reason wraps inside the head history's card.
    httpx.post(f"{live_url}/v1/models/tree/head", json={"version": 8, "reason": "x" * 400}).raise_for_status()
    page.reload()
    card = page.get_by_role("heading", name="Head history").locator("..")
    expect(card).to_contain_text("x" * 40)
    assert card.evaluate("(c) => c.scrollWidth <= c.clientWidth")
    assert problems == []
