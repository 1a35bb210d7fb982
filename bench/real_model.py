"""The real models of the benchmarks: see ``app.cli.real_model``, which fetches them.

    python -m bench.real_model                        # path of SmolLM2-135M-Instruct's GGUF file, fetched if needed
    python -m bench.real_model --model gemma3-270m    # Gemma 3 270M base's
    python -m bench.real_model --folder               # also dequantizes it into a plain model folder
"""

from __future__ import annotations

import argparse
from pathlib import Path

from app.cli.real_model import DEFAULT_MODEL, MODELS, Unavailable, cache_dir, gguf_file, gguf_in

__all__ = ["DEFAULT_MODEL", "MODELS", "Unavailable", "cache_dir", "gguf_file", "gguf_in", "model_folder"]


def model_folder(name: str = DEFAULT_MODEL, root: Path | None = None) -> Path:
    """Real model ``name`` as a plain Hugging Face folder (dequantized float32 safetensors), built once."""
    from worker.engine.gguf import dequantize_gguf

    source = gguf_file(name, root)
    folder = source.parent / name
    if not (folder / "config.json").is_file():
        partial = folder.with_name(folder.name + ".part")
        dequantize_gguf(source, partial)
        partial.replace(folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=list(MODELS), default=DEFAULT_MODEL)
    parser.add_argument("--folder", action="store_true", help="also dequantize into a model folder")
    args = parser.parse_args()
    print(model_folder(args.model) if args.folder else gguf_file(args.model))


if __name__ == "__main__":
    main()
