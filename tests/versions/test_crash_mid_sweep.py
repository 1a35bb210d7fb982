"""A worker killed in the middle of a retention sweep leaves no version that claims a checkpoint it
lacks, nothing half deleted is served, and the next sweep finishes the job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from app.core.db.session import session_scope
from app.core.db.tables import ModelVersion
from app.core.storage import MANIFEST, get_storage
from tests.api.helpers import assert_error
from tests.versions.conftest import store_version
from worker.reconciler import finish_deletions

SWEEP = "from worker.reconciler import finish_deletions; finish_deletions()"


def claimed_but_missing() -> list[int]:
    """Versions that claim a checkpoint (not marked deleted) whose stored files are not all there."""
    storage = get_storage()
    with session_scope() as session:
        rows = session.scalars(select(ModelVersion).where(ModelVersion.deletion.is_(None))).all()
        broken = []
        for row in rows:
            key = storage.key_of(row.checkpoint_uri)
            if key is not None and MANIFEST not in storage.sizes(key):
                broken.append(row.version)
        return broken


def wait_until(check, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.1)


def test_a_sweep_killed_midway_is_finished_by_the_next(lineage):
    client, _ = lineage
    store_version("bot", 4)
    store_version("bot", 5)
    client.put("/v1/models/bot/retention", json={"keep_last": 1})  # goes: v4 and v2 (v3 is the head)
    root = Path(get_storage().uri("checkpoints/bot"))

    env = {**os.environ, "SCULPT_FAULT_PAUSE_AT": "deleting", "SCULPT_FAULT_PAUSE_SECONDS": "120"}
    worker = subprocess.Popen([sys.executable, "-c", SWEEP], env=env)
    try:
        wait_until(lambda: not (root / "v4" / MANIFEST).exists())
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(30)
    assert (root / "v4").is_dir() and any((root / "v4").iterdir())  # cut short: half deleted
    assert (root / "v2" / MANIFEST).exists()

    assert claimed_but_missing() == []
    versions = {v["version"]: v for v in client.get("/v1/models/bot/versions").json()["data"]}
    assert [v for v, body in versions.items() if body["deleted"]] == [2, 4]
    assert versions[4]["checkpoint_uri"] is None and versions[2]["checkpoint_uri"] is None
    for version in (2, 4):
        assert_error(client.get(f"/v1/models/bot/versions/{version}/content"), 404, code="version_deleted")

    assert sorted(finish_deletions()) == [2, 4]
    assert sorted(p.name for p in root.iterdir()) == ["v3", "v5"]
    with session_scope() as session:
        states = dict(session.execute(select(ModelVersion.version, ModelVersion.deletion)).all())
    assert states == {1: None, 2: "deleted", 3: None, 4: "deleted", 5: None}
    assert claimed_but_missing() == []
