"""The applied stack's functions: their packages, the adapter, URLs on an alias of the
published version, SnapStart, roles that grant exactly what the code calls, log groups."""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest

from tests.support.events import function_url_event
from tests.support.stack import (
    ADAPTER_ENV,
    ALIAS,
    DOCUMENT_BUCKETS,
    EXPECTED_ENV,
    MODEL_ACTIONS,
    NAME,
    REGION,
    Stack,
    as_list,
    check_role_against_calls,
    documents_in_buckets,
    function_configuration,
    grants,
    model_grants,
)

pytestmark = pytest.mark.stack


# -----------------------------------------------------------------------------
# Functions and URLs
# -----------------------------------------------------------------------------


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
    state = stack.tf.state_resources()
    deployed = state[f'module.functions["{function}"].aws_lambda_function.this']
    alias = client.get_alias(FunctionName=name, Name=ALIAS)

    assert deployed["publish"] is True
    assert alias["FunctionVersion"] == deployed["version"] != "$LATEST"
    # With SnapStart the alias takes the version only once the wait has seen it Active.
    waited = state[f'module.functions["{function}"].terraform_data.published_version[0]']
    assert waited["output"] == deployed["version"]
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


# -----------------------------------------------------------------------------
# Roles and logs
# -----------------------------------------------------------------------------


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
    with documents_in_buckets(live) as uris:
        event = function_url_event('["How long was Elizabeth hospitalized?"]')
        answer = web.send(address, event["body"], web.forwarded(event))
        assert answer.status == 200, answer.body
        event = function_url_event(json.dumps(["Who?", uris]), accept="text/event-stream")
        stream = web.open_stream(address, event["body"], web.forwarded(event))
        events = web.SseReader(stream).events()
        assert events[-1] == (None, "[DONE]"), events


STREAMING_EXERCISES = {"chat": stream_chat, "qa": stream_qa}


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
