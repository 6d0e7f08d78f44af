"""`make local` as the local tests run it: on free ports, stopped by `make local-down`'s
module, then checked to leave nothing behind (tests/local)."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.support.commands import run_tool
from tests.support.tools import missing_tool
from tools.devstack import MotoServer
from tools.local.stack import inventory
from tools.paths import REPO_ROOT

REGION = "us-east-1"
STARTUP_TIMEOUT = 420  # seconds; ~60 s on 2 cores, plus the model's one-time conversion
# Greedy answers of a 135 M model ramble until the cap; the seed's answers end far sooner.
MAX_NEW_TOKENS = 96


@dataclass
class RunningStack:
    state: dict[str, Any]
    urls: dict[str, str]
    log: Path

    def ask(self, label: str, arguments: list[Any]) -> dict[str, Any]:
        status, _, body = post(self.urls[label], json.dumps(arguments).encode(), sign=True)
        assert status == 200, (label, body)
        return json.loads(body)


def post(
    url: str,
    body: bytes,
    *,
    sign: bool,
    method: str = "POST",
    access_key: str = "testing",
    timeout: float = 120,
) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": "application/json"}
    if sign:  # as curl --aws-sigv4 does; the local URL checks the signature is there
        request = AWSRequest(method=method, url=url, data=body, headers=headers)
        credentials = Credentials(access_key, "testing", "testing")
        SigV4Auth(credentials, "lambda", REGION).add_auth(request)
        headers = dict(request.headers.items())
    parts = urlsplit(url)
    target = parts.path or "/"
    if parts.query:
        target += f"?{parts.query}"
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request(method, target, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def stream(url: str, body: bytes) -> tuple[int, dict[str, str], list[bytes]]:
    """A signed POST asking for Server-Sent Events, as the README's `curl -N`; the body as
    the reads that returned it (one per arrival)."""
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={"Content-Type": "application/json", "Accept": "text/event-stream"},
    )
    SigV4Auth(Credentials("testing", "testing", "testing"), "lambda", REGION).add_auth(request)
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    try:
        connection.request("POST", parts.path or "/", body=body, headers=dict(request.headers))
        response = connection.getresponse()
        reads = []
        while chunk := response.read1(65536):
            reads.append(chunk)
        return response.status, {k.lower(): v for k, v in response.getheaders()}, reads
    finally:
        connection.close()


def wait_until_ready(
    process: subprocess.Popen[bytes], state_file: Path, log: Path
) -> dict[str, Any]:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"local.up exited with {process.returncode}:\n{log.read_text()}")
        if state_file.exists():
            state = json.loads(state_file.read_text())
            if state["status"] == "ready":
                return state
        time.sleep(0.5)
    process.terminate()
    pytest.fail(f"local.up was not ready within {STARTUP_TIMEOUT} s:\n{log.read_text()}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped) is not running.
    status = subprocess.run(
        ["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True, check=False
    )
    return status.stdout.strip()[:1] not in ("", "Z")


def refuses_connections(url: str) -> bool:
    parts = urlsplit(url)
    try:
        http.client.HTTPConnection(parts.hostname, parts.port, timeout=5).request("GET", "/")
    except ConnectionRefusedError:
        return True
    return False


@contextmanager
def local_stack(
    model_server_python: Path,
    built_artifacts: Path,
    tmp_path: Path,
    *extra: str,
    own_moto: bool = False,
) -> Iterator[RunningStack]:
    """`make local` with its defaults and ``extra`` arguments, on free ports; stopped by
    `make local-down`'s module, then checked to leave nothing behind. ``own_moto``: local.up
    starts moto itself, as `make local` does (stopping it then stops the stack with it);
    otherwise the test's moto is named with --moto-url, and the teardown's terraform destroy
    must leave it empty."""
    if shutil.which("terraform") is None:
        missing_tool("the terraform CLI is not on PATH")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HF_"))}
    state_dir = tmp_path / "state"
    log = tmp_path / "local-up.log"

    # When local.up owns its moto, the test starts none.
    test_moto = nullcontext() if own_moto else MotoServer(log_path=tmp_path / "moto.log")
    with test_moto as moto:
        with log.open("wb") as output:
            up = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tools.local.up",
                    "--state-dir",
                    str(state_dir),
                    *(() if own_moto else ("--moto-url", moto.url)),
                    "--build-dir",
                    str(built_artifacts),
                    "--model-server-python",
                    str(model_server_python),
                    "--var",
                    "temperature=0",
                    "--max-new-tokens",
                    str(MAX_NEW_TOKENS),
                    "--model-port",
                    "0",
                    "--port-base",
                    "0",
                    *extra,
                ],
                cwd=REPO_ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            state = wait_until_ready(up, state_dir / "local-stack.json", log)
            urls = {label: f["url"] for label, f in state["functions"].items()}
            processes = [state["pid"], state["model_server"]["pid"], state["moto"]["pid"]] + [
                pid for f in state["functions"].values() for pid in f["worker_pids"]
            ]
            processes = [pid for pid in processes if pid is not None]  # none while paused
            servers = (state["model_server"]["url"], *urls.values(), state["moto"]["url"])
            listening = [url for url in servers if url and (own_moto or url != moto.url)]
            assert all(alive(pid) for pid in processes)
            yield RunningStack(state, urls, log)
        finally:
            down = run_tool("tools.local.down", "--state-dir", str(state_dir), env=env, timeout=240)
            if up.poll() is None:
                up.kill()
        # `make local-down` leaves nothing running, listening, or deployed.
        assert down.returncode == 0, down.stdout + down.stderr
        assert up.wait(timeout=60) == 0, log.read_text()
        assert "stopped; nothing left running." in log.read_text()
        assert not (state_dir / "local-stack.json").exists()
        assert [pid for pid in processes if alive(pid)] == []
        assert all(refuses_connections(url) for url in listening)
        if own_moto:  # the stack went with the moto that held it: nothing to destroy
            assert "==> terraform destroy" not in log.read_text()
            return
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        )
        clients = {
            service: session.client(service, endpoint_url=moto.url)
            for service in ("lambda", "sagemaker", "dynamodb", "iam", "logs")
        }
        assert inventory(clients) == {}


def run_pasted(
    export: str, line: str, *, cwd: Path = REPO_ROOT, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """A line the banner printed, pasted into a shell (from the repository's root unless `cwd`
    says otherwise) after its `export` line, without the AWS credentials of this process."""
    return subprocess.run(
        ["bash", "-c", f"{export}\n{line}"],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        cwd=cwd,
    )
