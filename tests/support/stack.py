"""The applied stack the tests/terraform/test_apply_*.py files share, and the helpers they use.

One apply serves them all (a session fixture in tests/terraform/conftest.py): the root module
with the real packages, on moto, in a region that is not us-east-1, so a hard-coded region
anywhere would show. Its functions stream through the Lambda Web Adapter; moto knows only the
layers published in it, not AWS's adapter layer in AWS's own account, so the stack names a
stand-in published in moto through ``adapter_layer_arn``, the variable a GovCloud or private
copy uses (the module's lookup of AWS's layers is planned in tests/terraform/test_plan.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.support.aws_calls import recording_function_calls
from tests.support.terraform import init
from tools.devstack import MotoServer, Terraform
from tools.model_server.scripted_backend import ScriptedBackend
from tools.model_server.server import SageMakerTGIServer

REGION = "eu-west-1"
NAME = "stack-test"
ALIAS = "live"  # modules/lambda-url's alias_name default
TAGS = {"project": "langchain-tgi-lambda", "suite": "stack"}
IMAGE = (
    "763104351884.dkr.ecr.eu-west-1.amazonaws.com/huggingface-pytorch-tgi-inference:"
    "2.7.0-tgi3.3.6-gpu-py311-cu124-ubuntu22.04"
)
# Buckets the QA function may read documents from; IAM needs only their names.
DOCUMENT_BUCKETS = [f"{NAME}-documents", f"{NAME}-reference"]
SEED_SYSTEM_PROMPT = (
    "You are a cool and aloof robot, answering questions very briefly and directly."
)
# Where the alarms notify (moto does not check that the topic exists).
ALARM_TOPIC = f"arn:aws:sns:{REGION}:123456789012:{NAME}-alarms"


@dataclass
class Stack:
    tf: Terraform
    variables: dict[str, Any]
    apply_stdout: str
    outputs: dict[str, Any]
    moto: MotoServer
    destroyed: bool = False
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = boto3.client(
                service,
                endpoint_url=self.moto.url,
                region_name=REGION,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
        return self._clients[service]

    def live(self) -> Stack:
        if self.destroyed:
            pytest.fail(
                "the stack was destroyed before this test ran: the test_apply_*.py files run in"
                " name order, test_apply_teardown.py last"
            )
        return self

    def role_statements(self, role_name: str) -> list[dict[str, Any]]:
        """Every statement of the role's inline policies (it must have no attached ones)."""
        iam = self.client("iam")
        attached = iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]
        assert attached == [], f"{role_name} has managed policies attached: {attached}"
        statements: list[dict[str, Any]] = []
        for policy in iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
            document = iam.get_role_policy(RoleName=role_name, PolicyName=policy)["PolicyDocument"]
            if isinstance(document, str):
                document = json.loads(document)
            for statement in document["Statement"]:
                statements.append(statement)
        return statements


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def grants(statements: list[dict[str, Any]], action: str) -> list[str]:
    """Resources on which the statements allow ``action``."""
    return [
        resource
        for s in statements
        if s["Effect"] == "Allow" and action in as_list(s["Action"])
        for resource in as_list(s["Resource"])
    ]


def deploy(
    staged, moto_env, moto: MotoServer, label: str, variables: dict[str, Any]
) -> Iterator[Stack]:
    tf = Terraform(staged(label), moto_env(REGION))
    init(tf)
    applied = tf.apply(variables)
    deployed = Stack(tf, variables, applied.stdout, tf.output_json(), moto)
    try:
        yield deployed
    finally:
        if not deployed.destroyed:
            tf.destroy(variables)


def package_variables(built_artifacts: Path) -> dict[str, str]:
    return {
        "chat_package_path": str(built_artifacts / "chat.zip"),
        "qa_package_path": str(built_artifacts / "qa.zip"),
        "layer_package_path": str(built_artifacts / "layer.zip"),
    }


COMMON_ENV = {
    "ENDPOINT_NAME": NAME,
    "ENDPOINT_ENABLED": "true",
    # The OpenAI route's models list names it (Terraform's model_id).
    "MODEL_ID": "TinyLlama/TinyLlama-1.1B-Chat-v1.0",
    "MAX_INPUT_TOKENS": "1348",
    "MAX_NEW_TOKENS": "700",
    "TEMPERATURE": "0.5",
    "TOP_P": "0.9",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "LOG_PROMPTS": "false",
    "MAX_QUESTION_CHARS": "4000",
    "POWERTOOLS_METRICS_NAMESPACE": f"LLMApp/{NAME}",
    "TRACING_ENABLED": "false",
}
EXPECTED_ENV = {
    "chat": {
        **COMMON_ENV,
        "POWERTOOLS_SERVICE_NAME": "chat",
        "SYSTEM_PROMPT": SEED_SYSTEM_PROMPT,
        "SYSTEM_PROMPT_PLACEMENT": "auto",
        "HISTORY_TABLE_NAME": f"{NAME}-chat-history",
        "HISTORY_TTL_DAYS": "7",
        "HISTORY_MAX_TURNS": "20",
        "URL_AUTHORIZATION_TYPE": "AWS_IAM",
        "CHAT_SESSION_SCOPE": "caller",
    },
    "qa": {
        **COMMON_ENV,
        "POWERTOOLS_SERVICE_NAME": "qa",
        "QA_DOCUMENT_BUCKETS": ",".join(DOCUMENT_BUCKETS),
        "QA_MAX_DOCUMENT_BYTES": "524288",
        "QA_MAX_CHUNKS": "200",
        "QA_MAP_CONCURRENCY": "4",
    },
}


# What the Lambda Web Adapter needs (AWS_LWA_*: its settings), and what the start script's
# server answers for SnapStart.
ADAPTER_ENV = {
    "AWS_LAMBDA_EXEC_WRAPPER": "/opt/bootstrap",
    "AWS_LWA_INVOKE_MODE": "response_stream",
    "AWS_LWA_SNAPSTART_BEFORE_CHECKPOINT_PATH": "/_lwa/before-checkpoint",
    "AWS_LWA_SNAPSTART_AFTER_RESTORE_PATH": "/_lwa/after-restore",
}


def function_configuration(stack: Stack, function: str) -> dict[str, Any]:
    client = stack.live().client("lambda")
    config: dict[str, Any] = client.get_function(FunctionName=f"{NAME}-{function}")["Configuration"]
    assert config["FunctionName"] == stack.outputs[f"{function}_function_name"]
    assert config["Runtime"] == "python3.12"
    assert config["Architectures"] == ["x86_64"]
    assert config["Timeout"] == 180
    assert config["MemorySize"] == 1024
    return config


# The model calls a streaming function makes: a request that asks for a stream reads the
# model's, an IAM action of its own (the Service Authorization Reference lists
# InvokeEndpointWithResponseStream); JSON requests and QA's map and refine steps read whole
# answers (InvokeEndpoint).
MODEL_ACTIONS = ("sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointWithResponseStream")


def model_grants(statements: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The model actions the statements allow, each with its resources."""
    return {a: grants(statements, a) for a in MODEL_ACTIONS if grants(statements, a)}


# The statements the Lambda service itself uses for the function (its logs, X-Ray segments, the
# environment's KMS key), not the code: the least-privilege test leaves them out.
RUNTIME_STATEMENTS = {"WriteOwnLogs", "XRayTraces", "DecryptEnvironment"}


@contextmanager
def deployed_endpoint(live: Stack, function: str) -> Iterator[tuple[dict[str, str], str]]:
    """The function's deployed environment, and the URL of a local endpoint serving the
    endpoint it names with the token limit it was given."""
    environment: dict[str, str] = live.client("lambda").get_function_configuration(
        FunctionName=f"{NAME}-{function}"
    )["Environment"]["Variables"]
    endpoint = SageMakerTGIServer(
        ScriptedBackend(),
        environment["ENDPOINT_NAME"],
        max_input_tokens=int(environment["MAX_INPUT_TOKENS"]),
        max_total_tokens=2048,
    ).start()
    try:
        yield environment, endpoint.url
    finally:
        endpoint.stop()


def check_role_against_calls(
    live: Stack,
    function: str,
    load_handler: Any,
    exercise: Callable[[Any, dict[str, str], Stack], None],
) -> None:
    """Run ``exercise`` on the function's code, loaded with its deployed environment against
    a local endpoint and moto, recording its AWS calls; its role must grant each call, and
    each of its grants must serve some call."""
    account = live.outputs["endpoint_arn"].split(":")[4]
    with (
        deployed_endpoint(live, function) as (environment, endpoint_url),
        recording_function_calls(REGION, account) as recorder,
    ):
        handler = load_handler(
            f"{function}.handler",
            **environment,
            AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=endpoint_url,
            AWS_ENDPOINT_URL_DYNAMODB=live.moto.url,
            AWS_ENDPOINT_URL_S3=live.moto.url,
            AWS_REGION=REGION,
            AWS_DEFAULT_REGION=REGION,
        )
        exercise(handler, environment, live)

    granted = {
        (action, resource)
        for s in live.role_statements(f"{NAME}-{function}")
        if s["Effect"] == "Allow" and s.get("Sid") not in RUNTIME_STATEMENTS
        for action in as_list(s["Action"])
        for resource in as_list(s["Resource"])
    }
    calls = sorted(recorder.calls)
    assert calls, "the exercise made no AWS call: it cannot check anything"
    missing = [
        c
        for c in calls
        if not any(a == c.action and fnmatchcase(c.resource, r) for a, r in granted)
    ]
    assert missing == [], f"{function}'s code calls what its role lacks"
    unused = sorted(
        (a, r)
        for a, r in granted
        if not any(a == c.action and fnmatchcase(c.resource, r) for c in calls)
    )
    assert unused == [], f"{function}'s role grants what its code never calls"


@contextmanager
def documents_in_buckets(live: Stack) -> Iterator[list[str]]:
    """A small document in each bucket QA may read, as s3:// URIs; removed afterwards."""
    s3 = live.client("s3")
    uris = []
    for bucket in DOCUMENT_BUCKETS:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_object(Bucket=bucket, Key="notes.txt", Body=b"Peter is here.")
        uris.append(f"s3://{bucket}/notes.txt")
    try:
        yield uris
    finally:
        for bucket in DOCUMENT_BUCKETS:
            s3.delete_object(Bucket=bucket, Key="notes.txt")
            s3.delete_bucket(Bucket=bucket)
