"""What Terraform deployed, read back from the AWS API (moto) and the Terraform state.

The AWS API is the source of truth for configuration: the endpoint's model and its container
environment (``HF_MODEL_ID``, ``MAX_INPUT_TOKENS``, ...), each function's handler, runtime,
timeout, memory, environment, layers and URL. A URL on an alias (``modules/lambda-url`` puts
it there, for SnapStart) serves the published version the alias points at, so that version's
configuration and code are what runs. Lambda's API does not hand code back (moto's
``Code.Location`` is not downloadable), so each artifact's path comes from the state
(``filename`` of the function and layer resources) and is checked against the ``CodeSha256``
Lambda recorded: what runs locally is byte for byte what was deployed.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tools.function_urls.cors import Cors
from tools.lambda_sandbox.functions import FunctionSpec
from tools.model_server.protocol import launcher_int


class StackError(RuntimeError):
    """The deployed stack is not what the local runner can serve; the message says why."""


@dataclass(frozen=True)
class DeployedEndpoint:
    name: str
    model_name: str | None  # None: an existing endpoint (existing_endpoint_name), not described
    variant_name: str
    environment: Mapping[str, str]  # the serving container's

    @property
    def engine(self) -> str:
        """The container the model runs: vLLM's DLC takes SM_VLLM_* settings, TGI's the rest."""
        return "vllm" if any(k.startswith("SM_VLLM_") for k in self.environment) else "tgi"

    @property
    def model_id(self) -> str:
        key = "SM_VLLM_MODEL" if self.engine == "vllm" else "HF_MODEL_ID"
        model_id = self.environment.get(key)
        if not model_id:
            raise StackError(f"the SageMaker model {self.model_name} has no {key}")
        return model_id

    def token_limit(self, *names: str) -> int | None:
        try:
            return launcher_int(self.environment, *names)
        except ValueError as error:
            raise StackError(f"{self.model_name}: {error}") from None


@dataclass(frozen=True)
class DeployedFunction:
    label: str  # e.g. "chat", from the Terraform output "chat_url"
    spec: FunctionSpec
    deployed_url: str  # https://<id>.lambda-url.<region>.on.aws/
    cors: Cors | None = None  # the URL's, which the local URL applies as Lambda does


def read_endpoint_choice(sagemaker: Any, outputs: Mapping[str, Any]) -> DeployedEndpoint | None:
    """The endpoint the functions call, by the root module's outputs.

    None while it is paused (``endpoint_enabled = false``: there is nothing to serve, the
    functions answer 503 themselves); an undescribed endpoint for ``existing_endpoint_name``
    (the stack creates no model: ``serving_engine`` is null); else the created endpoint as
    SageMaker describes it.
    """
    endpoint_name = outputs.get("endpoint_name")
    if not endpoint_name:
        raise StackError("the root module has no `endpoint_name` output")
    if outputs.get("endpoint_enabled") is False:
        return None
    if outputs.get("serving_engine") is None:
        return DeployedEndpoint(endpoint_name, None, "AllTraffic", {})
    return read_endpoint(sagemaker, endpoint_name)


def read_endpoint(sagemaker: Any, endpoint_name: str) -> DeployedEndpoint:
    endpoint = sagemaker.describe_endpoint(EndpointName=endpoint_name)
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    variants = config["ProductionVariants"]
    if len(variants) != 1:
        raise StackError(
            f"endpoint {endpoint_name} has {len(variants)} production variants; "
            "the local model server stands for exactly one"
        )
    model = sagemaker.describe_model(ModelName=variants[0]["ModelName"])
    container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
    return DeployedEndpoint(
        name=endpoint_name,
        model_name=model["ModelName"],
        variant_name=variants[0]["VariantName"],
        environment=dict(container.get("Environment") or {}),
    )


def read_functions(
    lambda_client: Any,
    outputs: Mapping[str, Any],
    state_resources: Mapping[str, Mapping[str, Any]],
    *,
    root_dir: Path,
    region: str,
    account_id: str,
    extra_layers: Mapping[str, Path] | None = None,
) -> list[DeployedFunction]:
    """Every function with a URL, labelled by the Terraform output that holds its URL.

    ``extra_layers``: layers published outside Terraform (the local adapter), ARN -> zip.
    """
    label_of_url = {
        str(value): name.removesuffix("_url")
        for name, value in outputs.items()
        if name.endswith("_url") and isinstance(value, str)
    }
    functions = []
    paginator = lambda_client.get_paginator("list_functions")
    for page in paginator.paginate():
        for summary in page["Functions"]:
            name = summary["FunctionName"]
            for qualifier, url_config in _function_urls(lambda_client, name):
                functions.append(
                    _deployed_function(
                        lambda_client,
                        name,
                        qualifier,
                        url_config,
                        label_of_url,
                        state_resources=state_resources,
                        root_dir=root_dir,
                        region=region,
                        account_id=account_id,
                        extra_layers=extra_layers or {},
                    )
                )
    if not functions:
        raise StackError("the stack has no Lambda function with a Function URL")
    return sorted(functions, key=lambda f: f.label)


def _function_urls(lambda_client: Any, name: str) -> list[tuple[str | None, Mapping[str, Any]]]:
    """(qualifier, URL configuration) of each URL of the function: unqualified, or an alias's."""
    aliases = lambda_client.list_aliases(FunctionName=name).get("Aliases") or []
    found = []
    for qualifier in [None, *(alias["Name"] for alias in aliases)]:
        try:
            found.append(
                (
                    qualifier,
                    lambda_client.get_function_url_config(
                        FunctionName=name, **({"Qualifier": qualifier} if qualifier else {})
                    ),
                )
            )
        except lambda_client.exceptions.ResourceNotFoundException:
            continue  # no URL there: nothing to serve
    return found


def _deployed_function(
    lambda_client: Any,
    name: str,
    qualifier: str | None,
    url_config: Mapping[str, Any],
    label_of_url: Mapping[str, str],
    *,
    state_resources: Mapping[str, Mapping[str, Any]],
    root_dir: Path,
    region: str,
    account_id: str,
    extra_layers: Mapping[str, Path],
) -> DeployedFunction:
    # The alias's version: its code and configuration are what the URL serves.
    config = lambda_client.get_function_configuration(
        FunctionName=name, **({"Qualifier": qualifier} if qualifier else {})
    )
    if config.get("PackageType", "Zip") != "Zip":
        raise StackError(f"{name} is a container image function; only zip packages run locally")
    invoke_mode = url_config.get("InvokeMode") or "BUFFERED"
    environment = dict((config.get("Environment") or {}).get("Variables") or {})
    if invoke_mode == "RESPONSE_STREAM" and not environment.get("AWS_LAMBDA_EXEC_WRAPPER"):
        raise StackError(
            f"{name}'s URL streams (RESPONSE_STREAM) but the function has no exec wrapper: "
            "the Python runtime cannot stream without the Lambda Web Adapter"
        )
    resources = list(state_resources.values())
    code = _artifact(
        _one(resources, "function_name", name, what=f"aws_lambda_function {name}"),
        config["CodeSha256"],
        root_dir,
        what=f"function {name}",
    )
    layers = []
    for layer in config.get("Layers") or []:
        # arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION
        layer_name, _, number = layer["Arn"].rpartition(":")
        version = lambda_client.get_layer_version(LayerName=layer_name, VersionNumber=int(number))
        resource = (
            {"filename": str(extra_layers[layer["Arn"]])}
            if layer["Arn"] in extra_layers
            else _one(resources, "arn", layer["Arn"], what=f"layer {layer['Arn']}")
        )
        layers.append(
            _artifact(
                resource,
                version["Content"]["CodeSha256"],
                root_dir,
                what=f"layer {layer['Arn']}",
            )
        )
    url = url_config["FunctionUrl"]
    spec = FunctionSpec(
        name=name,
        handler=config["Handler"],
        code_zip=code,
        layer_zips=tuple(layers),
        environment=environment,
        timeout_seconds=float(config.get("Timeout", 3)),
        memory_mb=int(config.get("MemorySize", 128)),
        runtime=config["Runtime"],
        region=region,
        account_id=account_id,
        auth_type=url_config["AuthType"],
        version=str(config.get("Version") or "$LATEST"),
        alias=qualifier,
        snap_start=(config.get("SnapStart") or {}).get("ApplyOn") == "PublishedVersions",
        invoke_mode=invoke_mode,
        url_id=urlsplit(url).hostname.split(".", 1)[0] if urlsplit(url).hostname else None,
    )
    return DeployedFunction(
        label=label_of_url.get(url, name),
        spec=spec,
        deployed_url=url,
        cors=Cors.from_url_config(url_config),
    )


def _one(
    resources: list[Mapping[str, Any]], key: str, value: str, *, what: str
) -> Mapping[str, Any]:
    matches = [r for r in resources if r.get(key) == value and ("filename" in r or "s3_key" in r)]
    if len(matches) != 1:
        raise StackError(
            f"{what}: expected one resource in the Terraform state, found {len(matches)}"
        )
    return matches[0]


def _artifact(
    resource: Mapping[str, Any], deployed_sha256: str, root_dir: Path, *, what: str
) -> Path:
    filename = resource.get("filename")
    if not filename:
        raise StackError(f"{what} was deployed from S3; the local runner serves local packages")
    path = Path(filename)
    if not path.is_absolute():
        path = root_dir / path
    if not path.is_file():
        raise StackError(f"{what}: {path} is gone since it was deployed (run `make package`)")
    digest = base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()
    if digest != deployed_sha256:
        raise StackError(
            f"{what}: {path} changed since it was deployed (CodeSha256 {deployed_sha256}, "
            f"file {digest}); restart `make local` to deploy the new package"
        )
    return path


def inventory(clients: Mapping[str, Any]) -> dict[str, list[str]]:
    """Resources of the kinds the stack creates that still exist (empty after a destroy)."""
    found: dict[str, list[str]] = {}

    def note(kind: str, names: list[str]) -> None:
        if names:
            found[kind] = sorted(names)

    lam, sagemaker = clients["lambda"], clients["sagemaker"]
    note("lambda functions", [f["FunctionName"] for f in lam.list_functions()["Functions"]])
    note("lambda layers", [layer["LayerName"] for layer in lam.list_layers()["Layers"]])
    note(
        "sagemaker endpoints", [e["EndpointName"] for e in sagemaker.list_endpoints()["Endpoints"]]
    )
    note(
        "sagemaker endpoint configs",
        [c["EndpointConfigName"] for c in sagemaker.list_endpoint_configs()["EndpointConfigs"]],
    )
    note("sagemaker models", [m["ModelName"] for m in sagemaker.list_models()["Models"]])
    note("dynamodb tables", clients["dynamodb"].list_tables()["TableNames"])
    note("iam roles", [r["RoleName"] for r in clients["iam"].list_roles()["Roles"]])
    note(
        "log groups",
        [g["logGroupName"] for g in clients["logs"].describe_log_groups()["logGroups"]],
    )
    return found
