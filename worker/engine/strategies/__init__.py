"""Training strategies as plug-ins, one module or folder each (as PEFT has one folder per tuner).

A module (or package, as ``adaptive_svd``) here defines a ``Strategy`` and registers it; every module of
this package is imported, so adding a strategy is its spec in ``app.jobs.strategies`` and one module here.
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import Context, Prepared, Strategy
from .registry import get, names, register, unregister

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in ("base", "registry"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Context", "Prepared", "Strategy", "get", "names", "register", "unregister"]
