"""A loopback HTTP upstream that answers every POST (and GET) with one canned response.

For failure shapes the fake endpoint and moto do not produce: a proxy's HTML page in place of a
completion, DynamoDB's access-denied answer with the table's ARN, a stream line that is not a
chunk, an issuer's JWKS that changes or fails. ``answering(respond)`` serves on 127.0.0.1 and
yields its base URL; ``respond(path)`` says what each request to ``path`` gets; ``received``,
when given, collects each POST's headers and body as a client sent them (curl's multipart
bodies, say); ``curl_forms`` gets those from the real curl.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.support.tools import missing_tool


@dataclass(frozen=True)
class Canned:
    status: int
    content_type: str
    body: bytes


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]  # names lower-cased
    body: bytes


@contextmanager
def answering(
    respond: Callable[[str], Canned], received: list[Received] | None = None
) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            if received is not None:
                received.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
            canned = respond(self.path)
            self.send_response(canned.status)
            self.send_header("content-type", canned.content_type)
            self.send_header("content-length", str(len(canned.body)))
            self.end_headers()
            self.wfile.write(canned.body)

        do_GET = do_POST

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def curl_forms(folder: Path) -> Iterator[Callable[..., Received]]:
    """`send(*fields)`: `curl -F field ...` run in ``folder`` (so `@file` names its files);
    returns the request curl sent (headers and body), as a loopback server received it."""
    if shutil.which("curl") is None:
        missing_tool("curl is not on PATH")
    received: list[Received] = []
    with answering(lambda path: Canned(200, "application/json", b"{}"), received) as url:

        def send(*fields: str) -> Received:
            arguments = [argument for field in fields for argument in ("-F", field)]
            subprocess.run(
                ["curl", "-sS", "-o", "/dev/null", *arguments, url], cwd=folder, check=True
            )
            return received.pop()

        yield send
