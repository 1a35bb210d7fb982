"""The ``sculpt`` command's HTTP client: talks to a Sculpt server by URL and API key."""
