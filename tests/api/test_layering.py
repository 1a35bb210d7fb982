"""The layers stay apart: the API package never imports the worker or torch, and its torch-free core
(what the worker imports) imports no feature package. No app module names the worker or torch even lazily:
ruff's banned-api rule (app/ruff.toml) refuses it in `make lint`."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_app_imports_neither_worker_nor_torch():
    code = ("import sys, app.main, app.cli.main, app.core.migrate; app.main.create_app(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'worker', 'transformers')))")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"


def test_core_imports_no_feature_package():
    offenders = {}
    for path in (APP / "core").rglob("*.py"):
        # Everything in app outside core is a feature, whatever packages are added later.
        bad = sorted(name for name in _imports(path) if name.startswith("app.") and name.split(".")[1] != "core")
        if bad:
            offenders[str(path.relative_to(APP.parent))] = bad
    assert offenders == {}
