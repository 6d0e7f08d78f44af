"""modules/lambda-url/web-adapter-layers.json: where AWS publishes the Lambda Web Adapter layer.

The table is hand-kept from LWA's release pipeline (its prod.json and cn-prod.json name each
region and its publishing account), so these checks hold what issue 20 verified for LWA 1.1.0
(layer version 30): 32 commercial regions under one account, the two China regions under their
own, and no layer where AWS publishes none. The module's ARNs are planned in test_plan.py.
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


def test_every_commercial_region_but_two_has_the_layer_under_one_account():
    commercial = {r: a for r, a in ACCOUNTS.items() if not r.startswith("cn-")}
    assert len(commercial) == 32
    assert set(commercial.values()) == {COMMERCIAL_ACCOUNT}
    assert {"us-east-1", "eu-west-1", "ap-southeast-7", "mx-central-1"} <= commercial.keys()


def test_china_has_the_layer_under_each_region_s_own_account():
    assert {r: a for r, a in ACCOUNTS.items() if r.startswith("cn-")} == CHINA_ACCOUNTS


def test_regions_without_a_published_layer_are_absent():
    # The module then fails the plan unless adapter_layer_arn names a copy.
    for region in ("me-south-1", "me-central-1", "us-gov-west-1", "us-gov-east-1"):
        assert region not in ACCOUNTS
    assert all(re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", region) for region in ACCOUNTS)
