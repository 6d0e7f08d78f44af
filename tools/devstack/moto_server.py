"""moto in server mode, with the devstack compatibility patches, on 127.0.0.1.

Library use (the server runs in a child process so its patches and state never leak into the
caller, and stopping it frees everything)::

    with MotoServer() as moto:
        env = {**os.environ, **aws_env(moto.url, region="eu-west-1")}
        ...

Command line (for a long-running local stack)::

    python -m tools.devstack moto --port 5000
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from tools.http_server import Service
from tools.paths import REPO_ROOT

_READY_PREFIX = "devstack-moto listening on "

DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


def aws_env(url: str, region: str = "us-east-1") -> dict[str, str]:
    """Environment overrides that send the AWS SDKs, the CLI and the Terraform provider to moto.

    Merge them over ``os.environ``. ``AWS_ENDPOINT_URL`` is honoured by botocore and by the
    Terraform AWS provider (>= 5.x), so no provider block needs a moto-specific argument.
    """
    return {
        "AWS_ENDPOINT_URL": url,
        **DUMMY_CREDENTIALS,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        # Never fall back to the instance metadata service or a real profile's settings.
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


class MotoServerError(RuntimeError):
    """The moto server did not start or stopped unexpectedly."""


class MotoServer(Service):
    """A patched moto server in a child process: ``.url`` once started; stops on exit.

    ``port=0`` (the default) lets the OS pick a free port, so parallel runs never collide.
    ``log_path`` receives the server's request log and tracebacks (discarded when None).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        log_path: Path | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        super().__init__(host, port)
        self.log_path = log_path
        self.startup_timeout = startup_timeout
        self._proc: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None

    def _start(self) -> int:
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("w", encoding="utf-8")
        cmd = [sys.executable, "-m", "tools.devstack", "moto", "--host", self.host]
        cmd += ["--port", str(self.port)]
        self._proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=self._log if self._log is not None else subprocess.DEVNULL,
            text=True,
            cwd=REPO_ROOT,  # `-m tools.devstack` is found from the repository root
        )
        try:
            port = self._read_port()
            self._wait_until_serving(f"http://{self.host}:{port}")
        except BaseException:
            self._stop()
            raise
        return port

    def _read_port(self) -> int:
        # readline() blocks, so it runs in a thread to honour the timeout.
        assert self._proc is not None
        assert self._proc.stdout is not None
        result: list[str] = []
        reader = threading.Thread(
            target=lambda: result.append(self._proc.stdout.readline()),  # type: ignore[union-attr]
            daemon=True,
        )
        reader.start()
        reader.join(self.startup_timeout)
        line = result[0] if result else ""
        if not line.startswith(_READY_PREFIX):
            where = f" (log: {self.log_path})" if self.log_path else ""
            raise MotoServerError(
                f"moto server did not start within {self.startup_timeout:.0f}s{where}"
            )
        return int(line.rsplit(":", 1)[1])

    def _wait_until_serving(self, url: str) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while True:
            try:
                # S310: the URL is our own loopback server's.
                with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=5):  # noqa: S310
                    return
            except (urllib.error.URLError, ConnectionError) as exc:
                if time.monotonic() > deadline:
                    raise MotoServerError(f"moto server at {url} is not answering") from exc
                time.sleep(0.1)

    def reset(self) -> None:
        """Forget every resource (moto's /moto-api/reset)."""
        # S310: the URL is our own loopback server's.
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=30):  # noqa: S310
            pass

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None


def serve(host: str, port: int) -> None:
    """Patch moto, bind, announce the port on stdout, then serve until terminated."""
    import signal

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    from tools.devstack import compat

    compat.apply()
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"{_READY_PREFIX}{host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
