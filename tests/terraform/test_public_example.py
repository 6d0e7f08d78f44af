"""examples/stateless-public applied to moto: the switches off the defaults really switch.

History off (no table, no table access, an empty HISTORY_TABLE_NAME) and public URLs (both
resource-policy statements AWS requires since October 2025, owned by Terraform), on the CPU
instance type, in a third region.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.support.terraform import init, name_adapter_layer_in_example
from tools.devstack import MotoServer, Terraform

pytestmark = pytest.mark.stack

REGION = "us-west-2"
NAME = "public-demo"


@pytest.fixture(scope="module")
def example(
    staged, moto_env, moto: MotoServer, built_artifacts: Path, adapter_layer
) -> Iterator[dict[str, Any]]:
    tree = staged("public-example")
    # The example takes the packages from build/ at the repository root, as a user's clone would.
    (tree / "build").symlink_to(built_artifacts, target_is_directory=True)
    # Its functions stream through a stand-in of the adapter's layer (conftest.adapter_layer).
    name_adapter_layer_in_example(tree / "examples" / "stateless-public", adapter_layer(REGION))
    tf = Terraform(tree / "examples" / "stateless-public", moto_env(REGION))
    init(tf)
    variables = {"name": NAME}
    tf.apply(variables)
    replan = tf.plan(variables, "-detailed-exitcode", check=False)
    outputs = tf.output_json()
    try:
        yield {"tf": tf, "outputs": outputs, "replan": replan}
    finally:
        tf.destroy(variables)


@pytest.fixture(scope="module")
def aws(moto: MotoServer):
    def client(service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=moto.url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    return client


def test_plans_clean_after_apply(example: dict[str, Any]) -> None:
    # The provider adds its own statement for NONE URLs; ours must absorb it, not fight it.
    replan = example["replan"]
    assert replan.returncode == 0, replan.stdout[-4000:] + replan.stderr[-2000:]


@pytest.mark.parametrize("function", ["chat", "qa"])
def test_url_is_public_with_both_required_statements(
    example: dict[str, Any], aws, function: str
) -> None:
    client = aws("lambda")
    name = f"{NAME}-{function}"
    # The URL and its public statements are on the alias (modules/lambda-url, for SnapStart).
    url = client.get_function_url_config(FunctionName=name, Qualifier="live")
    assert url["AuthType"] == "NONE"
    assert url["Cors"]["AllowOrigins"] == ["https://example.com"]
    policy = client.get_policy(FunctionName=name, Qualifier="live")["Policy"]
    statements = {s["Sid"]: s for s in json.loads(policy)["Statement"]}
    assert set(statements) == {"FunctionURLAllowPublicAccess", "FunctionURLInvokeAllowPublicAccess"}
    url_statement = statements["FunctionURLAllowPublicAccess"]
    assert url_statement["Action"] == "lambda:InvokeFunctionUrl"
    assert url_statement["Principal"] in ("*", {"AWS": "*"})
    assert url_statement["Condition"] == {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}}
    assert statements["FunctionURLInvokeAllowPublicAccess"]["Action"] == "lambda:InvokeFunction"


def test_curl_output_is_unsigned(example: dict[str, Any]) -> None:
    outputs = example["outputs"]
    assert outputs["chat_curl"] == (
        "curl -sS -H 'content-type: application/json' -d '[\"What is the capital of France?\"]' "
        + outputs["chat_url"]
    )


def test_reserved_concurrency_caps_each_function(example: dict[str, Any], aws) -> None:
    for function in ("chat", "qa"):
        concurrency = aws("lambda").get_function_concurrency(FunctionName=f"{NAME}-{function}")
        assert concurrency["ReservedConcurrentExecutions"] == 2


def test_history_off_means_no_table_and_no_table_access(example: dict[str, Any], aws) -> None:
    # A null output is not printed at all.
    assert example["outputs"].get("chat_history_table_name") is None
    assert aws("dynamodb").list_tables()["TableNames"] == []
    config = aws("lambda").get_function(FunctionName=f"{NAME}-chat")["Configuration"]
    assert config["Environment"]["Variables"]["HISTORY_TABLE_NAME"] == ""
    # Were memory on, a public chat would continue only the session ids it issued.
    assert config["Environment"]["Variables"]["URL_AUTHORIZATION_TYPE"] == "NONE"
    iam = aws("iam")
    for policy in iam.list_role_policies(RoleName=f"{NAME}-chat")["PolicyNames"]:
        document = iam.get_role_policy(RoleName=f"{NAME}-chat", PolicyName=policy)["PolicyDocument"]
        assert "dynamodb:" not in json.dumps(document)


def test_cpu_instance_runs_tgi_without_gpu_shards(example: dict[str, Any], aws) -> None:
    sagemaker = aws("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName=NAME)
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    assert config["ProductionVariants"][0]["InstanceType"] == "ml.m5.xlarge"
    model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    assert "SM_NUM_GPUS" not in model["PrimaryContainer"]["Environment"]
    assert model["PrimaryContainer"]["Image"].startswith(
        "763104351884.dkr.ecr.us-west-2.amazonaws.com/"
    )
