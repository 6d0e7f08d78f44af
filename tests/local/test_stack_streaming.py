"""make local reads streaming functions back from moto: invoke mode, exec wrapper, adapter layer.

The local adapter layer is published by ``tools.local.adapter`` (not by Terraform), so its
zip comes from ``extra_layers``, still checked against the CodeSha256 Lambda recorded.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tools.local import adapter
from tools.local.stack import StackError, read_functions

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/fn"


def _zip(path: Path, files: dict[str, str]) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    path.write_bytes(buffer.getvalue())
    return path


@pytest.fixture
def lambda_client() -> Iterator[Any]:
    with mock_aws():
        iam = boto3.client("iam", region_name=REGION)
        iam.create_role(RoleName="fn", AssumeRolePolicyDocument="{}")
        yield boto3.client("lambda", region_name=REGION)


def _deploy(
    client: Any, code: Path, *, layers: list[str], wrapper: bool, invoke_mode: str
) -> dict[str, Any]:
    environment = {"ENDPOINT_NAME": "e"}
    if wrapper:
        environment |= {
            "AWS_LAMBDA_EXEC_WRAPPER": "/opt/bootstrap",
            "AWS_LWA_INVOKE_MODE": "response_stream",
        }
    client.create_function(
        FunctionName="chat",
        Runtime="python3.12",
        Role=ROLE,
        Handler="run.sh" if wrapper else "chat.handler.handler",
        Code={"ZipFile": code.read_bytes()},
        Layers=layers,
        Environment={"Variables": environment},
    )
    url = client.create_function_url_config(
        FunctionName="chat", AuthType="AWS_IAM", InvokeMode=invoke_mode
    )
    return {
        "outputs": {"chat_url": url["FunctionUrl"]},
        "resources": {"aws_lambda_function.chat": {"function_name": "chat", "filename": str(code)}},
    }


def _read(client: Any, deployed: dict[str, Any], root: Path, **options: Any) -> list[Any]:
    """What make local reads back from moto for the deployed functions."""
    return read_functions(
        client,
        deployed["outputs"],
        deployed["resources"],
        root_dir=root,
        region=REGION,
        account_id="123456789012",
        **options,
    )


def test_a_streaming_function_runs_with_the_locally_published_adapter(
    lambda_client: Any, tmp_path: Path
) -> None:
    layer = adapter.publish(lambda_client, tmp_path)
    code = _zip(tmp_path / "chat.zip", {"run.sh": "#!/bin/sh\n"})
    deployed = _deploy(
        lambda_client, code, layers=[layer.arn], wrapper=True, invoke_mode="RESPONSE_STREAM"
    )
    (function,) = _read(lambda_client, deployed, tmp_path, extra_layers={layer.arn: layer.path})
    assert function.label == "chat"
    assert function.spec.invoke_mode == "RESPONSE_STREAM"
    assert function.spec.exec_wrapper == "/opt/bootstrap"
    assert function.spec.layer_zips == (layer.path,)
    adapter.delete(lambda_client, layer)
    assert lambda_client.list_layers()["Layers"] == []


def test_a_streaming_url_without_the_adapter_is_a_clear_error(
    lambda_client: Any, tmp_path: Path
) -> None:
    code = _zip(tmp_path / "chat.zip", {"chat/handler.py": ""})
    deployed = _deploy(lambda_client, code, layers=[], wrapper=False, invoke_mode="RESPONSE_STREAM")
    with pytest.raises(StackError, match="no exec wrapper"):
        _read(lambda_client, deployed, tmp_path)


def test_the_root_module_is_asked_for_the_adapter_only_when_it_declares_the_variable(
    tmp_path: Path,
) -> None:
    (tmp_path / "variables.tf").write_text('variable "name" {}\n')
    assert not adapter.root_module_takes_adapter(tmp_path)
    (tmp_path / "streaming.tf").write_text('variable "adapter_layer_arn" {\n  type = string\n}\n')
    assert adapter.root_module_takes_adapter(tmp_path)
