"""Command line of the developer stack tooling.

    python -m tools.devstack moto [--host 127.0.0.1] [--port 5000]

serves moto with the compatibility patches until interrupted; the first line on stdout is
``devstack-moto listening on HOST:PORT``.
"""

from __future__ import annotations

import argparse

from tools.devstack.moto_server import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.devstack")
    commands = parser.add_subparsers(dest="command", required=True)
    moto = commands.add_parser("moto", help="serve moto (with the devstack patches) over HTTP")
    moto.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    moto.add_argument("--port", type=int, default=0, help="port (default 0: any free port)")
    args = parser.parse_args(argv)
    if args.command == "moto":
        serve(args.host, args.port)


if __name__ == "__main__":
    main()
