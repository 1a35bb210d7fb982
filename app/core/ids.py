"""Public identifiers in OpenAI's style (``file-…``, ``ftjob-…``)."""

import secrets

# The largest value of the database's INTEGER columns (row ids, version numbers): a number past it
# names nothing, and PostgreSQL refuses to even compare with it ("integer out of range").
DB_INT_MAX = 2**31 - 1


def ascii_number(text: str) -> int | None:
    """The whole number that ``text``'s ASCII digits spell, else None. Not ``str.isdigit()``: it also
    accepts '²', which ``int()`` refuses (a 500), and ``int()`` alone accepts other scripts' digits ('٣')."""
    return int(text) if text.isascii() and text.isdigit() else None


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"
