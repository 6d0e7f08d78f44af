"""modules/lambda-url/web-adapter-layers.json: where AWS publishes the Lambda Web Adapter layer.

The table is hand-kept from LWA's release pipeline (its prod.json and cn-prod.json name each
region and its publishing account, and their history when each region joined), so these checks
hold what issues 20 and 27 verified for LWA 1.1.0 (layer version 30): layer versions are
numbered per region, so only the 21 commercial regions the pipeline has published to since it
began, under one account, and the two China regions for x86_64, under their own. No region
without Function URLs, where the module fails anyway. The module's ARNs are planned in
test_plan.py.
"""

from __future__ import annotations

import json
import re

from tools.paths import REPO_ROOT

TABLE = json.loads(
    (REPO_ROOT / "modules" / "lambda-url" / "web-adapter-layers.json").read_text(encoding="utf-8")
)
ACCOUNTS: dict[str, str] = TABLE["accounts"]
COMMERCIAL_ACCOUNT = "753240598075"
CHINA_ACCOUNTS = {"cn-north-1": "041581134020", "cn-northwest-1": "069767869989"}


def test_the_table_is_lwa_1_1_0():
    assert TABLE["layer_version"] == 30
    assert TABLE["layer_names"] == {
        "x86_64": "LambdaAdapterLayerX86",
        "arm64": "LambdaAdapterLayerArm64",
    }


# The pipeline's first regions (prod.json, 2022-03), less me-south-1, which left it in 1.0.0.
PIPELINE_FROM_THE_START = {
    "af-south-1", "ap-east-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
    "ap-south-1", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ca-central-1",
    "eu-central-1", "eu-north-1", "eu-south-1", "eu-west-1", "eu-west-2", "eu-west-3",
    "sa-east-1", "us-east-1", "us-east-2", "us-west-1", "us-west-2",
}  # fmt: skip
# AWS Lambda Developer Guide, "Creating and managing Lambda function URLs" (read 2026-12-07).
WITHOUT_FUNCTION_URLS = {
    "ap-south-2", "ap-southeast-4", "ap-southeast-5", "ap-southeast-6", "ap-southeast-7",
    "ap-east-2", "ca-west-1", "eu-south-2", "eu-central-2", "il-central-1", "me-central-1",
}  # fmt: skip


def test_the_commercial_regions_are_those_published_to_since_the_pipeline_began():
    commercial = {r: a for r, a in ACCOUNTS.items() if not r.startswith("cn-")}
    assert commercial.keys() == PIPELINE_FROM_THE_START
    assert set(commercial.values()) == {COMMERCIAL_ACCOUNT}


def test_no_region_without_function_urls_is_listed():
    assert not WITHOUT_FUNCTION_URLS & ACCOUNTS.keys()
    # mx-central-1 has Function URLs, but LWA's pipeline only reached it in 2026.
    assert "mx-central-1" not in ACCOUNTS


def test_the_module_knows_the_same_regions_without_function_urls():
    module = (REPO_ROOT / "modules" / "lambda-url" / "main.tf").read_text(encoding="utf-8")
    block = re.search(r"nearby_function_url_regions = \{(.*?)\n  \}", module, re.S)
    assert block is not None
    assert set(re.findall(r'^\s*"([a-z0-9-]+)"\s*=', block[1], re.M)) == WITHOUT_FUNCTION_URLS


def test_china_has_the_layer_under_each_region_s_own_account_for_x86_64_only():
    assert {r: a for r, a in ACCOUNTS.items() if r.startswith("cn-")} == CHINA_ACCOUNTS
    # arm64 joined China's pipeline in 2025-11, so its version 30 is not shown to exist.
    assert TABLE["x86_64_only"] == sorted(CHINA_ACCOUNTS)


def test_regions_without_a_published_layer_are_absent():
    # The module then fails the plan unless adapter_layer_arn names a copy.
    for region in ("me-south-1", "us-gov-west-1", "us-gov-east-1"):
        assert region not in ACCOUNTS
    assert all(re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", region) for region in ACCOUNTS)


def test_the_readme_names_the_same_regions_without_function_urls_with_source_and_date():
    readme = " ".join((REPO_ROOT / "README.md").read_text(encoding="utf-8").split())
    claim = re.search(
        r'\("Creating and managing Lambda function URLs", read (\d{4}-\d{2}-\d{2})\) lists'
        r" (\d+) regions where Function URLs do not exist: ([a-z0-9, -]+?)\.",
        readme,
    )
    assert claim is not None
    assert claim[1] == "2026-12-07"
    named = set(re.findall(r"[a-z]{2}-[a-z]+-\d", claim[3]))
    assert named == WITHOUT_FUNCTION_URLS
    assert int(claim[2]) == len(WITHOUT_FUNCTION_URLS)
