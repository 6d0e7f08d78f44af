"""Last of the test_apply_* files (they run in name order and share one applied stack): its
destroy leaves nothing behind; then the same stack with ``response_streaming = false``, whose
functions must be the buffered Python handlers, exactly, and whose destroy is checked too."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.events import function_url_event
from tests.support.stack import (
    ALIAS,
    EXPECTED_ENV,
    NAME,
    Stack,
    check_role_against_calls,
    documents_in_buckets,
    function_configuration,
    model_grants,
)

pytestmark = pytest.mark.stack


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
    with documents_in_buckets(live) as uris:
        for body in [
            '["How long was Elizabeth hospitalized?"]',
            '["Who?", ["Peter is here."]]',
            json.dumps(["Who?", uris]),
        ]:
            response = qa.handler(function_url_event(body), context)
            assert response["statusCode"] == 200, response["body"]


EXERCISES = {"chat": exercise_chat, "qa": exercise_qa}


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
