"""Sculpt's HTTP side: API, database, schemas, settings and CLI. Imports no torch."""
