"""The real model of the benchmarks: see ``app.cli.real_model``, which fetches it.

    python -m bench.real_model            # prints the path of the GGUF file, fetching it if needed
    python -m bench.real_model --folder   # also dequantizes it into a plain model folder
"""

from __future__ import annotations

import argparse
from pathlib import Path

from app.cli.real_model import GGUF_NAME, MODELS, Unavailable, cache_dir, gguf_file, gguf_in

__all__ = ["GGUF_NAME", "MODELS", "Unavailable", "cache_dir", "gguf_file", "gguf_in", "model_folder"]


def model_folder(root: Path | None = None) -> Path:
    """The model as a plain Hugging Face folder (dequantized float32 safetensors), built once."""
    from worker.engine.gguf import dequantize_gguf

    source = gguf_file(root)
    folder = source.parent / "smollm2-135m-instruct"
    if not (folder / "config.json").is_file():
        partial = folder.with_name(folder.name + ".part")
        dequantize_gguf(source, partial)
        partial.replace(folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", action="store_true", help="also dequantize into a model folder")
    args = parser.parse_args()
    print(model_folder() if args.folder else gguf_file())


if __name__ == "__main__":
    main()
