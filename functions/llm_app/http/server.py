"""The streaming door's process: the function's ASGI app (llm_app.http.web) under uvicorn.

    python -m llm_app.http.server chat.handler --port 8080     # what the zip's run.sh runs

uvicorn (h11, asyncio; no lifespan, no websockets) is imported here only: the buffered
handler never loads it. The init phase (llm_app.runtime.init_phase) begins before uvicorn
and the function's handler module import, and the handler module ends it.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence
from typing import Any

from llm_app.runtime import init_phase


def function_app(module: str) -> Any:
    """Import a function's handler module (its init) and serve its routes."""
    from llm_app.http.web import FunctionApp  # noqa: PLC0415 - inside the init phase

    function = importlib.import_module(module)
    return FunctionApp(function.ROUTES, function.SETTINGS, function.logger, function.SIGN_IN)


def uvicorn_server(app: Any, host: str, port: int) -> Any:
    """uvicorn as the start script runs it: HTTP/1.1 (h11) on asyncio, nothing else.

    uvicorn's Config and Server, as its docs show for running it from code: uvicorn.run would
    import uvicorn.main and, with it, the command line's click and the reloader.
    """
    from uvicorn.config import Config  # noqa: PLC0415 - inside the init phase
    from uvicorn.server import Server  # noqa: PLC0415

    config = Config(
        app,
        host=host,
        port=port,
        http="h11",
        loop="asyncio",
        ws="none",
        lifespan="off",
        interface="asgi3",
        access_log=False,
        # Powertools owns the logging: uvicorn configures none (its warnings reach stderr).
        log_config=None,
        log_level="warning",
        server_header=False,
    )
    return Server(config)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m llm_app.http.server", description=__doc__)
    parser.add_argument("module", help="the function's handler module, e.g. chat.handler")
    parser.add_argument("--host", default="127.0.0.1", help="only the adapter may connect")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    init_phase.begin()  # uvicorn, then the handler module, whose last line ends the phase
    from uvicorn.config import STARTUP_FAILURE  # noqa: PLC0415

    server = uvicorn_server(function_app(args.module), args.host, args.port)
    server.run()
    if not server.started:  # e.g. the port is taken: exit non-zero, as uvicorn.run does
        raise SystemExit(STARTUP_FAILURE)


if __name__ == "__main__":
    main()
