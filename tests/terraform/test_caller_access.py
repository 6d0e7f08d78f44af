"""Who may call, applied to moto: the reference caller policy, and public document reading.

examples/complete attaches the root module's `url_caller_policy_json` to its callers: Invoke is
allowed only through a Function URL. A public QA URL that reads buckets applies only with the
explicit opt-in (the plan without it fails: tests/terraform/test_plan.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.support.terraform import init
from tools.devstack import MotoServer, Terraform

pytestmark = pytest.mark.stack

REGION = "eu-central-1"


def client(moto: MotoServer, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=moto.url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="module")
def complete_example(
    staged, moto_env, moto: MotoServer, built_artifacts: Path
) -> Iterator[dict[str, Any]]:
    tree = staged("complete-example")
    (tree / "build").symlink_to(built_artifacts, target_is_directory=True)
    tf = Terraform(tree / "examples" / "complete", moto_env(REGION))
    init(tf)
    variables = {
        "name": "callers-demo",
        "region": REGION,
        "protect_chat_history": False,
        "documents_force_destroy": True,
    }
    tf.apply(variables)
    try:
        yield {"outputs": tf.output_json(), "state": tf.show_json()}
    finally:
        tf.destroy(variables)


def test_the_example_callers_may_invoke_only_through_the_function_urls(
    complete_example: dict[str, Any], moto: MotoServer
) -> None:
    iam = client(moto, "iam")
    arn = complete_example["outputs"]["caller_policy_arn"]
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    if isinstance(document, str):
        document = json.loads(document)
    statements = {statement["Sid"]: statement for statement in document["Statement"]}

    aliases = sorted(
        resource["values"]["arn"]
        for module in complete_example["state"]["values"]["root_module"]["child_modules"]
        for child in module.get("child_modules", [])
        for resource in child["resources"]
        if resource["type"] == "aws_lambda_alias"
    )
    assert len(aliases) == 2
    assert set(statements) == {"CallFunctionUrls", "InvokeThroughFunctionUrlsOnly"}
    url = statements["CallFunctionUrls"]
    assert url["Action"] == "lambda:InvokeFunctionUrl"
    assert sorted(url["Resource"]) == aliases
    assert url["Condition"] == {"StringEquals": {"lambda:FunctionUrlAuthType": "AWS_IAM"}}
    invoke = statements["InvokeThroughFunctionUrlsOnly"]
    assert invoke["Action"] == "lambda:InvokeFunction"
    assert sorted(invoke["Resource"]) == aliases
    assert invoke["Condition"] == {"Bool": {"lambda:InvokedViaFunctionUrl": "true"}}


@pytest.fixture(scope="module")
def public_reader(staged, moto_env, built_artifacts: Path) -> Iterator[Terraform]:
    tree = staged("public-reader")
    tf = Terraform(tree, moto_env(REGION))
    init(tf)
    variables = {
        "name": "public-reader",
        "chat_package_path": str(built_artifacts / "chat.zip"),
        "qa_package_path": str(built_artifacts / "qa.zip"),
        "layer_package_path": str(built_artifacts / "layer.zip"),
        "url_authorization_type": "NONE",
        "qa_document_buckets": ["public-reader-docs"],
        "qa_public_document_reading": True,
        "chat_session_scope": "role",
    }
    tf.apply(variables)
    try:
        yield tf
    finally:
        tf.destroy(variables)


def test_a_public_url_reads_buckets_only_when_opted_in(
    public_reader: Terraform, moto: MotoServer
) -> None:
    outputs = public_reader.output_json()
    assert outputs["url_authorization_type"] == "NONE"
    # Null (so absent from the outputs): anyone may call, there is nothing to attach.
    assert outputs.get("url_caller_policy_json") is None
    lambda_ = client(moto, "lambda")
    qa = lambda_.get_function_configuration(FunctionName=outputs["qa_function_name"])
    assert qa["Environment"]["Variables"]["QA_DOCUMENT_BUCKETS"] == "public-reader-docs"
    chat = lambda_.get_function_configuration(FunctionName=outputs["chat_function_name"])
    assert chat["Environment"]["Variables"]["CHAT_SESSION_SCOPE"] == "role"
