"""Lineages: a base model and the chain of versions trained from it, its head, gates and suites.

One name in code: "lineage" (this package, its functions and variables). The API says "model"
(``/v1/models``, ``"model": "support-bot"``) because OpenAI's clients send a model id there, and the
table stays ``models`` (class ``Model``, the API object's name): renaming it needs a migration on both
databases for no change a user would see.
"""
