"""An inference process answers only the API: it listens on loopback by default, and its /generate needs
the token it wrote into its registration (which only a reader of the database has)."""

from __future__ import annotations

import json

import httpx

from tests.inference.serve_process import inference_process, inference_servers


def test_generate_needs_the_token_the_process_registered(sqlite_env, tiny_base, tmp_path):
    body = {"name": "bot:v1", "checkpoint_uri": str(tiny_base), "checkpoint_sha256": None, "prompt": "alpha 1:",
            "max_tokens": 2, "temperature": 0}
    with inference_process(tmp_path / "inference.log"):
        (server,) = inference_servers()
        assert server["url"].startswith("http://127.0.0.1:") and len(server["token"]) >= 32
        generate = f"{server['url']}/generate"
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": server["token"]}):
            refused = httpx.post(generate, json=body, headers=headers, timeout=30)
            assert refused.status_code == 401 and "Sculpt API" in refused.json()["error"]
        answered = httpx.post(generate, json=body, headers={"Authorization": f"Bearer {server['token']}"},
                              timeout=120)
        assert answered.status_code == 200
        events = [json.loads(line) for line in answered.text.splitlines() if line.strip()]
        assert events[0]["type"] == "start" and events[-1]["type"] == "finish"
