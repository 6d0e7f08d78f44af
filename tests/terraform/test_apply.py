"""The root module applied to moto with the real packages, checked from state and the AWS APIs.

Two applies serve the tests in this file (each takes ~15 s), in file order: the default stack,
whose functions stream through the Lambda Web Adapter, then, once it is destroyed and checked
to leave nothing, the same stack with ``response_streaming = false``, whose functions must be
today's buffered ones, exactly. The region is not us-east-1, so a hard-coded region anywhere
would show.

moto knows only the layers published in it, not AWS's adapter layer in AWS's own account, so
the streaming stack names a stand-in published in moto through ``adapter_layer_arn``, the
variable a GovCloud or private copy uses: the module's lookup of AWS's layers is planned in
tests/terraform/test_plan.py, region by region.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.support.aws_calls import recording_function_calls
from tests.support.emf import emf_problems, emf_records, metric_values
from tests.support.events import function_url_event
from tests.support.terraform import init
from tools.devstack import MotoServer, Terraform
from tools.lambda_sandbox import artifacts as sandbox
from tools.model_server.scripted_backend import ScriptedBackend
from tools.model_server.server import SageMakerTGIServer
from tools.paths import REPO_ROOT

pytestmark = pytest.mark.stack

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
                "the stack was destroyed before this test ran; the tests rely on file order"
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


@pytest.fixture(scope="module")
def adapter_layer_arn(adapter_layer) -> str:
    return str(adapter_layer(REGION))


@pytest.fixture(scope="module")
def stack(
    staged, moto_env, moto: MotoServer, built_artifacts: Path, adapter_layer_arn: str
) -> Iterator[Stack]:
    variables = {
        "name": NAME,
        "tags": TAGS,
        **package_variables(built_artifacts),
        # Off by default; on here so its resources are applied and destroyed too.
        "autoscaling_enabled": True,
        "qa_document_buckets": DOCUMENT_BUCKETS,
        "adapter_layer_arn": adapter_layer_arn,
        "alarm_actions": [ALARM_TOPIC],
    }
    yield from deploy(staged, moto_env, moto, "apply", variables)


# -----------------------------------------------------------------------------
# Outputs
# -----------------------------------------------------------------------------


def test_apply_prints_the_urls_and_the_endpoint_name(stack: Stack) -> None:
    for output in ("chat_url", "qa_url", "endpoint_name"):
        assert f"\n{output} = " in stack.live().apply_stdout
    assert stack.outputs["chat_url"].startswith("https://")
    assert f".lambda-url.{REGION}.on.aws" in stack.outputs["chat_url"]
    assert stack.outputs["endpoint_name"] == NAME


def test_curl_outputs_sign_requests_for_the_region(stack: Stack) -> None:
    for function in ("chat", "qa"):
        curl = stack.live().outputs[f"{function}_curl"]
        assert f'--aws-sigv4 "aws:amz:{REGION}:lambda"' in curl
        assert '--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY"' in curl
        assert '-H "x-amz-security-token: $AWS_SESSION_TOKEN"' in curl
        assert "-d '[\"What is the capital of France?\"]'" in curl
        assert curl.endswith(stack.outputs[f"{function}_url"])


def test_url_callers_may_invoke_only_through_the_function_urls(stack: Stack) -> None:
    """The output callers attach: Invoke on the two aliases only via a Function URL, so nobody
    can call Lambda's Invoke API with a hand-made event naming another caller."""
    outputs = stack.live().outputs
    aliases = sorted([outputs["chat_alias_arn"], outputs["qa_alias_arn"]])
    document = json.loads(outputs["url_caller_policy_json"])
    statements = {statement["Sid"]: statement for statement in document["Statement"]}

    assert set(statements) == {"CallFunctionUrls", "InvokeThroughFunctionUrlsOnly"}
    url = statements["CallFunctionUrls"]
    assert (url["Effect"], url["Action"]) == ("Allow", "lambda:InvokeFunctionUrl")
    assert sorted(url["Resource"]) == aliases
    assert url["Condition"] == {"StringEquals": {"lambda:FunctionUrlAuthType": "AWS_IAM"}}
    invoke = statements["InvokeThroughFunctionUrlsOnly"]
    assert (invoke["Effect"], invoke["Action"]) == ("Allow", "lambda:InvokeFunction")
    assert sorted(invoke["Resource"]) == aliases
    assert invoke["Condition"] == {"Bool": {"lambda:InvokedViaFunctionUrl": "true"}}


def test_the_complete_example_attaches_that_policy_and_no_other_grant() -> None:
    """examples/complete, the one people copy, gives its callers exactly the output above
    (`terraform validate` in test_static.py checks the reference resolves)."""
    example = (REPO_ROOT / "examples" / "complete" / "main.tf").read_text()
    policy = re.search(r'resource "aws_iam_policy" "callers" \{\n(.*?)\n\}', example, re.S)
    assert policy is not None
    assert re.search(
        r"^\s*policy\s*=\s*module\.langchain_tgi\.url_caller_policy_json$", policy[1], re.M
    )
    assert '"lambda:Invoke' not in example  # no hand-written grant beside it


def test_unchanged_configuration_plans_no_change(stack: Stack) -> None:
    # Same packages, same variables: `-detailed-exitcode` is 0 only for an empty plan.
    plan = stack.live().tf.plan(stack.variables, "-detailed-exitcode", check=False)
    assert plan.returncode == 0, plan.stdout[-4000:] + plan.stderr[-2000:]


# -----------------------------------------------------------------------------
# Functions and URLs
# -----------------------------------------------------------------------------

COMMON_ENV = {
    "ENDPOINT_NAME": NAME,
    "ENDPOINT_ENABLED": "true",
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


@pytest.mark.parametrize("function", ["chat", "qa"])
def test_function_runs_its_start_script_behind_the_adapter(
    stack: Stack, function: str, adapter_layer_arn: str
) -> None:
    config = function_configuration(stack, function)
    # /opt/bootstrap (the adapter) execs $LAMBDA_TASK_ROOT/$_HANDLER: the package's start script.
    assert config["Handler"] == "run.sh"
    # The adapter's layer last, so that the dependencies' layer cannot shadow /opt/bootstrap.
    layers = [layer["Arn"] for layer in config["Layers"]]
    assert layers == [stack.outputs["layer_arn"], adapter_layer_arn]
    assert stack.outputs["adapter_layer_arn"] == adapter_layer_arn
    # Exactly the contract's variables and the adapter's: nothing missing, nothing extra.
    assert config["Environment"]["Variables"] == {**EXPECTED_ENV[function], **ADAPTER_ENV}


def test_functions_deploy_the_built_packages(stack: Stack) -> None:
    state = stack.live().tf.state_resources()
    for function in ("chat", "qa"):
        deployed = state[f'module.functions["{function}"].aws_lambda_function.this']
        assert deployed["filename"] == stack.variables[f"{function}_package_path"]
        assert deployed["source_code_hash"]
    layer = state["aws_lambda_layer_version.deps"]
    assert layer["compatible_runtimes"] == ["python3.12"]
    assert layer["compatible_architectures"] == ["x86_64"]


@pytest.mark.parametrize("function", ["chat", "qa"])
def test_function_url_requires_iam_and_is_not_public(stack: Stack, function: str) -> None:
    client = stack.live().client("lambda")
    url = client.get_function_url_config(FunctionName=f"{NAME}-{function}", Qualifier=ALIAS)
    assert url["AuthType"] == "AWS_IAM"
    assert url["InvokeMode"] == "RESPONSE_STREAM"
    assert url["FunctionUrl"] == stack.outputs[f"{function}_url"]
    # No resource-policy statement opens the function, or its alias, to everyone.
    for qualifier in ({}, {"Qualifier": ALIAS}):
        try:
            policy = json.loads(
                client.get_policy(FunctionName=f"{NAME}-{function}", **qualifier)["Policy"]
            )
        except client.exceptions.ResourceNotFoundException:
            policy = {"Statement": []}
        assert [s for s in policy["Statement"] if s.get("Principal") in ("*", {"AWS": "*"})] == []


@pytest.mark.parametrize("function", ["chat", "qa"])
def test_the_url_serves_an_alias_of_the_published_version(stack: Stack, function: str) -> None:
    client = stack.live().client("lambda")
    name = f"{NAME}-{function}"
    deployed = stack.tf.state_resources()[
        f'module.functions["{function}"].aws_lambda_function.this'
    ]
    alias = client.get_alias(FunctionName=name, Name=ALIAS)

    assert deployed["publish"] is True
    assert alias["FunctionVersion"] == deployed["version"] != "$LATEST"
    assert stack.outputs[f"{function}_alias_arn"] == alias["AliasArn"]
    assert alias["AliasArn"].endswith(f":function:{name}:{ALIAS}")
    url = client.get_function_url_config(FunctionName=name, Qualifier=ALIAS)
    assert url["FunctionArn"] == alias["AliasArn"]
    # The URL is the alias's alone: the unqualified function ($LATEST) has none.
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_function_url_config(FunctionName=name)


@pytest.mark.parametrize("function", ["chat", "qa"])
def test_snap_start_is_on_for_the_published_version(stack: Stack, function: str) -> None:
    client = stack.live().client("lambda")
    name = f"{NAME}-{function}"
    version = client.get_alias(FunctionName=name, Name=ALIAS)["FunctionVersion"]

    published = client.get_function_configuration(FunctionName=name, Qualifier=version)
    latest = client.get_function_configuration(FunctionName=name)

    assert published["SnapStart"] == {"ApplyOn": "PublishedVersions", "OptimizationStatus": "On"}
    assert latest["SnapStart"] == {"ApplyOn": "PublishedVersions", "OptimizationStatus": "Off"}


# The model calls a streaming function makes: a request that asks for a stream reads the
# model's, an IAM action of its own (the Service Authorization Reference lists
# InvokeEndpointWithResponseStream); JSON requests and QA's map and refine steps read whole
# answers (InvokeEndpoint).
MODEL_ACTIONS = ("sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointWithResponseStream")


def model_grants(statements: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The model actions the statements allow, each with its resources."""
    return {a: grants(statements, a) for a in MODEL_ACTIONS if grants(statements, a)}


@pytest.mark.parametrize("function", ["chat", "qa"])
def test_function_role_may_invoke_only_the_endpoint(stack: Stack, function: str) -> None:
    statements = stack.live().role_statements(f"{NAME}-{function}")
    endpoint_arn = stack.outputs["endpoint_arn"]
    assert model_grants(statements) == {action: [endpoint_arn] for action in MODEL_ACTIONS}
    assert endpoint_arn == f"arn:aws:sagemaker:{REGION}:123456789012:endpoint/{NAME}"
    log_group = f"arn:aws:logs:{REGION}:123456789012:log-group:/aws/lambda/{NAME}-{function}:*"
    assert grants(statements, "logs:PutLogEvents") == [log_group]
    # Least privilege: no wildcard action, and no wildcard resource at all.
    for statement in statements:
        assert all("*" not in action for action in as_list(statement["Action"])), statement
        assert "*" not in as_list(statement["Resource"]), statement


def test_only_chat_reaches_the_history_table_and_only_its_items(stack: Stack) -> None:
    table_arn = stack.live().outputs["chat_history_table_arn"]
    chat = stack.role_statements(f"{NAME}-chat")
    dynamodb = [s for s in chat if any(a.startswith("dynamodb:") for a in as_list(s["Action"]))]
    assert len(dynamodb) == 1
    assert sorted(as_list(dynamodb[0]["Action"])) == [
        "dynamodb:DeleteItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
    ]
    assert as_list(dynamodb[0]["Resource"]) == [table_arn]
    qa = stack.role_statements(f"{NAME}-qa")
    assert not [a for s in qa for a in as_list(s["Action"]) if a.startswith("dynamodb:")]


def test_only_qa_reads_documents_and_only_the_allowed_buckets_objects(stack: Stack) -> None:
    qa = stack.live().role_statements(f"{NAME}-qa")
    s3 = [s for s in qa if any(a.startswith("s3:") for a in as_list(s["Action"]))]
    assert len(s3) == 1
    assert as_list(s3[0]["Action"]) == ["s3:GetObject"]
    assert sorted(as_list(s3[0]["Resource"])) == sorted(
        f"arn:aws:s3:::{bucket}/*" for bucket in DOCUMENT_BUCKETS
    )
    # No key ARNs given: no KMS grant.
    assert not [a for s in qa for a in as_list(s["Action"]) if a.startswith("kms:")]
    chat = stack.role_statements(f"{NAME}-chat")
    assert not [a for s in chat for a in as_list(s["Action"]) if a.startswith("s3:")]


# The statements the Lambda service itself uses for the function (its logs, X-Ray segments, the
# environment's KMS key), not the code: the least-privilege test leaves them out.
RUNTIME_STATEMENTS = {"WriteOwnLogs", "XRayTraces", "DecryptEnvironment"}


def exercise_chat(chat: Any, context: Any, live: Any) -> None:
    """Every route of chat: a new session, its continuation, and forgetting it."""
    first = json.loads(chat.handler(function_url_event('["Hi"]'), context)["body"])
    session_id = first["session_id"]
    continued = chat.handler(function_url_event(json.dumps(["Again", session_id])), context)
    assert continued["statusCode"] == 200, continued["body"]
    query = {"session_id": session_id}
    forgotten = chat.handler(function_url_event(None, method="DELETE", query=query), context)
    assert json.loads(forgotten["body"]) == {"session_id": session_id, "deleted_turns": 2}


def exercise_qa(qa: Any, context: Any, live: Any) -> None:
    """Every route of QA: the seed's document, documents sent in the body, and a document
    in each bucket the function may read."""
    s3 = live.client("s3")
    uris = []
    for bucket in DOCUMENT_BUCKETS:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_object(Bucket=bucket, Key="notes.txt", Body=b"Peter is here.")
        uris.append(f"s3://{bucket}/notes.txt")
    bodies = [
        '["How long was Elizabeth hospitalized?"]',
        '["Who?", ["Peter is here."]]',
        json.dumps(["Who?", uris]),
    ]
    try:
        for body in bodies:
            response = qa.handler(function_url_event(body), context)
            assert response["statusCode"] == 200, response["body"]
    finally:
        for bucket in DOCUMENT_BUCKETS:
            s3.delete_object(Bucket=bucket, Key="notes.txt")
            s3.delete_bucket(Bucket=bucket)


EXERCISES = {"chat": exercise_chat, "qa": exercise_qa}


# Through the door the adapter calls (functions/llm_app/http/web.py, served as run.sh serves it):
# JSON requests read the model's whole answer, streamed ones its stream.
def stream_chat(address: str, web: Any, live: Stack) -> None:
    """Every route of streaming chat: a JSON answer starting a session, a streamed answer
    continuing it, and forgetting it."""
    event = function_url_event('["Hi"]')
    first = web.send(address, event["body"], web.forwarded(event))
    assert first.status == 200, first.body
    session_id = first.json()["session_id"]
    event = function_url_event(json.dumps(["Again", session_id]), accept="text/event-stream")
    events = web.SseReader(web.open_stream(address, event["body"], web.forwarded(event))).events()
    assert events[-1] == (None, "[DONE]"), events
    event = function_url_event(None, method="DELETE", query={"session_id": session_id})
    forgotten = web.send(
        address, None, web.forwarded(event), method="DELETE", path=f"/?session_id={session_id}"
    )
    assert forgotten.json() == {"session_id": session_id, "deleted_turns": 2}


def stream_qa(address: str, web: Any, live: Stack) -> None:
    """Every route of streaming QA: the seed's document as JSON, and documents from each
    bucket it may read, streamed."""
    s3 = live.client("s3")
    uris = []
    for bucket in DOCUMENT_BUCKETS:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_object(Bucket=bucket, Key="notes.txt", Body=b"Peter is here.")
        uris.append(f"s3://{bucket}/notes.txt")
    try:
        event = function_url_event('["How long was Elizabeth hospitalized?"]')
        answer = web.send(address, event["body"], web.forwarded(event))
        assert answer.status == 200, answer.body
        event = function_url_event(json.dumps(["Who?", uris]), accept="text/event-stream")
        stream = web.open_stream(address, event["body"], web.forwarded(event))
        events = web.SseReader(stream).events()
        assert events[-1] == (None, "[DONE]"), events
    finally:
        for bucket in DOCUMENT_BUCKETS:
            s3.delete_object(Bucket=bucket, Key="notes.txt")
            s3.delete_bucket(Bucket=bucket)


STREAMING_EXERCISES = {"chat": stream_chat, "qa": stream_qa}


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


@pytest.mark.parametrize("function", ["chat", "qa"])
def test_each_streaming_role_grants_exactly_what_its_code_calls(
    stack: Stack, function: str, load_handler
) -> None:
    """As the buffered test below, through the door the adapter calls: the app run.sh serves."""
    pytest.importorskip(
        "llm_app.http.web", reason="the functions' streaming door is not in this tree"
    )
    web = pytest.importorskip("tests.support.web", reason="its test helpers are not either")

    def exercise(handler: Any, environment: dict[str, str], live: Stack) -> None:
        # Imported after the handler, from the same fresh modules (load_handler re-imports them).
        door = importlib.import_module("llm_app.http.web")
        app = door.FunctionApp(handler.ROUTES, handler.SETTINGS, handler.logger)
        with web.serving(app) as address:
            STREAMING_EXERCISES[function](address, web, live)

    check_role_against_calls(stack.live(), function, load_handler, exercise)


@pytest.mark.parametrize("function", ["chat", "qa"])
def test_log_groups_exist_with_retention(stack: Stack, function: str) -> None:
    groups = (
        stack.live()
        .client("logs")
        .describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{NAME}-{function}")["logGroups"]
    )
    assert [(g["logGroupName"], g.get("retentionInDays")) for g in groups] == [
        (f"/aws/lambda/{NAME}-{function}", 30)
    ]


# -----------------------------------------------------------------------------
# Model endpoint
# -----------------------------------------------------------------------------


def test_model_runs_the_region_tgi_image_with_the_token_limits(stack: Stack) -> None:
    sagemaker = stack.live().client("sagemaker")
    model = sagemaker.describe_model(ModelName=stack.outputs["model_name"])
    container = model["PrimaryContainer"]
    assert container["Image"] == IMAGE == stack.outputs["image_uri"]
    assert container["Environment"] == {
        "HF_MODEL_ID": "TinyLlama/TinyLlama-1.1B-Chat-v1.0",
        # The container's own limit (TGI's default), not the functions' budget: generation
        # settings stay out of the model.
        "MAX_INPUT_TOKENS": "2047",
        "MAX_TOTAL_TOKENS": "2048",
        "MAX_BATCH_PREFILL_TOKENS": "2097",
        "SM_NUM_GPUS": "1",
    }
    assert model["ExecutionRoleArn"] == stack.outputs["sagemaker_role_arn"]


def test_endpoint_serves_the_model_on_one_g5_instance(stack: Stack) -> None:
    sagemaker = stack.live().client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName=NAME)
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["EndpointArn"] == stack.outputs["endpoint_arn"]
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    [variant] = config["ProductionVariants"]
    assert variant["ModelName"] == stack.outputs["model_name"]
    assert variant["InstanceType"] == "ml.g5.xlarge"
    assert variant["InitialInstanceCount"] == 1
    assert variant["ContainerStartupHealthCheckTimeoutInSeconds"] == 900


def test_sagemaker_role_pulls_only_the_tgi_repository(stack: Stack) -> None:
    role = stack.live().outputs["sagemaker_role_arn"].rsplit("/", 1)[1]
    statements = stack.role_statements(role)
    repository = f"arn:aws:ecr:{REGION}:763104351884:repository/huggingface-pytorch-tgi-inference"
    assert grants(statements, "ecr:BatchGetImage") == [repository]
    assert grants(statements, "ecr:GetDownloadUrlForLayer") == [repository]
    # Wildcard resources only where AWS offers no resource-level permission.
    for statement in statements:
        if "*" in as_list(statement["Resource"]):
            assert as_list(statement["Action"]) in (
                ["ecr:GetAuthorizationToken"],
                ["cloudwatch:PutMetricData"],
            ), statement
    [metrics] = [s for s in statements if "cloudwatch:PutMetricData" in as_list(s["Action"])]
    assert metrics["Condition"] == {"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}}
    trust = stack.client("iam").get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
    [assume] = trust["Statement"]
    assert assume["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert assume["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}


def test_endpoint_autoscaling_tracks_invocations_per_instance(stack: Stack) -> None:
    client = stack.live().client("application-autoscaling")
    resource_id = f"endpoint/{NAME}/variant/AllTraffic"
    [target] = client.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[resource_id]
    )["ScalableTargets"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 2)
    [policy] = client.describe_scaling_policies(
        ServiceNamespace="sagemaker", ResourceId=resource_id
    )["ScalingPolicies"]
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == (
        "SageMakerVariantInvocationsPerInstance"
    )
    assert tracking["TargetValue"] == 20


# -----------------------------------------------------------------------------
# Chat history table
# -----------------------------------------------------------------------------


def test_history_table_keys_billing_ttl_and_encryption(stack: Stack) -> None:
    dynamodb = stack.live().client("dynamodb")
    name = stack.outputs["chat_history_table_name"]
    assert name == f"{NAME}-chat-history"
    table = dynamodb.describe_table(TableName=name)["Table"]
    assert table["TableArn"] == stack.outputs["chat_history_table_arn"]
    assert {(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]} == {
        ("session_id", "HASH"),
        ("turn_id", "RANGE"),
    }
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSEDescription"]["Status"] == "ENABLED"
    assert table.get("DeletionProtectionEnabled", False) is False
    ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")
    backups = dynamodb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "DISABLED"


def test_resources_carry_the_tags(stack: Stack) -> None:
    outputs = stack.live().outputs
    lambda_tags = stack.client("lambda").list_tags(Resource=outputs["chat_function_arn"])["Tags"]
    table_tags = stack.client("dynamodb").list_tags_of_resource(
        ResourceArn=outputs["chat_history_table_arn"]
    )["Tags"]
    endpoint_tags = stack.client("sagemaker").list_tags(ResourceArn=outputs["endpoint_arn"])["Tags"]
    role_tags = stack.client("iam").list_role_tags(RoleName=outputs["chat_role_name"])["Tags"]
    for tags in (
        lambda_tags,
        {t["Key"]: t["Value"] for t in table_tags},
        {t["Key"]: t["Value"] for t in endpoint_tags},
        {t["Key"]: t["Value"] for t in role_tags},
    ):
        assert TAGS.items() <= tags.items()


# -----------------------------------------------------------------------------
# Endpoint updates that match AWS
# -----------------------------------------------------------------------------


def planned_changes(stack: Stack, label: str, **overrides: Any) -> dict[str, list[str]]:
    """The actions a plan with changed variables would take, by resource address."""
    tf = stack.live().tf
    tf.plan({**stack.variables, **overrides}, "-refresh=false", f"-out={label}.tfplan")
    shown = json.loads(tf.run("show", "-json", f"{label}.tfplan").stdout)
    return {
        c["address"]: c["change"]["actions"]
        for c in shown["resource_changes"]
        if c["change"]["actions"] not in (["no-op"], ["read"])
    }


ENDPOINT_RESOURCES = ("aws_sagemaker_", "aws_appautoscaling_", "terraform_data")


def test_generation_settings_change_only_the_functions(stack: Stack) -> None:
    # A GPU redeploy takes 10-15 minutes: max_new_tokens, temperature and top_p must not
    # cause one. They reach the functions' environment only.
    changes = planned_changes(stack, "generation", max_new_tokens=512, temperature=0.2, top_p=0.8)
    endpoint = {a: v for a, v in changes.items() if a.split(".")[-2].startswith(ENDPOINT_RESOURCES)}
    assert endpoint == {}
    assert changes, "the functions' environment must change"
    assert all(".aws_lambda_" in address for address in changes), changes


def test_an_instance_type_change_with_autoscaling_deregisters_it_first(stack: Stack) -> None:
    # SageMaker refuses to change the instance type of a variant registered for autoscaling:
    # the scalable target and its policy are replaced (deleted before the endpoint update,
    # created after it), and the endpoint is updated in place, not recreated.
    changes = planned_changes(stack, "instance-type", instance_type="ml.g5.2xlarge")
    llm = "module.llm[0]."
    assert changes[f"{llm}aws_appautoscaling_target.this[0]"] == ["delete", "create"]
    assert changes[f"{llm}aws_appautoscaling_policy.this[0]"] == ["delete", "create"]
    assert changes[f"{llm}aws_sagemaker_endpoint.this[0]"] == ["update"]
    assert changes[f"{llm}aws_sagemaker_endpoint_configuration.this[0]"] == ["create", "delete"]
    assert f"{llm}aws_sagemaker_model.this[0]" not in changes


# -----------------------------------------------------------------------------
# Monitoring: alarms, dashboard, the functions' EMF metrics
# -----------------------------------------------------------------------------

# Every alarm the stack creates: (namespace, metric, dimensions, statistic) by alarm name.
EXPECTED_ALARMS = {
    **{
        f"{NAME}-{function}-{kind}": (
            "AWS/Lambda",
            metric,
            {"FunctionName": f"{NAME}-{function}", "Resource": f"{NAME}-{function}:{ALIAS}"},
            statistic,
        )
        for function in ("chat", "qa")
        for kind, metric, statistic in [
            ("url-5xx", "Url5xxCount", "Sum"),
            ("errors", "Errors", "Sum"),
            ("throttles", "Throttles", "Sum"),
            ("duration", "Duration", "Maximum"),
        ]
    },
    f"{NAME}-endpoint-invocation-5xx": (
        "AWS/SageMaker",
        "Invocation5XXErrors",
        {"EndpointName": NAME, "VariantName": "AllTraffic"},
        "Sum",
    ),
    f"{NAME}-endpoint-model-latency": (
        "AWS/SageMaker",
        "ModelLatency",
        {"EndpointName": NAME, "VariantName": "AllTraffic"},
        "p90",
    ),
    # ml.g5.xlarge has one GPU: GPU compute, not GPU memory (TGI reserves that at start).
    f"{NAME}-endpoint-utilization": (
        "/aws/sagemaker/Endpoints",
        "GPUUtilization",
        {"EndpointName": NAME, "VariantName": "AllTraffic"},
        "Average",
    ),
}


def alarms(stack: Stack) -> dict[str, dict[str, Any]]:
    described = stack.live().client("cloudwatch").describe_alarms(AlarmNamePrefix=NAME)
    return {alarm["AlarmName"]: alarm for alarm in described["MetricAlarms"]}


def test_alarms_watch_the_urls_functions_and_endpoint_and_notify_the_actions(
    stack: Stack,
) -> None:
    found = alarms(stack)
    assert found.keys() == {*EXPECTED_ALARMS, f"{NAME}-chat-history-throttles"}
    for name, (namespace, metric, dimensions, statistic) in EXPECTED_ALARMS.items():
        alarm = found[name]
        assert (alarm["Namespace"], alarm["MetricName"]) == (namespace, metric), name
        assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == dimensions, name
        assert statistic in (alarm.get("Statistic"), alarm.get("ExtendedStatistic")), name
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["Period"] == 300
        assert alarm["TreatMissingData"] == "notBreaching"
    for name, alarm in found.items():
        assert alarm["AlarmActions"] == [ALARM_TOPIC], name
        assert alarm["OKActions"] == [ALARM_TOPIC], name
        assert alarm["ActionsEnabled"] is True, name
    # The README's default thresholds; duration in ms, at 80% of the 180 s timeout.
    assert found[f"{NAME}-chat-url-5xx"]["Threshold"] == 5
    assert found[f"{NAME}-qa-duration"]["Threshold"] == 144_000
    assert found[f"{NAME}-endpoint-model-latency"]["Threshold"] == 30_000_000  # microseconds
    assert found[f"{NAME}-endpoint-utilization"]["Threshold"] == 90


def test_the_history_table_alarm_sums_its_throttled_reads_and_writes(stack: Stack) -> None:
    alarm = alarms(stack)[f"{NAME}-chat-history-throttles"]
    queries = {query["Id"]: query for query in alarm["Metrics"]}
    assert queries["throttles"]["Expression"] == "FILL(reads, 0) + FILL(writes, 0)"
    assert queries["throttles"]["ReturnData"] is True
    for query_id, metric in [("reads", "ReadThrottleEvents"), ("writes", "WriteThrottleEvents")]:
        watched = queries[query_id]["MetricStat"]["Metric"]
        assert (watched["Namespace"], watched["MetricName"]) == ("AWS/DynamoDB", metric)
        assert watched["Dimensions"] == [
            {"Name": "TableName", "Value": stack.outputs["chat_history_table_name"]}
        ]


def test_the_outputs_list_every_alarm(stack: Stack) -> None:
    listed = {
        arn.rsplit(":", 1)[1]
        for group in stack.live().outputs["alarm_arns"].values()
        for arn in group.values()
    }
    assert listed == alarms(stack).keys()


def test_the_dashboard_exists_and_shows_the_apps_and_the_endpoints_metrics(
    stack: Stack,
) -> None:
    outputs = stack.live().outputs
    assert outputs["dashboard_url"] == (
        f"https://console.aws.amazon.com/cloudwatch/home?region={REGION}"
        f"#dashboards/dashboard/{NAME}"
    )
    body = json.loads(stack.client("cloudwatch").get_dashboard(DashboardName=NAME)["DashboardBody"])
    titles = [widget["properties"]["title"] for widget in body["widgets"]]
    text = json.dumps(body)
    for shown in [
        "Requests",
        "Errors",
        "FirstTokenLatency",
        "RequestLatency",
        "InputTokens",
        "OutputTokens",
        "CutAnswers",
        "ColdStarts",
        "Url5xxCount",
        "Invocations",
        "ModelLatency",
        "/aws/sagemaker/Endpoints",
    ]:
        assert shown in text, shown
    assert outputs["metrics_namespace"] == f"LLMApp/{NAME}"
    assert f'"{outputs["metrics_namespace"]}' in text
    assert titles[0] == "Alarms"
    [alarm_widget] = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert sorted(alarm_widget["properties"]["alarms"]) == sorted(
        alarm["AlarmArn"] for alarm in alarms(stack).values()
    )


def test_a_request_logs_emf_metrics_with_tokens_and_latency(
    stack: Stack, built_artifacts: Path, tmp_path: Path
) -> None:
    """The packaged chat function, with its deployed environment, in a fresh interpreter:
    its log carries EMF lines in the stack's namespace that validate against the spec."""
    live = stack.live()
    unpacked = sandbox.unpack(built_artifacts, tmp_path / "artifacts", ["chat"])
    with deployed_endpoint(live, "chat") as (environment, endpoint_url):
        env = sandbox.lambda_environment(
            endpoint_url,
            tmp_path,
            **environment,
            AWS_ENDPOINT_URL_DYNAMODB=live.moto.url,
        )
        run = sandbox.run_isolated(
            unpacked.sys_path("chat"),
            env,
            handler=sandbox.HANDLERS["chat"],
            events=[sandbox.function_url_event()],
        )
    assert run.responses[0]["statusCode"] == 200, run.responses[0]
    records = emf_records(run.log)
    assert records
    for record in records:
        assert emf_problems(record) == [], record
        for directive in record["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == live.outputs["metrics_namespace"]
        assert record["service"] == "chat"
    [input_tokens] = metric_values(records, "InputTokens")
    [output_tokens] = metric_values(records, "OutputTokens")
    assert input_tokens > 0
    assert output_tokens > 0
    assert metric_values(records, "ModelLatency")[0] > 0
    assert metric_values(records, "RequestLatency")[0] > 0
    assert metric_values(records, "Requests", status_class="2xx") == [1]
    # Tracing is off (tracing_mode is PassThrough): the X-Ray SDK never loaded.
    assert not [m for m in run.loaded_modules if m.startswith("aws_xray_sdk")]


# -----------------------------------------------------------------------------
# Upgrade of a stack applied when the functions were `module "chat"` and `module "qa"`
# -----------------------------------------------------------------------------


def test_a_stack_from_before_for_each_plans_only_moves(stack: Stack) -> None:
    # The same resources under the addresses of the two former module blocks: the moved blocks
    # of main.tf must adopt them in place, with nothing replaced.
    tf = stack.live().tf
    for function in ("chat", "qa"):
        tf.run("state", "mv", f'module.functions["{function}"]', f"module.{function}")
    try:
        tf.plan(stack.variables, "-refresh=false", "-out=upgrade.tfplan")
        changes = json.loads(tf.run("show", "-json", "upgrade.tfplan").stdout)["resource_changes"]
    finally:
        for function in ("chat", "qa"):
            tf.run("state", "mv", f"module.{function}", f'module.functions["{function}"]')
    moved = {
        c["address"]: c["previous_address"]
        for c in changes
        if c["address"].startswith("module.functions[")
    }
    assert len(moved) >= 10, moved  # role, policy, log group, function and URL, per function
    for address, previous in moved.items():
        function = address.split('"')[1]
        assert previous == address.replace(f'module.functions["{function}"]', f"module.{function}")
    changed = [c["address"] for c in changes if c["change"]["actions"] not in (["no-op"], ["read"])]
    assert changed == []


def test_a_stack_from_before_existing_endpoint_name_plans_only_moves(stack: Stack) -> None:
    # module.llm had no count before existing_endpoint_name; its moved block adopts the
    # endpoint as module.llm[0] with nothing replaced.
    tf = stack.live().tf
    tf.run("state", "mv", "module.llm[0]", "module.llm")
    try:
        tf.plan(stack.variables, "-refresh=false", "-out=llm-upgrade.tfplan")
        shown = json.loads(tf.run("show", "-json", "llm-upgrade.tfplan").stdout)
    finally:
        tf.run("state", "mv", "module.llm", "module.llm[0]")
    changes = shown["resource_changes"]
    moved = [c for c in changes if c.get("previous_address", "").startswith("module.llm.")]
    assert any(c["address"] == "module.llm[0].aws_sagemaker_endpoint.this[0]" for c in moved)
    changed = [c["address"] for c in changes if c["change"]["actions"] not in (["no-op"], ["read"])]
    assert changed == []


# -----------------------------------------------------------------------------
# Destroy (last: the tests above share the stack)
# -----------------------------------------------------------------------------


def test_destroy_leaves_nothing_behind(stack: Stack) -> None:
    stack.live().tf.destroy(stack.variables)
    stack.destroyed = True
    assert stack.tf.state_resources() == {}
    assert stack.client("lambda").list_functions()["Functions"] == []
    assert (
        stack.client("lambda").list_layer_versions(LayerName=f"{NAME}-deps")["LayerVersions"] == []
    )
    assert [
        r["RoleName"]
        for r in stack.client("iam").list_roles()["Roles"]
        if r["RoleName"].startswith(NAME)
    ] == []
    sagemaker = stack.client("sagemaker")
    assert sagemaker.list_endpoints()["Endpoints"] == []
    assert sagemaker.list_endpoint_configs()["EndpointConfigs"] == []
    assert sagemaker.list_models()["Models"] == []
    assert stack.client("dynamodb").list_tables()["TableNames"] == []
    groups = stack.client("logs").describe_log_groups()["logGroups"]
    assert [g["logGroupName"] for g in groups if NAME in g["logGroupName"]] == []
    targets = stack.client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="sagemaker"
    )["ScalableTargets"]
    assert targets == []
    cloudwatch = stack.client("cloudwatch")
    assert cloudwatch.describe_alarms(AlarmNamePrefix=NAME)["MetricAlarms"] == []
    assert cloudwatch.list_dashboards(DashboardNamePrefix=NAME)["DashboardEntries"] == []


# -----------------------------------------------------------------------------
# response_streaming = false: today's buffered functions, exactly
# -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def buffered_stack(
    staged, moto_env, moto: MotoServer, built_artifacts: Path, stack: Stack
) -> Iterator[Stack]:
    # After the streaming stack's destroy (file order; here when run alone), under the same
    # name: the same environment is expected, and nothing of the first stack is left.
    if not stack.destroyed:
        stack.tf.destroy(stack.variables)
        stack.destroyed = True
    variables = {
        "name": NAME,
        **package_variables(built_artifacts),
        "qa_document_buckets": DOCUMENT_BUCKETS,
        "response_streaming": False,
        # Not the default, so that the variable is seen reaching the function.
        "chat_session_scope": "role",
    }
    yield from deploy(staged, moto_env, moto, "apply-buffered", variables)


@pytest.mark.parametrize("function", ["chat", "qa"])
def test_buffered_functions_are_the_python_handlers_without_the_adapter(
    buffered_stack: Stack, function: str
) -> None:
    config = function_configuration(buffered_stack, function)
    assert config["Handler"] == f"{function}.handler.handler"
    assert [layer["Arn"] for layer in config["Layers"]] == [buffered_stack.outputs["layer_arn"]]
    scope = {"CHAT_SESSION_SCOPE": "role"} if function == "chat" else {}
    assert config["Environment"]["Variables"] == {**EXPECTED_ENV[function], **scope}
    # Null outputs are left out of `terraform output -json`.
    assert buffered_stack.outputs.get("adapter_layer_arn") is None
    url = buffered_stack.client("lambda").get_function_url_config(
        FunctionName=f"{NAME}-{function}", Qualifier=ALIAS
    )
    assert url["InvokeMode"] == "BUFFERED"
    statements = buffered_stack.role_statements(f"{NAME}-{function}")
    endpoint_arn = buffered_stack.outputs["endpoint_arn"]
    assert model_grants(statements) == {"sagemaker:InvokeEndpoint": [endpoint_arn]}


@pytest.mark.parametrize("function", ["chat", "qa"])
def test_each_role_grants_exactly_what_its_code_calls(
    buffered_stack: Stack, function: str, load_handler, lambda_context
) -> None:
    """The deployed function's code, run with its deployed environment, on every route:
    each AWS call it makes is granted by its role, and each grant is used by some call."""

    def exercise(handler: Any, environment: dict[str, str], live: Stack) -> None:
        EXERCISES[function](handler, lambda_context, live)

    check_role_against_calls(buffered_stack.live(), function, load_handler, exercise)


def test_buffered_destroy_leaves_nothing_behind(buffered_stack: Stack) -> None:
    buffered_stack.live().tf.destroy(buffered_stack.variables)
    buffered_stack.destroyed = True
    assert buffered_stack.tf.state_resources() == {}
    assert buffered_stack.client("lambda").list_functions()["Functions"] == []
