from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from app.cli.main import main
from app.core.children import process_alive


def test_keys_create_list_revoke(sqlite_env, capsys):
    assert main(["keys", "create", "ci"]) == 0
    secret = capsys.readouterr().out.strip()
    assert secret.startswith("sk-sculpt-")
    assert main(["keys", "create", "ci"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["keys", "list"]) == 0
    listing = capsys.readouterr().out
    assert "ci" in listing and "active" in listing and secret not in listing
    assert main(["keys", "revoke", "ci"]) == 0
    assert main(["keys", "revoke", "ci"]) == 1
    assert main(["keys", "list"]) == 0
    assert "revoked" in capsys.readouterr().out


def test_serve_refuses_a_public_address_without_keys(sqlite_env, capsys):
    assert main(["serve", "--host", "0.0.0.0", "--no-worker"]) == 2
    assert "refusing to serve on 0.0.0.0" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_serve_runs_api_and_worker_and_stops_both_on_sigterm(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCULPT_")}
    env.update(SCULPT_HOME=str(tmp_path / "home"), PYTHONUNBUFFERED="1")
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        server = subprocess.Popen([sys.executable, "-m", "app.cli.main", "serve", "--port", str(port)],
                                  stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        ready = False
        while time.monotonic() < deadline and not ready:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
            except httpx.TransportError:
                time.sleep(0.3)
        assert ready, log.read_text()
        printed = log.read_text()
        for what in ("Sculpt API", "database", "broker", "artifacts", "auth         none", "worker       pid"):
            assert what in printed, printed
        worker_pid = int(printed.split("worker       pid ")[1].split()[0])
        assert process_alive(worker_pid)
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
        deadline = time.monotonic() + 10
        while process_alive(worker_pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not process_alive(worker_pid), "the worker outlived `sculpt serve`"
    finally:
        if server.poll() is None:
            server.kill()


@pytest.mark.slow
def test_init_base_builds_a_model_that_registers(sqlite_client, sqlite_env, tmp_path):
    path = tmp_path / "tiny"
    assert main(["init-base", "--tiny", str(path)]) == 0
    response = sqlite_client.post("/v1/models", json={"id": "tiny", "base_model": str(path)})
    assert response.status_code == 201, response.text
    assert main(["init-base", str(tmp_path / "other")]) == 2


def test_console_script_migrates_from_any_folder(tmp_path):
    script = os.path.join(os.path.dirname(sys.executable), "sculpt")
    if not os.path.exists(script):
        pytest.skip("the project is not installed (no sculpt console script)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCULPT_")}
    env["SCULPT_HOME"] = str(tmp_path / "home")
    result = subprocess.run([script, "migrate"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert "database at head" in result.stdout and (tmp_path / "home" / "sculpt.db").exists()


def test_serve_with_several_api_processes_answers_on_one_port_and_stops_them_all(sqlite_env, tmp_path):
    from tests.faults.api_process import ApiProcess

    server = ApiProcess(tmp_path / "api.log", workers=2)
    server.start()
    try:
        children = [int(pid) for pid in
                    Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read_text().split()]
        assert len(children) >= 2, children  # uvicorn's supervisor and its two API processes
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert all(client.get("/v1/models").status_code == 200 for _ in range(20))
        server.stop()
        assert server.process.returncode == 0
        deadline = time.monotonic() + 5  # a loaded machine may still be running their exit
        while any(process_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(process_alive(pid) for pid in children), "an API process outlived `sculpt serve`"
    finally:
        if server.process.poll() is None:
            server.process.kill()
