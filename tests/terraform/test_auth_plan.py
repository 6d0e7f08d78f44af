"""Sign-in settings at plan time: bearer modes need a NONE URL, and bad combinations fail early.

Plan-only against moto, on the staged tree and stand-in packages of test_plan.py.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.terraform.test_plan import REGION, errors_of, packages, plan_tree
from tools.devstack import Terraform

pytestmark = pytest.mark.stack

__all__ = ["packages", "plan_tree"]  # fixtures this module uses from test_plan.py

NONE_URL = {"url_authorization_type": "NONE"}
ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123"
BEARER_NEEDS_NONE = (
    'check a bearer token in the functions, which needs url_authorization_type = "NONE"'
)

LOOPBACK_JWKS = "http://127.0.0.1:5000/eu-west-1_AbCdEf123/.well-known/jwks.json"
BROWSER = {"allow_origins": ["https://app.example"]}

# Each plan: variables over a valid base, and the errors it must report (one each, no others).
# Rules across variables are independent preconditions, so several share one plan.
AUTH_PLANS: dict[str, tuple[dict[str, Any], list[str]]] = {
    "API keys on an AWS_IAM URL, a JWKS without an issuer, browsers without the header": (
        {"api_keys_enabled": True, "jwt_jwks_url": LOOPBACK_JWKS, "url_cors": BROWSER},
        [
            BEARER_NEEDS_NONE,
            "jwt_jwks_url is where jwt_issuer's signing keys are",
            'add "authorization" (and "content-type") to url_cors.allow_headers',
        ],
    ),
    "tokens on an AWS_IAM URL, without audiences": (
        {"jwt_issuer": ISSUER},
        [BEARER_NEEDS_NONE, "jwt_issuer needs jwt_audiences"],
    ),
    "a user pool on an AWS_IAM URL, and another issuer": (
        {"create_cognito_user_pool": True, "jwt_issuer": ISSUER, "jwt_audiences": ["web"]},
        [
            BEARER_NEEDS_NONE,
            "create_cognito_user_pool sets the token issuer to the pool it creates",
        ],
    ),
    "URLs that are not https": (
        {
            **NONE_URL,
            "jwt_issuer": "http://issuer.example",
            "jwt_audiences": ["web", ""],
            "jwt_jwks_url": "http://10.0.0.8/jwks.json",
        },
        [
            "jwt_issuer must be an https URL",
            "jwt_audiences must be non-empty strings",
            "jwt_jwks_url must be an https URL (http only on a loopback address",
        ],
    ),
    "a user pool with keys, and browsers": (
        {
            **NONE_URL,
            "api_keys_enabled": True,
            "create_cognito_user_pool": True,
            "url_cors": {**BROWSER, "allow_headers": ["Authorization", "Content-Type"]},
        },
        [],
    ),
}


@pytest.fixture(scope="module")
def auth_plan_errors(plan_tree: Path, moto_env, packages: dict[str, str]) -> dict[str, list[str]]:
    def plan(name: str) -> list[str]:
        tf = Terraform(plan_tree, moto_env(REGION))
        variables = {"name": "plan-test", **packages, **AUTH_PLANS[name][0]}
        return errors_of(tf.plan_diagnostics(variables, "-refresh=false", "-lock=false"))

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(AUTH_PLANS, pool.map(plan, AUTH_PLANS), strict=True))


@pytest.mark.parametrize("name", AUTH_PLANS)
def test_auth_plan(auth_plan_errors: dict[str, list[str]], name: str) -> None:
    errors = auth_plan_errors[name]
    unmatched = list(errors)
    for message in AUTH_PLANS[name][1]:
        matching = [error for error in unmatched if message in error]
        assert len(matching) == 1, f"expected one error containing {message!r}, got: {errors}"
        unmatched.remove(matching[0])
    assert unmatched == [], f"unexpected errors: {unmatched}"


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
