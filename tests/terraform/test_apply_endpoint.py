"""The applied stack's model endpoint: image, instance, role, autoscaling, and which changes
of the variables update it (a GPU redeploy) and which do not."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.stack import IMAGE, NAME, REGION, Stack, as_list, grants

pytestmark = pytest.mark.stack


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
    endpoint = {
        address: actions
        for address, actions in changes.items()
        if not address.startswith("module.functions[")
        and address.split(".")[-2].startswith(ENDPOINT_RESOURCES)
    }
    assert endpoint == {}
    assert changes, "the functions' environment must change"
    # Each function publishes a version, and its wait for that version runs again.
    assert all(
        ".aws_lambda_" in address or address.endswith(".terraform_data.published_version[0]")
        for address in changes
    ), changes


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
