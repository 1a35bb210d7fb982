"""What must hold after any fault: every version's checkpoint is complete and verified, the head
exists, and the artifact root holds no half-written or unreferenced checkpoint."""

from __future__ import annotations

from pathlib import Path

from worker.checkpoints import verify_checkpoint


def assert_lineage_intact(client, model: str, artifact_root: Path) -> list[dict]:
    versions = client.get(f"/v1/models/{model}/versions?limit=100").json()["data"]
    numbers = {v["version"] for v in versions}
    assert client.get(f"/v1/models/{model}").json()["head"] in numbers
    for version in versions:
        if version["version"] > 1:
            verify_checkpoint(Path(version["checkpoint_uri"]), version["checkpoint_sha256"])
            assert version["parent_version"] in numbers
    folder = artifact_root / "checkpoints" / model
    on_disk = {p.name for p in folder.iterdir()} if folder.exists() else set()
    assert on_disk == {f"v{n}" for n in numbers if n > 1}, f"stray entries: {on_disk}"
    return versions
