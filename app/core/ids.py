"""Public identifiers in OpenAI's style (``file-…``, ``ftjob-…``)."""

import secrets

# The largest value of the database's INTEGER columns (row ids, version numbers): a number past it
# names nothing, and PostgreSQL refuses to even compare with it ("integer out of range").
DB_INT_MAX = 2**31 - 1


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"
