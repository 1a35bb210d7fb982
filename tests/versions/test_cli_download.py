"""``sculpt models download`` over real HTTP: resumes with Range, checks every sha256, and leaves a
folder from_pretrained loads with the same logits; ``sculpt models gc`` shows and applies retention."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from app.cli.download import PART, fetch
from app.cli.http_client import SculptClient, StreamDropped
from app.cli.main import main
from app.core.storage import get_storage
from tests.api.helpers import register
from tests.dashboard.live import live_server
from tests.versions.conftest import set_head, store_version


@pytest.fixture
def served(sqlite_client, base_model_dir):
    register(sqlite_client, "bot", base_model_dir)
    models = {v: store_version("bot", v) for v in (2, 3)}
    set_head("bot", 3)
    with live_server() as url:
        yield url, models


def run(capsys, url: str, *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--url", url])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def stored_weights(version: int) -> Path:
    return Path(get_storage().uri(f"checkpoints/bot/v{version}")) / "model.safetensors"


def logits(model, tokenizer) -> torch.Tensor:
    with torch.no_grad():
        return model(**tokenizer("continual learning", return_tensors="pt")).logits


def test_download_verifies_and_from_pretrained_gives_the_same_logits(served, capsys, tmp_path):
    url, models = served
    code, out, err = run(capsys, url, "models", "download", "bot:v2", str(tmp_path / "v2"))
    assert code == 0, err
    assert "bot:v2" in out and "sha256" in out
    size = sum(f.stat().st_size for f in (tmp_path / "v2").iterdir()) / 1e6
    assert f"files ({size:.1f} MB)" in out  # how much disk a version takes, said where it lands
    assert not (tmp_path / "v2" / PART).exists() and not (tmp_path / "v2" / ".sculpt-download").exists()
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "v2")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "v2")
    assert torch.equal(logits(loaded, tokenizer), logits(models[2], tokenizer))

    code, out, _ = run(capsys, url, "models", "download", "bot", str(tmp_path / "head"), "--json")
    assert code == 0 and json.loads(out)["model"] == "bot:v3"  # a lineage id means its head
    code, out, _ = run(capsys, url, "models", "download", "bot", "2", str(tmp_path / "two"), "--json")
    assert code == 0 and json.loads(out)["model"] == "bot:v2"  # 'id N' names a version as 'id:vN' does


def test_a_corrupted_byte_is_caught_and_nothing_corrupt_is_left(served, capsys, tmp_path):
    url, _ = served
    weights = stored_weights(2)
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01  # same size: only the hash can tell
    weights.write_bytes(bytes(data))
    code, _, err = run(capsys, url, "models", "download", "bot:v2", str(tmp_path / "out"))
    assert code == 1 and "model.safetensors" in err and "sha256" in err and "corrupt" in err
    assert not (tmp_path / "out").exists()  # the folder it made goes too; one that was there stays
    (tmp_path / "mine").mkdir()
    code, _, err = run(capsys, url, "models", "download", "bot:v2", str(tmp_path / "mine"))
    assert code == 1 and sorted(p.name for p in (tmp_path / "mine").iterdir()) == []


def test_a_download_resumes_where_the_part_file_stopped(served, capsys, tmp_path):
    """The part file holds the first half of the archive; then a byte in that half is corrupted on the
    server. Only a download that really continues from the part file (not from zero) verifies."""
    url, _ = served
    full = httpx.get(f"{url}/v1/models/bot/versions/2/content").content
    weights = stored_weights(2)
    offset_in_file = 64  # the weights begin right after their tar header(s), well inside the first half
    data = bytearray(weights.read_bytes())
    assert full.find(bytes(data[:4096])) < len(full) // 2
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / PART).write_bytes(full[:len(full) // 2])
    data[offset_in_file] ^= 0xFF
    weights.write_bytes(bytes(data))

    code, _, err = run(capsys, url, "models", "download", "bot:v2", str(dest))
    assert code == 0, err
    assert (dest / "model.safetensors").read_bytes() != bytes(data)  # the byte came from the part file


@contextmanager
def breaking_after(context, chunks: int):
    """The response of ``context``, whose body breaks off after ``chunks`` chunks of 4 KiB."""
    with context as response:
        read = response.iter_bytes

        def iter_bytes(_size=None):
            for i, chunk in enumerate(read(4096)):
                if i == chunks:
                    raise StreamDropped("connection reset")
                yield chunk
        response.iter_bytes = iter_bytes
        yield response


def test_a_connection_that_breaks_is_resumed_with_range(served, tmp_path):
    url, _ = served
    seen: list[dict] = []

    class Flaky(SculptClient):
        def download(self, path, headers):
            seen.append(dict(headers))
            context = super().download(path, headers)
            return breaking_after(context, 3) if len(seen) == 1 else context

    part = tmp_path / "archive.part"
    etag = f'"{httpx.get(f"{url}/v1/models/bot/versions/2").json()["checkpoint_sha256"]}"'
    with Flaky(url) as client:
        fetch(client, "/v1/models/bot/versions/2/content", part, etag)
    assert part.read_bytes() == httpx.get(f"{url}/v1/models/bot/versions/2/content").content
    assert seen == [{}, {"Range": f"bytes={3 * 4096}-", "If-Range": etag}]


def test_gc_dry_run_shows_what_would_go_then_frees_it(served, capsys, tmp_path):
    url, _ = served
    store_version("bot", 4)
    assert run(capsys, url, "models", "retention", "bot", "--keep-last", "1")[0] == 0
    code, out, _ = run(capsys, url, "models", "gc", "--dry-run")
    assert code == 0 and "would free" in out
    assert [line.split()[:2] for line in out.splitlines()[1:3]] == [["bot", "v2"], []]
    assert stored_weights(2).exists()
    code, out, _ = run(capsys, url, "models", "gc", "--json")
    sweeps = json.loads(out)
    assert code == 0 and [d["version"] for d in sweeps[0]["deleted"]] == [2] and sweeps[0]["bytes_freed"] > 0
    assert not stored_weights(2).exists()
    code, out, _ = run(capsys, url, "models", "download", "bot:v2", str(tmp_path / "gone"))
    assert code == 1 and not (tmp_path / "gone").exists()
