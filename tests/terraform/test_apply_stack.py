"""The applied stack as a whole: what apply prints, the outputs callers use, the history
table, tags, and that an unchanged configuration plans nothing (tests/support/stack.py)."""

from __future__ import annotations

import json
import re

import pytest

from tests.support.stack import NAME, REGION, TAGS, Stack
from tools.paths import REPO_ROOT

pytestmark = pytest.mark.stack


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
# Chat history table and tags
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
