"""Continual-learning harness: ``python -m bench.continual --help`` (see __main__.py)."""
