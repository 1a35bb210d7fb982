"""The dashboard is served by the API: one HTML page, its own assets, nothing from elsewhere."""

from __future__ import annotations

import re
from pathlib import Path

STATIC = Path(__file__).parents[2] / "app" / "static"
SVG_NAMESPACE = "http://www.w3.org/2000/svg"  # an XML namespace name, never fetched


def test_the_page_and_every_asset_it_loads_are_served(sqlite_client):
    page = sqlite_client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert '<main id="main"' in page.text and 'for="key-input"' in page.text

    pending = re.findall(r'(?:href|src)="(/static/[^"]+)"', page.text)
    assert "/static/js/main.js" in pending and "/static/style.css" in pending
    seen = set()
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        asset = sqlite_client.get(path)
        assert asset.status_code == 200, path
        kind = "javascript" if path.endswith(".js") else "css"
        assert kind in asset.headers["content-type"], (path, asset.headers["content-type"])
        # ES module imports are relative to the importing file.
        folder = path.rsplit("/", 1)[0]
        pending += [f"{folder}/{name.removeprefix('./')}" for name in re.findall(r'from "(\./[^"]+)"', asset.text)]
    on_disk = {f"/static/{p.relative_to(STATIC)}" for p in STATIC.rglob("*") if p.suffix in (".js", ".css")}
    assert seen >= on_disk, on_disk - seen  # every file is reachable from the page: no dead assets


def test_no_asset_points_outside_the_server():
    for path in STATIC.rglob("*"):
        if path.is_file():
            text = path.read_text().replace(SVG_NAMESPACE, "")
            assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.IGNORECASE), path
            assert "innerHTML" not in text, f"{path}: build the DOM from text, never from HTML strings"


def test_api_routes_still_answer_json_not_the_page(sqlite_client):
    missing = sqlite_client.get("/v1/nothing-here")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/json")
