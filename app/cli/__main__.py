"""``python -m app.cli``: the same as the ``sculpt`` command."""

from app.cli.main import main

main()
