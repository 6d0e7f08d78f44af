"""Serve one packaged function behind a local Function URL, e.g. against the real endpoint.

    .venv/bin/python -m tools.function_urls \\
        --zip build/chat.zip --layer build/layer.zip --handler chat.handler.handler \\
        --env ENDPOINT_NAME=my-endpoint --env HISTORY_TABLE_NAME= --timeout 180 --port 9001

The function gets your AWS credentials (any source botocore knows) as its role's.
``--stream`` serves a streaming package (``--handler run.sh``) as ``response_streaming``
deploys it: behind the local Lambda Web Adapter layer, on a RESPONSE_STREAM URL.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from pathlib import Path

from tools.function_urls.server import FunctionUrlServer, write_line
from tools.http_server import serve_until, signal_event
from tools.lambda_sandbox.functions import FunctionSpec, InvocationError
from tools.lambda_sandbox.web_adapter import build_layer
from tools.lambda_sandbox.wrapped import NamespaceError


def _credentials_env() -> dict[str, str]:
    """The caller's AWS credentials (any source botocore knows), as a function's role's."""
    try:
        import botocore.session
    except ImportError:
        keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
        return {k: os.environ[k] for k in keys if k in os.environ}
    session = botocore.session.Session()
    credentials = session.get_credentials()
    if credentials is None:
        return {}
    frozen = credentials.get_frozen_credentials()
    env = {"AWS_ACCESS_KEY_ID": frozen.access_key, "AWS_SECRET_ACCESS_KEY": frozen.secret_key}
    if frozen.token:
        env["AWS_SESSION_TOKEN"] = frozen.token
    return env


def _default_region() -> str:
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        return region
    with contextlib.suppress(ImportError):
        import botocore.session

        region = botocore.session.Session().get_config_variable("region")
    return region or "us-east-1"


def _key_value(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.function_urls",
        description="Serve a packaged Lambda function behind a local Function URL.",
    )
    parser.add_argument("--zip", type=Path, required=True, help="the function's package")
    parser.add_argument(
        "--layer", type=Path, action="append", default=[], help="a layer zip (repeatable, in order)"
    )
    parser.add_argument("--handler", required=True, help="e.g. chat.handler.handler")
    parser.add_argument("--name", help="function name (default: the zip's stem)")
    parser.add_argument(
        "--env", type=_key_value, action="append", default=[], help="NAME=VALUE (repeatable)"
    )
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds (Lambda's default: 3)")
    parser.add_argument("--memory", type=int, default=128, help="MB (Lambda's default: 128)")
    parser.add_argument("--runtime", default="python3.12")
    parser.add_argument("--region", default=None, help="default: your AWS configuration's")
    parser.add_argument(
        "--auth", choices=("NONE", "AWS_IAM"), default="NONE", help="the URL's auth type"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--python", help="interpreter for the function (default: found by version)")
    parser.add_argument(
        "--stream",
        action="store_true",
        help="RESPONSE_STREAM behind the local Lambda Web Adapter (the handler: a start script)",
    )
    parser.add_argument(
        "--no-credentials",
        action="store_true",
        help="do not pass your AWS credentials to the function",
    )
    args = parser.parse_args(argv)
    region = args.region or _default_region()
    layers, environment = list(args.layer), dict(args.env)
    if args.stream:  # what the lambda-url module's response_streaming adds
        layers.append(build_layer(Path(tempfile.mkdtemp(prefix="lwa-")) / "adapter.zip"))
        environment.update(
            {"AWS_LAMBDA_EXEC_WRAPPER": "/opt/bootstrap", "AWS_LWA_INVOKE_MODE": "response_stream"}
        )
    spec = FunctionSpec(
        name=args.name or args.zip.stem,
        handler=args.handler,
        code_zip=args.zip,
        layer_zips=tuple(layers),
        environment=environment,
        timeout_seconds=args.timeout,
        memory_mb=args.memory,
        runtime=args.runtime,
        region=region,
        auth_type=args.auth,
        invoke_mode="RESPONSE_STREAM" if args.stream else "BUFFERED",
    )
    base_env = {} if args.no_credentials else _credentials_env()
    # Endpoint overrides (AWS_ENDPOINT_URL*) in your shell reach the function, as --env would.
    base_env.update({k: v for k, v in os.environ.items() if k.startswith("AWS_ENDPOINT_URL")})

    log = write_line
    stop = signal_event()
    server = FunctionUrlServer(
        spec, host=args.host, port=args.port, python=args.python, base_env=base_env, log=log
    )
    try:
        server.start(warm=True)
    except (InvocationError, NamespaceError) as error:
        server.stop()
        print(f"error: {spec.name} failed to initialise: {error}", file=sys.stderr)
        return 1
    log(f"{spec.name}: {server.url} (handler {spec.handler}, timeout {spec.timeout_seconds:g} s)")
    serve_until(stop, server)
    return 0


sys.exit(main())
