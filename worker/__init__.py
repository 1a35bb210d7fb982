"""Sculpt worker: Celery app, job pipeline, training and evaluation engine (torch)."""
