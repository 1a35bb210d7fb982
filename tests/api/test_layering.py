"""The API package stays light: it never imports the worker or torch."""

from __future__ import annotations

import subprocess
import sys


def test_app_imports_neither_worker_nor_torch():
    code = ("import sys, app.main, app.cli, app.migrate; app.main.create_app(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'worker', 'transformers')))")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"
