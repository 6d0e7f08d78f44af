"""The devstack's moto keeps what AWS keeps for SnapStart and aliases (tools/devstack/compat.py):
the SnapStart setting, a Function URL per alias, and an alias's resource policy across the
versions it moves to. Real AWS API calls against the patched moto server."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from tools.devstack import MotoServer

pytestmark = pytest.mark.stack

REGION = "eu-west-1"


def package() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return 1\n")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def lam() -> Iterator[Any]:
    with MotoServer() as moto:
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        )
        role = session.client("iam", endpoint_url=moto.url).create_role(
            RoleName="fn", AssumeRolePolicyDocument="{}"
        )["Role"]["Arn"]
        client = session.client("lambda", endpoint_url=moto.url)
        version = client.create_function(
            FunctionName="fn",
            Runtime="python3.12",
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": package()},
            Publish=True,
            SnapStart={"ApplyOn": "PublishedVersions"},
        )["Version"]
        client.create_alias(FunctionName="fn", Name="live", FunctionVersion=version)
        yield client


def test_snap_start_is_kept_and_on_for_published_versions_only(lam: Any) -> None:
    version = lam.get_alias(FunctionName="fn", Name="live")["FunctionVersion"]
    published = lam.get_function_configuration(FunctionName="fn", Qualifier=version)
    assert published["SnapStart"] == {"ApplyOn": "PublishedVersions", "OptimizationStatus": "On"}
    latest = lam.get_function_configuration(FunctionName="fn")
    assert latest["SnapStart"] == {"ApplyOn": "PublishedVersions", "OptimizationStatus": "Off"}


def test_a_url_on_an_alias_is_the_aliases_alone(lam: Any) -> None:
    created = lam.create_function_url_config(FunctionName="fn", Qualifier="live", AuthType="NONE")
    assert created["FunctionArn"].endswith(":function:fn:live")
    read = lam.get_function_url_config(FunctionName="fn", Qualifier="live")
    assert read["FunctionUrl"] == created["FunctionUrl"]
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function_url_config(FunctionName="fn")


def test_an_aliases_statements_follow_it_to_a_new_version(lam: Any) -> None:
    lam.add_permission(
        FunctionName="fn",
        Qualifier="live",
        StatementId="FunctionURLAllowPublicAccess",
        Action="lambda:InvokeFunctionUrl",
        Principal="*",
        FunctionUrlAuthType="NONE",
    )
    version = lam.update_function_code(FunctionName="fn", ZipFile=package(), Publish=True)
    lam.update_alias(FunctionName="fn", Name="live", FunctionVersion=version["Version"])

    policy = json.loads(lam.get_policy(FunctionName="fn", Qualifier="live")["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["FunctionURLAllowPublicAccess"]
    assert policy["Statement"][0]["Resource"].endswith(":function:fn:live")

    lam.remove_permission(
        FunctionName="fn", Qualifier="live", StatementId="FunctionURLAllowPublicAccess"
    )
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_policy(FunctionName="fn", Qualifier="live")
