"""End to end: `make local`'s machinery with the tiny model, then `make local-down`.

``python -m tools.local.up`` applies the real root module to moto, starts the model server (own
venv) on the tiny model under TinyLlama's id, and serves the packaged functions (build/) on
local URLs; the test calls both URLs the way the README's curl does, then stops it with
``python -m tools.local.down`` and checks that no process, port or AWS resource is left. Moto is
the test's own here, so that what the teardown left in it can be inspected afterwards.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.support.tools import missing_tool
from tools.devstack import MotoServer
from tools.local.stack import inventory
from tools.paths import REPO_ROOT

pytestmark = [pytest.mark.local, pytest.mark.model_server]

REGION = "us-east-1"
QUESTION = b'["What is the capital of France?"]'
STARTUP_TIMEOUT = 300  # seconds; ~40 s on 2 cores


def post(url: str, body: bytes, *, sign: bool) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": "application/json"}
    if sign:  # as curl --aws-sigv4 does; the local URL checks the signature is there
        request = AWSRequest(method="POST", url=url, data=body, headers=headers)
        SigV4Auth(Credentials("testing", "testing", "testing"), "lambda", REGION).add_auth(request)
        headers = dict(request.headers.items())
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    try:
        connection.request("POST", parts.path or "/", body=body, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
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


def test_make_local_serves_both_functions_and_leaves_nothing_behind(
    model_server_python: Path, tiny_model: Path, built_artifacts: Path, tmp_path: Path
) -> None:
    if shutil.which("terraform") is None:
        missing_tool("the terraform CLI is not on PATH")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HF_"))}
    state_dir = tmp_path / "state"
    log = tmp_path / "local-up.log"

    with MotoServer(log_path=tmp_path / "moto.log") as moto:
        with log.open("wb") as output:
            up = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tools.local.up",
                    "--state-dir",
                    str(state_dir),
                    "--moto-url",
                    moto.url,
                    "--build-dir",
                    str(built_artifacts),
                    "--model-server-python",
                    str(model_server_python),
                    "--model-dir",
                    str(tiny_model),
                    "--offline",
                    "--model-port",
                    "0",
                    "--port-base",
                    "0",
                ],
                cwd=REPO_ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            state = wait_until_ready(up, state_dir / "local-stack.json", log)
            urls = {label: f["url"] for label, f in state["functions"].items()}
            assert set(urls) == {"chat", "qa"}

            for label, url in urls.items():
                # The URLs keep the deployed AWS_IAM auth: unsigned requests are refused.
                status, _, body = post(url, QUESTION, sign=False)
                assert (status, json.loads(body)) == (403, {"Message": "Forbidden"})

                status, headers, body = post(url, QUESTION, sign=True)
                assert status == 200, (label, body)
                assert headers["content-type"] == "application/json"
                answer = json.loads(body)
                assert isinstance(answer["answer"], str), answer

                status, _, body = post(url, b"not json", sign=True)
                assert status == 400
                error = json.loads(body)["error"]
                assert error["code"] == "invalid_json"
                assert error["message"]

            chat = json.loads(post(urls["chat"], QUESTION, sign=True)[2])
            assert chat["memory"] == "enabled"  # DynamoDB history on moto
            followup = json.dumps(["And its population?", chat["session_id"]]).encode()
            assert post(urls["chat"], followup, sign=True)[0] == 200

            text = log.read_text()
            assert "[model] POST /endpoints/local/invocations 200" in text
            for name in ("local-chat", "local-qa"):
                assert f"{name} POST / 200 " in text
                assert f"[{name}] cold start: init" in text

            processes = [state["pid"], state["model_server"]["pid"]] + [
                pid for f in state["functions"].values() for pid in f["worker_pids"]
            ]
            listening = [state["model_server"]["url"], *urls.values()]
            assert all(alive(pid) for pid in processes)
        finally:
            down = subprocess.run(
                [sys.executable, "-m", "tools.local.down", "--state-dir", str(state_dir)],
                cwd=REPO_ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=240,
                check=False,
            )
            if up.poll() is None:
                up.kill()
        assert down.returncode == 0, down.stdout + down.stderr
        assert up.wait(timeout=60) == 0, log.read_text()

        assert "stopped; nothing left running." in log.read_text()
        assert not (state_dir / "local-stack.json").exists()
        assert [pid for pid in processes if alive(pid)] == []
        assert all(refuses_connections(url) for url in listening)
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        )
        clients = {
            service: session.client(service, endpoint_url=moto.url)
            for service in ("lambda", "sagemaker", "dynamodb", "iam", "logs")
        }
        assert inventory(clients) == {}
