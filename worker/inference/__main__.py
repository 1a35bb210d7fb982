"""``python -m worker.inference [--host H] [--port P] [--url URL]``: one inference process (what
``sculpt inference`` runs)."""

from __future__ import annotations

import argparse
import logging

from worker.inference.server import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="sculpt inference", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (it registers the one it got)")
    parser.add_argument("--url", default=None, help="URL the API reaches this process at (default: from host/port)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(args.host, args.port, args.url)


if __name__ == "__main__":
    main()
