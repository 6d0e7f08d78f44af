"""Fixtures of the stack tests: the terraform CLI, staged copies of the .tf tree, moto, a
stand-in for AWS's Lambda Web Adapter layer in moto, and the applied stacks the
test_apply_*.py files share (tests/support/stack.py).

Terraform never runs in the working tree: each fixture stages a copy of the .tf files in a
temporary folder, so no .terraform/, lock file or state lands in the repository. Providers come
from TF_PROVIDER_MIRROR when it is set (offline machines, CI here), else from the registry;
either way through one plugin cache, so each init after the first takes about half a second.
"""

from __future__ import annotations

import io
import shutil
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.support.stack import (
    ALARM_TOPIC,
    DOCUMENT_BUCKETS,
    NAME,
    REGION,
    TAGS,
    Stack,
    deploy,
    package_variables,
)
from tests.support.tools import missing_tool
from tools.devstack import MotoServer, aws_env, stage_tree, terraform_env


def tool_on_path(name: str, reason: str) -> str:
    path = shutil.which(name)
    if path is None:
        missing_tool(reason)
    return path


@pytest.fixture(scope="session")
def terraform_bin() -> str:
    return tool_on_path(
        "terraform",
        "the terraform CLI is not on PATH (https://developer.hashicorp.com/terraform/install)",
    )


@pytest.fixture(scope="session")
def tf_env(terraform_bin: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for terraform: CLI config (mirror + plugin cache), non-interactive."""
    env = terraform_env(tmp_path_factory.mktemp("terraform-cli"))
    # Credentials or endpoints of the developer's shell must never reach a test run.
    for name in list(env):
        if name.startswith("AWS_"):
            del env[name]
    return env


@pytest.fixture(scope="session")
def staged(tmp_path_factory: pytest.TempPathFactory):
    """Factory: a fresh staged copy of the .tf tree per call (own .terraform, own state)."""

    def stage(label: str) -> Path:
        return stage_tree(tmp_path_factory.mktemp(label))

    return stage


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with MotoServer(log_path=log) as server:
        yield server


@pytest.fixture(scope="session")
def moto_env(tf_env: dict[str, str], moto: MotoServer):
    """Factory: the terraform environment pointed at moto in a given region."""

    def env(region: str) -> dict[str, str]:
        return {**tf_env, **aws_env(moto.url, region=region)}

    return env


ADAPTER_STAND_IN = "lwa-stand-in"


@pytest.fixture(scope="session")
def adapter_layer(moto: MotoServer) -> Iterator[Callable[[str], str]]:
    """Factory: the ARN of a layer published in moto in a region, standing for AWS's Lambda
    Web Adapter layer. moto knows only layers published in it, not AWS's in AWS's account, so
    the stacks name this one through adapter_layer_arn, as a GovCloud or private copy would be
    named. It is only attached: nothing in these tests runs it (make local runs a working one)."""
    published: dict[str, tuple[Any, int]] = {}

    def arn(region: str) -> str:
        client = boto3.client(
            "lambda",
            endpoint_url=moto.url,
            region_name=region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as layer:
            layer.writestr(
                "bootstrap", "#!/bin/sh\necho 'a stand-in, not the adapter' >&2\nexit 1\n"
            )
        version = client.publish_layer_version(
            LayerName=ADAPTER_STAND_IN,
            Content={"ZipFile": archive.getvalue()},
            CompatibleArchitectures=["x86_64"],
        )
        published[version["LayerVersionArn"]] = (client, version["Version"])
        return str(version["LayerVersionArn"])

    yield arn
    for client, number in published.values():
        client.delete_layer_version(LayerName=ADAPTER_STAND_IN, VersionNumber=number)


# -----------------------------------------------------------------------------
# The applied stacks: one apply each (~15 s), shared by the test_apply_*.py files, which run in
# name order; test_apply_teardown.py, last, destroys the first and applies the second.
# -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def aws_cli() -> str:
    """The AWS CLI, which the stack's apply runs to wait for each SnapStart version."""
    return tool_on_path(
        "aws",
        "the AWS CLI is not on PATH: with snap_start, apply waits with it for each published"
        " version (https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html)",
    )


@pytest.fixture(scope="session")
def adapter_layer_arn(adapter_layer) -> str:
    return str(adapter_layer(REGION))


@pytest.fixture(scope="session")
def stack(
    staged, moto_env, moto: MotoServer, built_artifacts: Path, adapter_layer_arn: str, aws_cli: str
) -> Iterator[Stack]:
    """The default stack, streaming through the Lambda Web Adapter, with SnapStart."""
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


@pytest.fixture(scope="session")
def buffered_stack(
    staged, moto_env, moto: MotoServer, built_artifacts: Path, stack: Stack
) -> Iterator[Stack]:
    """The same stack with response_streaming = false, under the same name, once the first is
    destroyed (by test_apply_teardown.py, or here when its tests run alone)."""
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
