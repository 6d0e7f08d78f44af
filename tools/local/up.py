"""``make local``: the whole app on this machine, torn down on Ctrl-C.

1. moto on 127.0.0.1 is the AWS API (``devstack.MotoServer``; or ``--moto-url`` for one you run);
2. ``terraform apply`` of the repository's root module against it: the same code as a real
   deploy (run in ``.local/root``, a folder of symlinks to the root module's files, so that
   ``.terraform/``, the lock file and the state stay out of the working tree); only the
   endpoints and the dummy credentials differ;
3. the model server serves the endpoint with the token limits read back from what was
   deployed: by default the embedded SmolLM2-135M-Instruct, standing in for the deployed model
   (``tools.local.model`` says which model serves, and runs it);
4. each function with a URL is read back from Lambda and served from its deployed zip and
   layer by ``tools.function_urls``, with ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` pointing at
   the model server and ``AWS_ENDPOINT_URL`` at moto (DynamoDB chat history);
5. the URLs are printed; Ctrl-C, SIGTERM or ``make local-down`` stops the URLs and the model
   server, destroys the stack, checks that moto holds nothing more, and stops moto.

``.local/local-stack.json`` records the processes while it runs (``local.down`` uses it).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from tools.devstack import MotoServer, Terraform, TerraformError, aws_env, terraform_env
from tools.function_urls.server import FunctionUrlServer, InvocationError, write_line
from tools.lambda_sandbox.wrapped import NamespaceError
from tools.local import adapter, state
from tools.local.model import (
    DEFAULT_PYTHON,
    EMBEDDED,
    ModelChoice,
    ModelServerError,
    ModelServerProcess,
    token_limits,
)
from tools.local.preflight import ALREADY_RUNNING, link_root_module, running_stack
from tools.local.stack import (
    DeployedEndpoint,
    DeployedFunction,
    StackError,
    inventory,
    read_endpoint_choice,
    read_functions,
)
from tools.model_server.embedded import EMBEDDED_MODEL_ID

REPO_ROOT = state.REPO_ROOT
LOCAL_ACCOUNT_ID = "123456789012"  # moto's default account
CHAT_QUESTION = '["What is the capital of France?"]'
# A question about a document of the caller's own (inline here; `curl -F` for a file).
QA_QUESTION = (
    '{"question": "How many days did Peter stay?", "documents": ["Elizabeth was taken to the '
    'hospital after the party. Peter stayed with her there for 3 days."]}'
)
# What the Try lines export: any credentials sign a request to the local URLs.
LOCAL_CREDENTIALS = (
    "AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing"
)
# The deployed stack's `chat_curl` signing (outputs.tf), with the shell's exported credentials.
_SIGN_CURL = (
    "--aws-sigv4 'aws:amz:{region}:lambda' --user \"$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY\" "
    '-H "x-amz-security-token: $AWS_SESSION_TOKEN"'
)
_STREAM_CURL = "curl -sS -N -H 'accept: text/event-stream' "


class StartupError(RuntimeError):
    """A step of the startup failed; the message says what to do."""


log = write_line


@contextlib.contextmanager
def children_ignore_sigint() -> Iterator[None]:
    """Processes started inside ignore the terminal's Ctrl-C (an ignored signal survives exec).

    Ctrl-C reaches the whole foreground process group; moto and ``terraform destroy`` must
    outlive it so that the teardown can finish. This process ignores it meanwhile too.
    """
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class LocalStack:
    def __init__(self, args: argparse.Namespace, stop: threading.Event) -> None:
        self.args = args
        self.stop = stop
        self.state_dir: Path = args.state_dir
        self.moto: MotoServer | None = None
        self.moto_url: str = args.moto_url or ""
        self.terraform: Terraform | None = None
        self.applied = False
        self.model: ModelChoice = args.model_choice
        self.model_server: ModelServerProcess | None = None
        self.model_url = ""
        self.endpoint: DeployedEndpoint | None = None
        self.functions: list[DeployedFunction] = []
        self.url_servers: dict[str, FunctionUrlServer] = {}
        self.outputs: dict[str, Any] = {}
        self.adapter_layer: adapter.PublishedLayer | None = None

    # -- startup ----------------------------------------------------------------------------
    def start(self) -> None:
        self._step("starting moto (the AWS API)", self._start_moto)
        self._step("terraform apply of the root module against moto", self._apply)
        self._step("reading the deployed endpoint and functions back from moto", self._read_stack)
        self._step("starting the model server", self._start_model_server)
        self._step("starting the function URLs", self._start_urls)

    def _step(self, title: str, action: Any) -> None:
        if self.stop.is_set():
            raise StartupError("stopped before: " + title)
        log(f"==> {title}")
        started = time.monotonic()
        action()
        log(f"    done in {time.monotonic() - started:.1f} s")

    def _start_moto(self) -> None:
        if self.moto_url:
            log(f"    using moto at {self.moto_url}")
            return
        self.moto = MotoServer(log_path=self.state_dir / "moto.log")
        with children_ignore_sigint():
            self.moto.start()
        self.moto_url = self.moto.url
        log(f"    {self.moto_url} (log: {self.state_dir / 'moto.log'})")
        self._save("starting")

    def _apply(self) -> None:
        root = link_root_module(self.state_dir / "root")
        env = {
            **terraform_env(self.state_dir / "terraform"),
            **aws_env(self.moto_url, region=self.args.region),
        }
        self.terraform = Terraform(root, env)
        if adapter.root_module_takes_adapter(REPO_ROOT):
            self.adapter_layer = adapter.publish(self._clients()["lambda"], self.state_dir)
            log(f"    the local Lambda Web Adapter: {self.adapter_layer.arn}")
        try:
            self.terraform.init()
            self.applied = True  # from here on a failed apply may have created something
            self.terraform.apply(self._variables())
            self.outputs = self.terraform.output_json()
        except TerraformError as error:
            raise StartupError(str(error)) from None

    def _variables(self) -> dict[str, Any]:
        build = self.args.build_dir.resolve()
        variables: dict[str, Any] = {
            "name": self.args.name,
            "chat_package_path": str(build / "chat.zip"),
            "qa_package_path": str(build / "qa.zip"),
            "layer_package_path": str(build / "layer.zip"),
            **self.model.root_variables(),
        }
        if self.adapter_layer is not None:  # the local stand-in for AWS's LWA layer
            variables[adapter.ROOT_VARIABLE] = self.adapter_layer.arn
        if self.args.max_new_tokens is not None:
            variables["max_new_tokens"] = self.args.max_new_tokens
        if self.args.sign_in:
            variables.update(sign_in_variables(self.moto_url))
        for assignment in self.args.var:
            key, _, value = assignment.partition("=")
            variables[key] = value
        return variables

    def _clients(self) -> dict[str, Any]:
        import boto3

        session = boto3.session.Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - moto's dummy credentials
            region_name=self.args.region,
        )
        return {
            service: session.client(service, endpoint_url=self.moto_url)
            for service in ("lambda", "sagemaker", "dynamodb", "iam", "logs")
        }

    def _read_stack(self) -> None:
        assert self.terraform is not None
        clients = self._clients()
        try:
            self.endpoint = read_endpoint_choice(clients["sagemaker"], self.outputs)
            resources = self.terraform.state_resources()
            self.functions = read_functions(
                clients["lambda"],
                self.outputs,
                resources,
                root_dir=REPO_ROOT,
                region=self.args.region,
                account_id=LOCAL_ACCOUNT_ID,
                extra_layers={self.adapter_layer.arn: self.adapter_layer.path}
                if self.adapter_layer
                else {},
            )
        except (StackError, ClientError) as error:
            raise StartupError(f"reading the stack back from moto: {error}") from None
        log(f"    endpoint {self.endpoint_description}")
        for function in self.functions:
            spec = function.spec
            log(
                f"    {function.label}: {spec.name} ({spec.handler}, {spec.runtime}, "
                f"{spec.timeout_seconds:g} s, {spec.memory_mb} MB, {spec.auth_type}, "
                f"{spec.invoke_mode})"
            )

    @property
    def endpoint_description(self) -> str:
        name = self.outputs.get("endpoint_name")
        if self.endpoint is None:
            return f"{name}: paused (endpoint_enabled = false); the functions answer 503"
        if self.endpoint.model_name is None:
            return f"{name}: an existing endpoint (existing_endpoint_name), served locally"
        return f"{name}: {self.endpoint.model_id} on {self.endpoint.engine}"

    def _start_model_server(self) -> None:
        if self.endpoint is None:
            log("    none: the endpoint is paused, so the functions never call it")
            return
        python = Path(self.args.model_server_python)
        if not python.exists():
            raise StartupError(
                f"{python} does not exist: create the model server's venv with "
                "`make model-server-venv` (Python 3.11 with the CPU build of torch)"
            )
        endpoint = self.endpoint
        log(f"    {self.model.announcement(endpoint)}")
        command = [
            *(str(python), "-m", "tools.model_server", *self.model.server_arguments(endpoint)),
            *("--endpoint-name", endpoint.name, "--host", "127.0.0.1"),
            *("--port", str(self.args.model_port), "--region", self.args.region),
            *("--account-id", LOCAL_ACCOUNT_ID, "--variant-name", endpoint.variant_name),
            *("--engine", endpoint.engine),
        ]
        limits = token_limits(endpoint, self.functions[0].spec.environment)
        for flag, value in limits.items():
            if value is not None:
                command += [flag, str(value)]
        self.model_server = ModelServerProcess(command, log)
        try:
            self.model_url = self.model_server.start(self.stop, lambda: self._save("starting"))
        except ModelServerError as error:
            raise StartupError(str(error)) from None
        log(f"    {self.served_model} on {self.model_url}")

    @property
    def served_model(self) -> str:
        if self.endpoint is None:
            return "nothing (paused)"
        return self.model.served(self.endpoint)

    def _start_urls(self) -> None:
        base_env = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_ENDPOINT_URL": self.moto_url,
        }
        if self.model_url:  # none while paused: the functions answer without calling it
            base_env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = self.model_url
        for index, function in enumerate(self.functions):
            port = self.args.port_base + index if self.args.port_base else 0
            server = FunctionUrlServer(
                function.spec,
                port=port,
                python=self.args.function_python,  # None: found by the runtime's version
                base_env=base_env,
                work_dir=self.state_dir,
                log=log,
                cors=function.cors,
            )
            self.url_servers[function.label] = server
            try:
                server.start(warm=True)
            except InvocationError as error:
                raise StartupError(
                    f"{function.spec.name} failed its init phase: {error} (see its log above)"
                ) from None
            except NamespaceError as error:
                raise StartupError(f"{function.spec.name}: {error}") from None
            except OSError as error:
                raise StartupError(
                    f"cannot listen on 127.0.0.1:{port} for {function.label} ({error}); is another "
                    "`make local` running? Stop it with `make local-down`, or pass --port-base"
                ) from None
            self._save("starting")

    # -- running ------------------------------------------------------------------------------
    def banner(self) -> str:
        endpoint = (
            f"{self.outputs.get('endpoint_name')}: {self.served_model} on {self.model_url}"
            if self.endpoint is not None
            else self.endpoint_description
        )
        lines = [
            "",
            f"The app runs locally; Ctrl-C (or `make local-down`) stops it ({self.stop_duration}).",
            f"  endpoint  {endpoint}",
        ]
        for function in self.functions:
            lines.append(f"  {function.label + '_url':<9} {self.url_servers[function.label].url}")
        lines += ["", "Try (as printed, in another terminal):", *self.try_lines()]
        return "\n".join(lines + self.openai_lines()) + "\n"

    def openai_lines(self) -> list[str]:
        """The chat URL's OpenAI base URL, and an openai SDK snippet that asks on it."""
        chat = next((f for f in self.functions if f.label == "chat"), None)
        if chat is None:
            return []
        base_url = self.url_servers["chat"].url.rstrip("/") + "/v1"
        signed = chat.spec.auth_type == "AWS_IAM"
        imports, http = "import openai", ""
        if signed:  # the SigV4 recipe (tools/function_urls/sigv4.py), as on AWS
            imports = "import httpx, openai; from tools.function_urls.sigv4 import FunctionUrlSigV4"
            http = f", http_client=httpx.Client(auth=FunctionUrlSigV4('{self.args.region}'))"
        snippet = (
            f'.venv/bin/python -c "{imports}; '
            f"c = openai.OpenAI(base_url='{base_url}', api_key='unused'{http}); "
            "print(c.chat.completions.create(model=c.models.list().data[0].id, "
            "messages=[{'role': 'user', 'content': 'What is the capital of France?'}])"
            '.choices[0].message.content)"'
        )
        return [
            "",
            f"OpenAI's API on the chat URL (the openai SDK, ChatOpenAI): base_url {base_url}",
            f"  {snippet}",
        ]

    def try_lines(self) -> list[str]:
        """Commands that work when pasted as printed: the credentials a signed URL needs
        first, the seed's chat question (buffered, then streamed) and a QA question about
        a document of the caller's."""
        urls = {function.label: function for function in self.functions}
        signed = any(function.spec.auth_type == "AWS_IAM" for function in self.functions)
        lines = [f"  export {LOCAL_CREDENTIALS}"] if signed else []
        lines += self.sign_in_lines()
        if "chat" in urls:
            chat = self.curl(urls["chat"], CHAT_QUESTION)
            lines += [f"  {chat}"]
            if urls["chat"].spec.invoke_mode == "RESPONSE_STREAM":  # the tokens as they come
                lines += ["  " + chat.replace("curl -sS ", _STREAM_CURL, 1)]
        if "qa" in urls:
            lines += [f"  {self.curl(urls['qa'], QA_QUESTION)}"]
        if signed:
            lines += [
                "",
                "The URLs use AWS_IAM auth, as deployed: requests must be SigV4-signed, with any",
                "credentials (signatures are not verified locally), or the URL answers 403.",
            ]
        return lines

    def sign_in_lines(self) -> list[str]:
        """With API keys on: the local AWS for the key command, and a key made with it (the
        curls send it); with a user pool, where its ids are (README: a token on moto)."""
        table = self.outputs.get("api_keys_table_name")
        if not table:
            return []
        lines = [
            f"  export AWS_ENDPOINT_URL={self.moto_url} AWS_REGION={self.args.region} "
            + LOCAL_CREDENTIALS,
            f"  KEY=$(python -m tools.api_keys create --table {table} --name me | tail -n 1)",
        ]
        pool, client = (
            self.outputs.get("cognito_user_pool_id"),
            self.outputs.get("cognito_app_client_id"),
        )
        if pool and client:
            lines.append(f"  # tokens: user pool {pool}, app client {client}")
        return lines

    def curl(self, function: DeployedFunction, body: str) -> str:
        auth = (
            f"{_SIGN_CURL.format(region=self.args.region)} "
            if function.spec.auth_type == "AWS_IAM"
            else ""
        )
        if self.outputs.get("api_keys_table_name"):
            auth = '-H "authorization: Bearer $KEY" '

        url = self.url_servers[function.label].url
        return f"curl -sS {auth}-H 'content-type: application/json' -d '{body}' {url}"

    @property
    def stop_duration(self) -> str:
        """How long stopping takes, said before it starts (Ctrl-C, `make local-down`)."""
        if not self.destroys_on_stop:
            return "seconds, not minutes: no terraform destroy, the stack goes with moto"
        assert self.terraform is not None
        applied = self.terraform.timings.get("apply")
        took = f" ({applied:.0f} s here)" if applied else ""
        return (
            f"about as long as the apply took{took}: terraform destroy runs against {self.moto_url}"
        )

    def state_document(self, status: str) -> dict[str, Any]:
        return {
            "status": status,
            "stop_duration": self.stop_duration,
            "pid": os.getpid(),
            "marker": "local.up",
            "state_dir": str(self.state_dir),
            "moto": {
                "url": self.moto_url,
                "pid": _moto_pid(self.moto),
                "owned": self.moto is not None,
            },
            "endpoint_name": self.outputs.get("endpoint_name"),
            "endpoint_enabled": self.outputs.get("endpoint_enabled"),
            "model_server": {
                "url": self.model_url,
                "pid": self.model_server.pid if self.model_server else None,
            },
            "functions": {
                label: {
                    "url": server.url if server._httpd is not None else None,
                    "function_name": server.spec.name,
                    "worker_pids": server.function.worker_pids,
                    "worker_marker": server.function.worker_marker,
                }
                for label, server in self.url_servers.items()
            },
        }

    def _save(self, status: str) -> None:
        state.write_state(self.state_dir, self.state_document(status))

    def wait(self) -> None:
        """Until asked to stop, or until the model server dies."""
        while not self.stop.wait(0.5):
            status = self.model_server.exit_status() if self.model_server else None
            if status is not None:
                log(f"the model server exited with status {status}")
                return

    # -- teardown -----------------------------------------------------------------------------
    def teardown(self) -> list[str]:
        """Stop everything started, in reverse; returns what went wrong (nothing is skipped)."""
        started = time.monotonic()
        problems: list[str] = []
        stoppers = {f"the {label} URL": server.stop for label, server in self.url_servers.items()}
        if self.model_server is not None:
            stoppers["the model server"] = self.model_server.stop
        if self.moto is not None:  # nothing is destroyed in it: the stack goes with it
            stoppers["moto"] = self.moto.stop
        if stoppers:
            # Each waits on processes of its own (Lambda's shutdown of every worker, the model
            # server's and moto's exits): together, the wait is the longest one's, not their sum.
            with _timed(f"stopping {', '.join(stoppers)}"), ThreadPoolExecutor() as pool:
                running = {name: pool.submit(stop) for name, stop in stoppers.items()}
                for name, future in running.items():
                    if (error := future.exception()) is not None:  # keep tearing down the rest
                        problems.append(f"stopping {name}: {error}")
        if self.destroys_on_stop:
            assert self.terraform is not None
            with _timed("terraform destroy (Ctrl-C is ignored until it finishes)"):
                try:
                    with children_ignore_sigint():
                        self.terraform.destroy(self._variables())
                except TerraformError as error:
                    problems.append(f"terraform destroy failed: {error}")
        if self.adapter_layer is not None and self.moto_url and self.moto is None:  # outlives us
            try:
                adapter.delete(self._clients()["lambda"], self.adapter_layer)
            except Exception as error:  # report, never mask the teardown
                problems.append(f"deleting the adapter layer: {error}")
        if self.destroys_on_stop and self.moto_url:
            problems += self._check_empty()
        log(f"    stopped in {time.monotonic() - started:.1f} s")
        return problems

    @property
    def destroys_on_stop(self) -> bool:
        """Whether stopping runs `terraform destroy`: only against a moto this run did not
        start (--moto-url), which outlives it. The moto it started keeps the stack in memory
        only, so stopping that moto removes the stack whole, and a destroy would be work
        for nothing."""
        return self.applied and self.terraform is not None and self.moto is None

    def _check_empty(self) -> list[str]:
        try:
            leftovers = inventory(self._clients())
        except Exception as error:  # report, never mask the teardown
            return [f"could not list moto's resources after the destroy: {error}"]
        return [
            f"left in moto after the destroy: {kind}: {names}" for kind, names in leftovers.items()
        ]


@contextlib.contextmanager
def _timed(title: str) -> Iterator[None]:
    log(f"==> {title}")
    started = time.monotonic()
    yield
    log(f"    done in {time.monotonic() - started:.1f} s")


def _moto_pid(moto: MotoServer | None) -> int | None:
    # devstack.MotoServer keeps its process private; local.down needs the pid as a last resort.
    process = getattr(moto, "_proc", None)
    return process.pid if process is not None else None


def sign_in_variables(moto_url: str) -> dict[str, Any]:
    """Both bearer modes on a public URL: API keys, and tokens of a Cognito user pool on moto.

    The functions fetch the pool's signing keys from moto over loopback http (the issuer's
    discovery address is AWS's): moto serves the one JWKS it signs every pool's tokens with at
    /<any pool id>/.well-known/jwks.json.
    """
    return {
        "url_authorization_type": "NONE",
        "api_keys_enabled": True,
        "create_cognito_user_pool": True,
        "jwt_jwks_url": f"{moto_url}/local/.well-known/jwks.json",
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.local.up",
        description="Run the whole app on this machine (what `make local` does).",
    )
    parser.add_argument(
        "--build-dir",
        type=Path,
        default=REPO_ROOT / "build",
        help="where `make package` put the zips",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=state.DEFAULT_STATE_DIR,
        help="Terraform data and state, logs, the state file (default .local/)",
    )
    parser.add_argument(
        "--name", default="local", help="the root module's `name` variable (default: local)"
    )
    parser.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="another root module variable (repeatable); terraform.tfvars applies too",
    )
    parser.add_argument(
        "--model",
        help=f"what the model server serves: {EMBEDDED!r} (the default without --model-dir: "
        f"{EMBEDDED_MODEL_ID}, shipped in the model server's venv), or a Hugging Face Hub id, "
        "deployed as the root module's model_id and loaded from the HF cache (or --model-dir)",
    )
    parser.add_argument(
        "--model-dir",
        help="folder holding the deployed model (config.json, tokenizer, weights) to serve "
        "instead of the embedded one",
    )
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        help="the root module's max_new_tokens (default 256, which a CPU generates within the "
        "functions' read timeout; the deployed default is 700)",
    )
    parser.add_argument("--region", default="us-east-1", help="the local AWS region")
    parser.add_argument("--offline", action="store_true", help="never contact the Hugging Face Hub")
    parser.add_argument(
        "--model-server-python",
        default=str(DEFAULT_PYTHON),
        help="the model server's interpreter (default .venv-model-server/bin/python)",
    )
    parser.add_argument(
        "--function-python",
        help="Python 3.12 for the functions (default: found like the Makefile does)",
    )
    parser.add_argument(
        "--model-port", type=int, default=8080, help="the model server's port (0: any free port)"
    )
    parser.add_argument(
        "--port-base",
        type=int,
        default=9001,
        help="first function URL port, one per function in name order (0: any free ports)",
    )
    parser.add_argument("--moto-url", help="use this running moto server instead of starting one")
    parser.add_argument(
        "--sign-in",
        action="store_true",
        help="bearer sign-in instead of SigV4: a NONE URL with API keys and a Cognito user pool",
    )
    args = parser.parse_args(argv)
    for assignment in args.var:
        if "=" not in assignment:
            parser.error(f"--var expects NAME=VALUE, got {assignment!r}")
    try:
        args.model_choice = ModelChoice.from_arguments(args.model, args.model_dir, args.offline)
    except ValueError as error:
        parser.error(str(error))
    args.state_dir = args.state_dir.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.state_dir.mkdir(parents=True, exist_ok=True)
    running = running_stack(args.state_dir)
    if running is not None:
        log(f"error: {ALREADY_RUNNING.format(pid=running)}")
        return 1
    state.remove_state(args.state_dir)  # one left by a run that was killed, if any

    stop = threading.Event()
    stack = LocalStack(args, stop)

    def request_stop(signum: int, frame: object) -> None:
        if not stop.is_set():
            log(f"\n{signal.Signals(signum).name}: stopping; this takes {stack.stop_duration}...")
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, request_stop)

    state.write_state(args.state_dir, stack.state_document("starting"))
    status = 0
    try:
        stack.start()
        state.write_state(args.state_dir, stack.state_document("ready"))
        log(stack.banner())
        stack.wait()
    except StartupError as error:
        if not stop.is_set():
            log(f"error: {error}")
            status = 1
    finally:
        state.write_state(args.state_dir, stack.state_document("stopping"))
        problems = stack.teardown()
        state.remove_state(args.state_dir)
        for problem in problems:
            log(f"error: {problem}")
        if problems:
            status = 1
        else:
            log("stopped; nothing left running.")
    return status


if __name__ == "__main__":
    sys.exit(main())
