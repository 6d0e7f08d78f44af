"""Read the SDK's image configs and write them out as the module's images.json.

The image URI is built the way sagemaker-core's `image_uris.retrieve` builds it for a GPU
instance: `<account>.dkr.<ECR hostname of the region>/<repository>:<tag>`, the hostname coming
from botocore's endpoint data (as the SDK's own resolver does), so each partition gets its DNS
suffix (amazonaws.com.cn, amazonaws.eu, c2s.ic.gov, sc2s.sgov.gov...), and the tag being
`<tag_prefix>-gpu-<py_version>-<container_version>`.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import botocore.loaders
import botocore.regions

from tools.paths import REPO_ROOT

SDK_DISTRIBUTION = "sagemaker-core"
CONFIG_FOLDER = "sagemaker/core/image_uri_config"
OUTPUT = REPO_ROOT / "modules" / "sagemaker-tgi" / "images.json"

# serving_engine value -> the SDK framework whose newest release the module deploys.
ENGINES: dict[str, str] = {
    "tgi": "huggingface-llm",
    "vllm": "vllm",
}
PROCESSOR = "gpu"


@dataclass(frozen=True)
class ImageTable:
    engine: str
    framework: str
    version: str
    repository: str
    tag: str
    registries: dict[str, str]  # region -> registry host (account.dkr.ecr.region.suffix)

    def uri(self, region: str, tag: str | None = None) -> str:
        return f"{self.registries[region]}/{self.repository}:{tag or self.tag}"


def sdk_version() -> str:
    return metadata.version(SDK_DISTRIBUTION)


def load_config(framework: str) -> dict[str, Any]:
    """The framework's JSON config as the installed sagemaker-core ships it."""
    path = Path(str(metadata.distribution(SDK_DISTRIBUTION).locate_file(CONFIG_FOLDER)))
    config_file = path / f"{framework}.json"
    if not config_file.is_file():
        raise SystemExit(f"error: {config_file} is missing; is {SDK_DISTRIBUTION} installed?")
    config: dict[str, Any] = json.loads(config_file.read_text(encoding="utf-8"))
    return config


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def ecr_hostnames(regions: list[str]) -> dict[str, str]:
    """ECR's hostname in each region, from botocore's endpoint data (the SDK's resolver)."""
    resolver = botocore.regions.EndpointResolver(botocore.loaders.Loader().load_data("endpoints"))
    hostnames: dict[str, str] = {}
    for region in regions:
        endpoint = resolver.construct_endpoint("ecr", region)
        if not endpoint:
            raise SystemExit(f"error: botocore knows no ECR endpoint in {region}")
        hostnames[region] = str(endpoint["hostname"])
    return hostnames


def image_table(engine: str) -> ImageTable:
    framework = ENGINES[engine]
    scope = load_config(framework)["inference"]
    version = max(scope["versions"], key=_version_key)
    release = scope["versions"][version]
    if PROCESSOR not in scope.get("processors", [PROCESSOR]):
        raise SystemExit(f"error: {framework} {version} has no {PROCESSOR} image")
    tag = "-".join(
        part
        for part in (
            release.get("tag_prefix", version),
            PROCESSOR,
            release["py_versions"][0],
            release.get("container_version", {}).get(PROCESSOR),
        )
        if part
    )
    accounts: dict[str, str] = release["registries"]
    hostnames = ecr_hostnames(sorted(accounts))
    registries = {
        region: f"{accounts[region]}.dkr.{hostnames[region]}" for region in sorted(accounts)
    }
    return ImageTable(engine, framework, version, release["repository"], tag, registries)


def render(tables: list[ImageTable], version: str) -> str:
    """The tables as images.json: sorted keys, two-space indent, a trailing newline.

    JSON has no comments, so the `generated` key says where the file comes from; the module
    reads `serving_images` alone.
    """
    document = {
        "generated": {
            "by": "python -m tools.image_tables (make images)",
            "from": f"sagemaker-core {version}: "
            + ", ".join(f"{CONFIG_FOLDER}/{t.framework}.json" for t in tables),
            "note": (
                "Do not edit: change the pin in requirements/dev.in and regenerate. Each engine "
                "is its newest release in the SDK; each registry host carries its partition's "
                "DNS suffix."
            ),
        },
        "serving_images": {
            table.engine: {
                "framework": table.framework,
                "version": table.version,
                "repository": table.repository,
                "tag": table.tag,
                "registries": table.registries,
            }
            for table in tables
        },
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def generate() -> str:
    return render([image_table(engine) for engine in ENGINES], sdk_version())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.image_tables", description=__doc__)
    parser.add_argument(
        "--check", action="store_true", help="fail if images.json differs from the SDK's tables"
    )
    args = parser.parse_args(argv)
    text = generate()
    current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
    relative = OUTPUT.relative_to(REPO_ROOT)
    if args.check:
        if current != text:
            print(
                f"{relative} differs from sagemaker-core {sdk_version()}'s image tables; "
                "run `make images`.",
                file=sys.stderr,
            )
            return 1
        print(f"{relative} matches sagemaker-core {sdk_version()}.")
        return 0
    if current != text:
        OUTPUT.write_text(text, encoding="utf-8")
        print(f"wrote {relative} (sagemaker-core {sdk_version()})")
    return 0
