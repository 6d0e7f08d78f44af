"""Sign-in settings reach both functions: the plan's environment, and the keys table.

The plan-time rules are cases of test_plan.py's ROOT_PLANS; this reuses its staged tree and
stand-in packages.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.terraform.test_plan import ISSUER, LOOPBACK_JWKS, NONE_URL, REGION, packages, plan_tree
from tools.devstack import Terraform

pytestmark = pytest.mark.stack

__all__ = ["packages", "plan_tree"]  # fixtures this module uses from test_plan.py


def test_both_functions_get_the_sign_in_settings(
    plan_tree: Path, moto_env, packages: dict[str, str]
) -> None:
    tf = Terraform(plan_tree, moto_env(REGION))
    variables = {
        "name": "plan-test",
        **packages,
        **NONE_URL,
        "api_keys_enabled": True,
        "jwt_issuer": ISSUER,
        "jwt_audiences": ["web", "cli"],
        "jwt_jwks_url": LOOPBACK_JWKS,
    }
    tf.plan(variables, "-refresh=false", "-lock=false", "-out=auth.tfplan")
    shown = json.loads(tf.run("show", "-json", "auth.tfplan").stdout)
    changes = {change["address"]: change for change in shown["resource_changes"]}

    for function in ("chat", "qa"):
        planned = changes[f'module.functions["{function}"].aws_lambda_function.this']["change"]
        environment = planned["after"]["environment"][0]["variables"]
        assert environment["JWT_ISSUER"] == ISSUER
        assert environment["JWT_AUDIENCES"] == "web,cli"
        assert environment["JWT_JWKS_URL"] == LOOPBACK_JWKS
        assert environment["API_KEYS_TABLE_NAME"] == "plan-test-api-keys"
    table = changes["aws_dynamodb_table.api_keys[0]"]["change"]["after"]
    assert (table["name"], table["hash_key"], table["ttl"][0]["attribute_name"]) == (
        "plan-test-api-keys",
        "pk",
        "purge_at",
    )
    assert "aws_cognito_user_pool.this[0]" not in changes
