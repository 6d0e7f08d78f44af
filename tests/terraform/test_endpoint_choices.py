"""The endpoint choices applied to moto and destroyed: vLLM, an existing endpoint, a paused one.

Each test applies its own stack (name and region of its own), checks which SageMaker resources
exist, what each function calls (ENDPOINT_NAME) and may call (its IAM grant), then destroys it
and checks that nothing of it is left; the paused stack also answers real Function URL events
with the environment Terraform deployed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.support.events import function_url_event, response_json
from tests.support.terraform import init, name_adapter_layer_in_example
from tests.support.tools import missing_tool
from tools.devstack import MotoServer, Terraform

pytestmark = pytest.mark.stack

ACCOUNT = "123456789012"
FUNCTIONS = ("chat", "qa")
QUESTIONS = {
    "chat": '["What is the capital of France?"]',
    "qa": '["What is the capital?", ["France\'s capital is Paris."]]',
}


class Deployment:
    """One applied stack: its Terraform runner, variables and AWS clients on moto."""

    def __init__(self, tf: Terraform, region: str, variables: dict[str, Any], moto: MotoServer):
        self.tf = tf
        self.region = region
        self.variables = variables
        self.moto = moto
        self.name: str = variables["name"]

    def apply(self, **overrides: Any) -> dict[str, Any]:
        self.variables.update(overrides)
        self.tf.apply(self.variables)
        return self.tf.output_json()

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.moto.url,
            region_name=self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def function_environment(self, function: str) -> dict[str, str]:
        config = self.client("lambda").get_function_configuration(
            FunctionName=f"{self.name}-{function}"
        )
        return dict(config["Environment"]["Variables"])

    def invoke_grants(self, function: str) -> list[str]:
        """Resources the function's role may invoke the model on, whole or streamed."""
        iam = self.client("iam")
        role = f"{self.name}-{function}"
        resources: list[str] = []
        for policy in iam.list_role_policies(RoleName=role)["PolicyNames"]:
            document = iam.get_role_policy(RoleName=role, PolicyName=policy)["PolicyDocument"]
            if isinstance(document, str):
                document = json.loads(document)
            for statement in document["Statement"]:
                actions = statement["Action"]
                actions = [actions] if isinstance(actions, str) else actions
                if {"sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointWithResponseStream"} & set(
                    actions
                ):
                    found = statement["Resource"]
                    resources += [found] if isinstance(found, str) else found
        return resources

    def sagemaker_resources(self) -> dict[str, list[str]]:
        sagemaker = self.client("sagemaker")
        return {
            "models": sorted(m["ModelName"] for m in sagemaker.list_models()["Models"]),
            "endpoint_configs": sorted(
                c["EndpointConfigName"]
                for c in sagemaker.list_endpoint_configs()["EndpointConfigs"]
            ),
            "endpoints": sorted(e["EndpointName"] for e in sagemaker.list_endpoints()["Endpoints"]),
        }

    def roles(self) -> list[str]:
        return sorted(
            r["RoleName"]
            for r in self.client("iam").list_roles()["Roles"]
            if r["RoleName"].startswith(f"{self.name}-")
        )


@pytest.fixture
def deploy(
    staged, moto_env, moto: MotoServer, built_artifacts: Path, adapter_layer
) -> Iterator[Callable[..., Any]]:
    """Factory of applied stacks; every stack is destroyed and checked gone at the end. Their
    functions stream through a stand-in of the adapter's layer (see conftest.adapter_layer)."""
    deployments: list[Deployment] = []

    def make(name: str, region: str, example: str | None = None, **variables: Any) -> Deployment:
        tree = staged(name)
        packages = {
            "chat_package_path": str(built_artifacts / "chat.zip"),
            "qa_package_path": str(built_artifacts / "qa.zip"),
            "layer_package_path": str(built_artifacts / "layer.zip"),
        }
        layer = {"adapter_layer_arn": adapter_layer(region)}
        if example is not None:
            # An example takes the packages from build/ at the repository root, as a clone would.
            (tree / "build").symlink_to(built_artifacts, target_is_directory=True)
            tree, packages = tree / "examples" / example, {}
            name_adapter_layer_in_example(tree, layer.pop("adapter_layer_arn"))
        tf = Terraform(tree, moto_env(region))
        init(tf)
        all_variables = {"name": name, **packages, **layer, **variables}
        deployment = Deployment(tf, region, all_variables, moto)
        deployments.append(deployment)
        deployment.tf.apply(all_variables)
        return deployment

    yield make
    for deployment in deployments:
        deployment.tf.destroy(deployment.variables)
        assert deployment.tf.state_resources() == {}
        assert deployment.roles() == []


def sdk_image_uri(framework: str, version: str, region: str) -> str:
    try:
        from sagemaker.core import image_uris
    except ImportError:
        missing_tool("sagemaker-core is not installed (make venv installs requirements/dev.txt)")
    uri: str = image_uris.retrieve(
        framework,
        region=region,
        version=version,
        instance_type="ml.g5.xlarge",
        image_scope="inference",
    )
    return uri


# -----------------------------------------------------------------------------
# serving_engine = "vllm"
# -----------------------------------------------------------------------------


def test_vllm_endpoint_runs_the_region_vllm_image_with_its_settings(deploy) -> None:
    region = "ap-southeast-2"
    stack = deploy("vllm-choice", region, serving_engine="vllm", model_revision="main")
    outputs = stack.tf.output_json()
    expected_image = sdk_image_uri("vllm", "0.30.0", region)
    assert outputs["image_uri"] == expected_image
    assert outputs["serving_engine"] == "vllm"

    resources = stack.sagemaker_resources()
    assert resources["endpoints"] == ["vllm-choice"]
    assert resources["models"] == [outputs["model_name"]]
    container = stack.client("sagemaker").describe_model(ModelName=outputs["model_name"])[
        "PrimaryContainer"
    ]
    assert container["Image"] == expected_image
    assert container["Environment"] == {
        "SM_VLLM_MODEL": "TinyLlama/TinyLlama-1.1B-Chat-v1.0",
        "SM_VLLM_REVISION": "main",
        "SM_VLLM_MAX_MODEL_LEN": "2048",
        "SM_VLLM_TENSOR_PARALLEL_SIZE": "1",
    }
    endpoint_arn = f"arn:aws:sagemaker:{region}:{ACCOUNT}:endpoint/vllm-choice"
    assert outputs["endpoint_arn"] == endpoint_arn
    for function in FUNCTIONS:
        assert stack.function_environment(function)["ENDPOINT_NAME"] == "vllm-choice"
        assert stack.invoke_grants(function) == [endpoint_arn]


# -----------------------------------------------------------------------------
# existing_endpoint_name
# -----------------------------------------------------------------------------


@pytest.fixture
def shared_endpoint(moto: MotoServer) -> Iterator[dict[str, str]]:
    """An endpoint another stack owns, in eu-central-1, removed after the test."""
    sagemaker = boto3.client(
        "sagemaker",
        endpoint_url=moto.url,
        region_name="eu-central-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    sagemaker.create_model(
        ModelName="shared-model",
        ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/shared",
        PrimaryContainer={"Image": sdk_image_uri("huggingface-llm", "3.3.6", "eu-central-1")},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName="shared-config",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "shared-model",
                "InstanceType": "ml.g5.xlarge",
                "InitialInstanceCount": 1,
            }
        ],
    )
    arn = sagemaker.create_endpoint(EndpointName="Shared-LLM", EndpointConfigName="shared-config")[
        "EndpointArn"
    ]
    try:
        yield {"name": "Shared-LLM", "arn": arn}
    finally:
        sagemaker.delete_endpoint(EndpointName="Shared-LLM")
        sagemaker.delete_endpoint_config(EndpointConfigName="shared-config")
        sagemaker.delete_model(ModelName="shared-model")


def test_existing_endpoint_is_called_and_nothing_of_sagemaker_is_created(
    deploy, shared_endpoint: dict[str, str]
) -> None:
    stack = deploy("existing-choice", "eu-central-1", existing_endpoint_name="Shared-LLM")
    outputs = stack.tf.output_json()
    assert stack.sagemaker_resources() == {
        "models": ["shared-model"],
        "endpoint_configs": ["shared-config"],
        "endpoints": ["Shared-LLM"],
    }
    # No execution role and no endpoint log group: only the functions' roles.
    assert stack.roles() == ["existing-choice-chat", "existing-choice-qa"]
    groups = stack.client("logs").describe_log_groups(logGroupNamePrefix="/aws/sagemaker/")
    assert groups["logGroups"] == []

    # SageMaker lower-cases the name in endpoint ARNs (moto keeps the case); IAM compares ARNs
    # case-sensitively, so the grant must name the lower-cased ARN.
    arn = f"arn:aws:sagemaker:eu-central-1:{ACCOUNT}:endpoint/shared-llm"
    assert shared_endpoint["arn"].lower() == arn
    assert outputs["endpoint_name"] == "Shared-LLM"
    assert outputs["endpoint_arn"] == arn
    # Null outputs are left out of `terraform output -json`.
    for absent in ("model_name", "image_uri", "sagemaker_role_arn", "serving_engine"):
        assert outputs.get(absent) is None, absent
    for function in FUNCTIONS:
        assert stack.function_environment(function)["ENDPOINT_NAME"] == "Shared-LLM"
        assert stack.invoke_grants(function) == [arn]


def test_the_existing_endpoint_example_applies_and_replans_clean(
    deploy, shared_endpoint: dict[str, str]
) -> None:
    stack = deploy(
        "existing-example", "eu-central-1", example="existing-endpoint", endpoint_name="Shared-LLM"
    )
    replan = stack.tf.plan(stack.variables, "-detailed-exitcode", check=False)
    assert replan.returncode == 0, replan.stdout
    assert stack.sagemaker_resources()["models"] == ["shared-model"]
    arn = f"arn:aws:sagemaker:eu-central-1:{ACCOUNT}:endpoint/shared-llm"
    assert stack.tf.output_json()["endpoint_arn"] == arn
    for function in FUNCTIONS:
        assert stack.invoke_grants(function) == [arn]


# -----------------------------------------------------------------------------
# endpoint_enabled = false, then true again
# -----------------------------------------------------------------------------


def test_pausing_removes_the_endpoint_keeps_the_rest_and_resuming_restores_it(
    deploy, load_handler, fake_endpoint, lambda_context
) -> None:
    region = "us-west-2"
    stack = deploy("paused-choice", region)
    running = stack.tf.output_json()
    arn = f"arn:aws:sagemaker:{region}:{ACCOUNT}:endpoint/paused-choice"
    kept = {k: running[k] for k in ("chat_url", "qa_url", "chat_history_table_arn")}
    roles = stack.roles()
    assert roles == ["paused-choice-chat", "paused-choice-qa", "paused-choice-sagemaker"]

    paused = stack.apply(endpoint_enabled=False)
    assert stack.sagemaker_resources() == {"models": [], "endpoint_configs": [], "endpoints": []}
    assert {k: paused[k] for k in kept} == kept
    assert stack.roles() == roles
    assert paused["endpoint_name"] == "paused-choice"
    assert paused["endpoint_arn"] == arn
    assert paused["endpoint_enabled"] is False
    assert paused.get("model_name") is None

    for function in FUNCTIONS:
        environment = stack.function_environment(function)
        assert environment["ENDPOINT_NAME"] == "paused-choice"
        assert environment["ENDPOINT_ENABLED"] == "false"
        assert stack.invoke_grants(function) == [arn]
        # The deployed environment, on a real Function URL event: 503 model_paused. The
        # history table is moto's; nothing may reach SageMaker (the fake endpoint counts).
        handler = load_handler(
            f"{function}.handler",
            **environment,
            AWS_REGION=region,
            AWS_DEFAULT_REGION=region,
            AWS_ENDPOINT_URL_DYNAMODB=stack.moto.url,
        )
        response = handler.handler(function_url_event(QUESTIONS[function]), lambda_context)
        assert response["statusCode"] == 503
        error = response_json(response)["error"]
        assert error["code"] == "model_paused"
        assert "set endpoint_enabled = true and run terraform apply" in error["message"]
    assert fake_endpoint.invocations == []

    resumed = stack.apply(endpoint_enabled=True)
    resources = stack.sagemaker_resources()
    assert resources["endpoints"] == ["paused-choice"]
    assert resources["models"] == [resumed["model_name"]]
    endpoint = stack.client("sagemaker").describe_endpoint(EndpointName="paused-choice")
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["EndpointArn"] == resumed["endpoint_arn"] == arn
    for function in FUNCTIONS:
        assert stack.function_environment(function)["ENDPOINT_ENABLED"] == "true"
