"""Checking a base model reference: a local Hugging Face folder or GGUF file inside the allowed roots,
or a hub id.

The base model is the only path a client may name, so it is resolved (symlinks followed) and
must land inside one of the operator's roots; pickled weights are refused because loading them
can run code. A hub id makes workers download that repository: a server (exposed, or requiring keys)
accepts only the ids that SCULPT_ALLOWED_HUB_MODELS allows, and no local folder unless SCULPT_MODEL_ROOTS
names where they may be.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from pathlib import Path

from app.core.errors import Unprocessable
from app.core.settings import Settings

HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,95})?$")
PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"}


def _looks_like_path(reference: str) -> bool:
    if reference.startswith(("/", ".", "~")) or "\\" in reference:
        return True
    try:
        return Path(reference).exists()
    except OSError:  # e.g. a name too long to be a path: then it is not one
        return False


def is_gguf(path: str | Path) -> bool:
    """Whether a base model reference names a GGUF file (by its suffix), which the worker dequantizes."""
    return str(path).lower().endswith(".gguf")


def _check_local(reference: str, settings: Settings, name_roots: bool) -> str:
    resolved = Path(reference).expanduser().resolve()
    roots = settings.allowed_model_roots
    if not roots:
        raise Unprocessable("local base models are turned off on this server: the operator names the folders "
                            "they may be in with SCULPT_MODEL_ROOTS", param="base_model", code="path_not_allowed")
    if not any(resolved.is_relative_to(root) for root in roots):
        # Where models may be is the operator's layout: said only to a loopback server's own user.
        where = (f": {', '.join(map(str, roots))}; put the model file or folder in one of them, or add its folder "
                 "to SCULPT_MODEL_ROOTS") if name_roots else ""
        raise Unprocessable(f"base_model resolves outside the allowed model roots (SCULPT_MODEL_ROOTS){where}",
                            param="base_model", code="path_not_allowed")
    if resolved.is_file() and is_gguf(resolved):
        return _check_gguf(resolved)
    if not (resolved / "config.json").is_file():
        raise Unprocessable("base_model is not a Hugging Face model folder (no config.json there)",
                            param="base_model", code="invalid_model")
    pickled = sorted(p.name for p in resolved.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickled:
        raise Unprocessable(f"base_model holds pickled files ({', '.join(pickled[:3])}); "
                            "only safetensors weights are loaded", param="base_model", code="unsafe_weights")
    if not any(resolved.glob("*.safetensors")):
        raise Unprocessable("base_model has no .safetensors weights", param="base_model", code="invalid_model")
    return str(resolved)


def _check_gguf(path: Path) -> str:
    """A GGUF file: the worker dequantizes it once; here only its magic number is checked."""
    with path.open("rb") as handle:
        if handle.read(4) != b"GGUF":
            raise Unprocessable("base_model ends in .gguf but is not a GGUF file", param="base_model",
                                code="invalid_model")
    return str(path)


def _check_local_safely(reference: str, settings: Settings, name_roots: bool) -> str:
    try:
        return _check_local(reference, settings, name_roots)
    except OSError as exc:
        raise Unprocessable(f"base_model cannot be read ({exc.strerror})", param="base_model",
                            code="invalid_model") from exc


def check_base_model(reference: str, settings: Settings, name_roots: bool = False) -> str:
    """Return the canonical reference (an absolute path or the hub id) or raise Unprocessable.
    ``name_roots``: a refused path's error may list the allowed roots (a loopback server without keys)."""
    if any(ord(ch) < 32 for ch in reference):
        raise Unprocessable("base_model contains control characters", param="base_model")
    if _looks_like_path(reference):
        return _check_local_safely(reference, settings, name_roots)
    if ".." in reference or not HUB_ID.match(reference):
        raise Unprocessable("base_model is neither an existing local folder nor a hub id like 'org/name'",
                            param="base_model", code="invalid_model")
    problem = _hub_problem(reference, settings)
    if problem:
        raise Unprocessable(problem, param="base_model", code="hub_model_not_allowed")
    return reference


def _hub_problem(hub_id: str, settings: Settings) -> str | None:
    """Why workers may not download ``hub_id`` here, or None."""
    if not settings.allow_hub_models:
        return "hub models are turned off here; give a local folder"
    if settings.allowed_hub_models:
        if any(fnmatchcase(hub_id, pattern) for pattern in settings.allowed_hub_models):
            return None
        return f"hub model '{hub_id}' matches none of the patterns the operator allows (SCULPT_ALLOWED_HUB_MODELS)"
    if settings.server_mode:
        return ("hub models are off on this server unless the operator allows them "
                "(SCULPT_ALLOWED_HUB_MODELS, e.g. 'Qwen/*'); give a local folder")
    return None
