"""Inference processes: generation on any version, reached by the API over HTTP (see server.py)."""
