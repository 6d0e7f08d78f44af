"""The adapter layer of ``make local``: the local Lambda Web Adapter, published in moto.

AWS's layer (``arn:aws:lambda:<region>:753240598075:layer:LambdaAdapterLayerX86:30``) lives in
an AWS account moto does not have, and holds a Rust binary; the local stand-in
(``tools.lambda_sandbox.web_adapter``) is built into ``<state>/lambda-web-adapter.zip``,
published as a layer version of moto's account, and its ARN given to the root module's
``adapter_layer_arn``, so Terraform deploys the functions with it as it would AWS's. The
local URLs then find it by that ARN (``stack.read_functions``'s ``extra_layers``). The
teardown deletes it: Terraform did not create it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.lambda_sandbox.web_adapter import LAYER_NAME, build_layer

ROOT_VARIABLE = "adapter_layer_arn"


@dataclass(frozen=True)
class PublishedLayer:
    arn: str
    path: Path
    version: int


def root_module_takes_adapter(root: Path) -> bool:
    """Whether the root module declares ``adapter_layer_arn`` (response streaming)."""
    text = "".join(p.read_text(encoding="utf-8") for p in sorted(root.glob("*.tf")))
    return re.search(rf'variable\s+"{ROOT_VARIABLE}"', text) is not None


def publish(lambda_client: Any, folder: Path) -> PublishedLayer:
    path = build_layer(folder / "lambda-web-adapter.zip")
    published = lambda_client.publish_layer_version(
        LayerName=LAYER_NAME,
        Description="Local stand-in for AWS's Lambda Web Adapter 1.1.0 (make local)",
        Content={"ZipFile": path.read_bytes()},
        CompatibleRuntimes=["python3.12", "python3.13"],
        CompatibleArchitectures=["x86_64", "arm64"],
    )
    return PublishedLayer(published["LayerVersionArn"], path, int(published["Version"]))


def delete(lambda_client: Any, layer: PublishedLayer) -> None:
    lambda_client.delete_layer_version(LayerName=LAYER_NAME, VersionNumber=layer.version)
