"""``kill -9`` of ``sculpt serve``: its worker and inference process die with it, and a restart lists only
its own new ones."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from app.core.children import process_alive
from tests.faults.services import free_port

STARTUP_SECONDS = 300  # importing torch on a busy machine can take a while
DEATH_SECONDS = 30


def _rows() -> set[str]:
    from app.core.db.session import new_session
    from app.core.db.tables import InferenceServer, Worker

    with new_session() as session:
        return {row.name for row in session.query(Worker)} | {row.id for row in session.query(InferenceServer)}


def _serve(log_path: Path) -> tuple[subprocess.Popen, list[int]]:
    """A started ``sculpt serve``, once its worker and inference process registered; with their pids."""
    log = open(log_path, "ab")  # noqa: SIM115 - the server writes to it until killed
    process = subprocess.Popen([sys.executable, "-m", "app.cli.main", "serve", "--port", str(free_port())],
                               env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        children = [int(p) for p in re.findall(r"^(?:worker|inference) +pid (\d+)", log_path.read_text(), re.M)]
        if len(children) == 2 and {f"sculpt-{children[0]}", f"inference-{children[1]}"} <= {
                name.partition("@")[0] for name in _rows()}:
            return process, children
        time.sleep(0.5)
    process.kill()
    raise AssertionError(f"sculpt serve did not come up; see {log_path}")


def test_the_children_of_a_killed_serve_die_and_leave_no_rows(sqlite_env, tmp_path):
    first, children = _serve(tmp_path / "first.log")
    try:
        first.send_signal(signal.SIGKILL)
        first.wait()
        deadline = time.monotonic() + DEATH_SECONDS
        while any(process_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(process_alive(pid) for pid in children), "a child outlived its sculpt serve"
        (tmp_path / "second.log").write_text("")
        second, new_children = _serve(tmp_path / "second.log")
        try:
            names = _rows()
            assert {name.partition("@")[0] for name in names} == {f"sculpt-{new_children[0]}",
                                                                  f"inference-{new_children[1]}"}, names
        finally:
            second.terminate()
            second.wait(60)
    finally:
        for pid in children:  # only where the test failed: the orphans it found
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
