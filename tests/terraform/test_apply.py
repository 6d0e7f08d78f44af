"""The root module applied to moto with the real packages, checked from state and the AWS APIs.

One apply serves every test in this file (it takes ~15 s); the tests run in file order and the
last one destroys the stack and checks that nothing is left. The region is not us-east-1, so a
hard-coded region anywhere would show.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.support.terraform import init
from tools.devstack import MotoServer, Terraform

pytestmark = pytest.mark.stack

REGION = "eu-west-1"
NAME = "stack-test"
ALIAS = "live"  # modules/lambda-url's alias_name default
TAGS = {"project": "langchain-tgi-lambda", "suite": "stack"}
IMAGE = (
    "763104351884.dkr.ecr.eu-west-1.amazonaws.com/huggingface-pytorch-tgi-inference:"
    "2.7.0-tgi3.3.6-gpu-py311-cu124-ubuntu22.04"
)
SEED_SYSTEM_PROMPT = (
    "You are a cool and aloof robot, answering questions very briefly and directly."
)


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


@pytest.fixture(scope="module")
def stack(staged, moto_env, moto: MotoServer, built_artifacts: Path) -> Iterator[Stack]:
    tree = staged("apply")
    tf = Terraform(tree, moto_env(REGION))
    init(tf)
    variables = {
        "name": NAME,
        "tags": TAGS,
        "chat_package_path": str(built_artifacts / "chat.zip"),
        "qa_package_path": str(built_artifacts / "qa.zip"),
        "layer_package_path": str(built_artifacts / "layer.zip"),
        # Off by default; on here so its resources are applied and destroyed too.
        "autoscaling_enabled": True,
    }
    applied = tf.apply(variables)
    deployed = Stack(tf, variables, applied.stdout, tf.output_json(), moto)
    try:
        yield deployed
    finally:
        if not deployed.destroyed:
            tf.destroy(variables)


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


def test_unchanged_configuration_plans_no_change(stack: Stack) -> None:
    # Same packages, same variables: `-detailed-exitcode` is 0 only for an empty plan.
    plan = stack.live().tf.plan(stack.variables, "-detailed-exitcode", check=False)
    assert plan.returncode == 0, plan.stdout[-4000:] + plan.stderr[-2000:]


# -----------------------------------------------------------------------------
# Functions and URLs
# -----------------------------------------------------------------------------

COMMON_ENV = {
    "ENDPOINT_NAME": NAME,
    "MAX_INPUT_TOKENS": "1348",
    "MAX_NEW_TOKENS": "700",
    "TEMPERATURE": "0.5",
    "TOP_P": "0.9",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "LOG_PROMPTS": "false",
}
EXPECTED_ENV = {
    "chat": {
        **COMMON_ENV,
        "POWERTOOLS_SERVICE_NAME": "chat",
        "SYSTEM_PROMPT": SEED_SYSTEM_PROMPT,
        "HISTORY_TABLE_NAME": f"{NAME}-chat-history",
        "HISTORY_TTL_DAYS": "7",
    },
    "qa": {**COMMON_ENV, "POWERTOOLS_SERVICE_NAME": "qa"},
}


@pytest.mark.parametrize("function", ["chat", "qa"])
def test_function_configuration(stack: Stack, function: str) -> None:
    config = (
        stack.live()
        .client("lambda")
        .get_function(FunctionName=f"{NAME}-{function}")["Configuration"]
    )
    assert config["FunctionName"] == stack.outputs[f"{function}_function_name"]
    assert config["Handler"] == f"{function}.handler.handler"
    assert config["Runtime"] == "python3.12"
    assert config["Architectures"] == ["x86_64"]
    assert config["Timeout"] == 180
    assert config["MemorySize"] == 1024
    assert [layer["Arn"] for layer in config["Layers"]] == [stack.outputs["layer_arn"]]
    # Exactly the contract's variables: nothing missing, nothing extra (no AWS_REGION).
    assert config["Environment"]["Variables"] == EXPECTED_ENV[function]


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


@pytest.mark.parametrize("function", ["chat", "qa"])
def test_function_role_may_invoke_only_the_endpoint(stack: Stack, function: str) -> None:
    statements = stack.live().role_statements(f"{NAME}-{function}")
    endpoint_arn = stack.outputs["endpoint_arn"]
    assert grants(statements, "sagemaker:InvokeEndpoint") == [endpoint_arn]
    assert grants(statements, "sagemaker:InvokeEndpointWithResponseStream") == [endpoint_arn]
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
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
    ]
    assert as_list(dynamodb[0]["Resource"]) == [table_arn]
    qa = stack.role_statements(f"{NAME}-qa")
    assert not [a for s in qa for a in as_list(s["Action"]) if a.startswith("dynamodb:")]


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
        "MAX_INPUT_TOKENS": "1348",
        "MAX_TOTAL_TOKENS": "2048",
        "MAX_BATCH_PREFILL_TOKENS": "1398",
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
