"""Plan-time behaviour against moto: bad input fails with its message, the image follows the region.

Plans run with -refresh=false on empty state, so each costs only the provider's start and three
data-source reads; they run two at a time.
"""

from __future__ import annotations

import json
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.support.terraform import init
from tests.support.tools import missing_tool
from tools.devstack import Terraform
from tools.paths import REPO_ROOT

pytestmark = pytest.mark.stack

REGION = "eu-west-1"
TGI_TAG = "2.7.0-tgi3.3.6-gpu-py311-cu124-ubuntu22.04"
VLLM_TAG = "0.30.0-gpu-py312-cu130-ubuntu24.04-sagemaker"
# Where the vLLM image is published: the regions a plan elsewhere must offer instead.
VLLM_REGIONS = sorted(
    json.loads((REPO_ROOT / "modules" / "sagemaker-tgi" / "images.json").read_text())[
        "serving_images"
    ]["vllm"]["registries"]
)

# As long as system_prompt allows (2,000 characters), and three UTF-8 bytes each.
CHINESE_PROMPT = "你" * 2000

# A copy of the adapter's layer in a GovCloud account, where AWS publishes none.
GOV_ADAPTER_LAYER = "arn:aws-us-gov:lambda:us-gov-west-1:123456789012:layer:lwa-copy:3"

# Sign-in settings (auth.tf).
NONE_URL = {"url_authorization_type": "NONE"}
ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123"
LOOPBACK_JWKS = "http://127.0.0.1:5000/eu-west-1_AbCdEf123/.well-known/jwks.json"
BROWSER = {"allow_origins": ["https://app.example"]}
BEARER_NEEDS_NONE = (
    'check a bearer token in the functions, which needs url_authorization_type = "NONE"'
)

# Each plan: (region, variables over a valid base, the error details it must report, one each).
# Variable validations are independent of each other, so several bad values share one plan.
ROOT_PLANS: dict[str, tuple[str, dict[str, Any], list[str]]] = {
    "valid input": (REGION, {}, []),
    "bad values": (
        REGION,
        {
            "name": "Chat_Bot",
            "url_authorization_type": "PUBLIC",
            "instance_type": "g5.xlarge",
            "function_timeout": 901,
            "top_p": 1,
            "image_uri": "ghcr.io/huggingface/text-generation-inference:3.3.6",
            "container_env": {"HF_TOKEN": "hf_secret"},
            "autoscaling": {"min_capacity": 3, "max_capacity": 2},
        },
        [
            "name must be 3-32 characters",
            'url_authorization_type must be "AWS_IAM" or "NONE"',
            "instance_type must be a SageMaker instance type such as ml.g5.xlarge",
            "function_timeout must be a whole number of seconds between 30 and 900",
            "top_p must be strictly between 0 and 1",
            "image_uri must be an ECR image",
            "Pass the Hugging Face token through hf_token",
            "autoscaling needs 1 <= min_capacity <= max_capacity <= 20",
        ],
    ),
    "more bad values": (
        REGION,
        {
            "name": "a" * 33,
            "function_timeout": 10,
            "temperature": -0.1,
            "log_level": "VERBOSE",
            "chat_history_ttl_days": 0,
            "chat_history_max_turns": 101,
            "max_question_chars": 0,
            "chat_session_scope": "session",
        },
        [
            "name must be 3-32 characters",
            "function_timeout must be a whole number of seconds between 30 and 900",
            "function_timeout must be at least 160 seconds",
            "temperature must be from 0 (greedy decoding) to 2",
            "log_level must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL",
            "chat_history_ttl_days must be a whole number of days from 1 to 365",
            "chat_history_max_turns must be a whole number from 1 to 100",
            "max_question_chars must be a whole number from 1 to 32768",
            'chat_session_scope must be "caller"',
        ],
    ),
    # A public QA URL that reads buckets publishes them: only an explicit opt-in allows it.
    "public URL reading document buckets": (
        REGION,
        {"url_authorization_type": "NONE", "qa_document_buckets": ["team-docs"]},
        [
            'url_authorization_type = "NONE" makes the QA URL public, and qa_document_buckets '
            "lets it read every object in team-docs: anyone on the internet could have it quote "
            "any of them. Use AWS_IAM, empty qa_document_buckets, or accept that these buckets "
            "are public by setting qa_public_document_reading = true."
        ],
    ),
    "public URL reading document buckets, opted in": (
        REGION,
        {
            "url_authorization_type": "NONE",
            "qa_document_buckets": ["team-docs"],
            "qa_public_document_reading": True,
        },
        [],
    ),
    "bad document QA values": (
        REGION,
        {
            "qa_document_buckets": ["arn:aws:s3:::docs"],
            "qa_document_kms_key_arns": ["alias/docs"],
            "qa_max_document_bytes": 100,
            "qa_max_chunks": 0,
            "qa_map_concurrency": 65,
        },
        [
            "qa_document_buckets must hold bucket names",
            "qa_document_kms_key_arns must hold KMS key ARNs",
            "qa_max_document_bytes must be a whole number of bytes from 1024",
            "qa_max_chunks must be a whole number from 1 to 10000",
            "qa_map_concurrency must be a whole number from 1 to 64",
        ],
    ),
    "document buckets": (
        REGION,
        {
            "qa_document_buckets": ["team-docs", "reports.example.com"],
            "qa_document_kms_key_arns": [
                "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
            ],
        },
        [],
    ),
    "no tokens left for the prompt": (
        REGION,
        {"max_new_tokens": 2048},
        ["max_new_tokens (2048) must be below max_total_tokens (2048)"],
    ),
    "container input limit over the context": (
        REGION,
        {"max_input_tokens": 2048},
        ["max_input_tokens (2048) must be below max_total_tokens (2048)"],
    ),
    "container input limit of its own": (REGION, {"max_input_tokens": 1024}, []),
    "function timeout below the SageMaker client's wait": (
        REGION,
        {"function_timeout": 120},
        ["function_timeout must be at least 160 seconds"],
    ),
    "bad deployment settings": (
        REGION,
        {
            "deployment_config": {
                "strategy": "canary",
                "wait_seconds": 4000,
                "rolling_batch_size": 0,
                "maximum_execution_timeout_seconds": 100,
                "rollback_alarm_names": [f"alarm-{i}" for i in range(11)],
            },
            "system_prompt_placement": "first",
        },
        [
            'deployment_config.strategy must be "blue_green" or "rolling"',
            "deployment_config.wait_seconds and termination_wait_seconds must be from 0 to 3600",
            "deployment_config.rolling_batch_size must be a whole number of instances",
            "deployment_config.maximum_execution_timeout_seconds must be from 600 to 14400",
            "deployment_config.rollback_alarm_names takes at most 10 CloudWatch alarms",
            'system_prompt_placement must be "auto", "system" or "user"',
        ],
    ),
    "rolling deployment with a rollback alarm": (
        REGION,
        {
            "deployment_config": {
                "strategy": "rolling",
                "wait_seconds": 60,
                "rollback_alarm_names": ["llm-5xx"],
            },
            "autoscaling_enabled": True,
        },
        [],
    ),
    "blue/green deployment": (
        REGION,
        {"deployment_config": {"wait_seconds": 300, "maximum_execution_timeout_seconds": 3600}},
        [],
    ),
    "package not built": (
        REGION,
        {"chat_package_path": "/nonexistent/chat.zip"},
        ["filename does not exist; build the packages first"],
    ),
    # The SDK publishes no vLLM DLC in China (TGI it does).
    "unsupported region": (
        "cn-north-1",
        {"serving_engine": "vllm"},
        [
            "No vLLM image is published in region cn-north-1. Set image_uri to a vLLM image in an"
            " ECR repository of that region, or deploy to one of: " + ", ".join(VLLM_REGIONS) + "."
        ],
    ),
    "unsupported region with image_uri": (
        "cn-north-1",
        {
            "serving_engine": "vllm",
            "image_uri": f"123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/vllm:{VLLM_TAG}",
        },
        [],
    ),
    "image_uri on another partition's ECR host": (
        REGION,
        {"image_uri": f"123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu/tgi:{TGI_TAG}"},
        [],
    ),
    "bad endpoint choices": (
        REGION,
        {"serving_engine": "sglang", "existing_endpoint_name": "-shared-", "image_tag": "latest"},
        [
            'serving_engine must be "tgi" or "vllm"',
            "existing_endpoint_name must be a SageMaker endpoint name",
            "image_tag must be a TGI DLC GPU tag",
        ],
    ),
    "existing endpoint with settings of the endpoint it replaces": (
        REGION,
        {
            "existing_endpoint_name": "shared-llm",
            "serving_engine": "vllm",
            "hf_token": "hf_abcdefgh",
            "container_env": {"DTYPE": "float16"},
            "endpoint_enabled": False,
        },
        [
            "existing_endpoint_name calls an endpoint this stack does not create, so these "
            "settings of the endpoint it would create have no effect; remove them: "
            "serving_engine, hf_token, container_env, endpoint_enabled = false"
        ],
    ),
    "existing endpoint alone": (REGION, {"existing_endpoint_name": "shared-llm"}, []),
    "vllm with a TGI-only setting": (
        REGION,
        {"serving_engine": "vllm", "max_batch_prefill_tokens": 4096},
        ["max_batch_prefill_tokens is a TGI setting"],
    ),
    "vllm with a TGI image tag": (
        REGION,
        {"serving_engine": "vllm", "image_tag": TGI_TAG},
        [f'image_tag "{TGI_TAG}" is not a vLLM tag'],
    ),
    "paused endpoint": (REGION, {"endpoint_enabled": False}, []),
    "bad alarm settings": (
        REGION,
        {
            "alarm_actions": ["ops-topic"],
            "alarm_thresholds": {"period_seconds": 120, "url_5xx_count": 0},
        },
        [
            "alarm_actions must be ARNs",
            "alarm_thresholds.period_seconds must be 60, 300, 900 or 3600",
            "the counts and model_latency_p90_ms must be at least 1",
        ],
    ),
    # AWS publishes no Lambda Web Adapter layer in GovCloud: each function says so, naming
    # both ways out, before anything is created.
    "streaming in GovCloud without an adapter layer": (
        "us-gov-west-1",
        {},
        [
            f"plan-test-{function}: this module knows no Lambda Web Adapter layer version for"
            " us-gov-west-1 (x86_64). Layer versions are numbered per region: LWA 1.1.0 is"
            " version 30 in the 23 regions of modules/lambda-url/web-adapter-layers.json, AWS"
            " publishes none in GovCloud or me-south-1, and where its release pipeline arrived"
            " later (mx-central-1, arm64 in China) that version is not known to exist. Set"
            " adapter_layer_arn to the adapter's layer version in us-gov-west-1 or to a copy in"
            " your account, or response_streaming = false for a buffered function."
            for function in ("chat", "qa")
        ],
    ),
    # LWA's pipeline reached mx-central-1 in 2026: its layer's version 30 is not shown to exist.
    "streaming in mx-central-1 without an adapter layer": (
        "mx-central-1",
        {},
        [
            f"plan-test-{function}: this module knows no Lambda Web Adapter layer version for"
            " mx-central-1 (x86_64)"
            for function in ("chat", "qa")
        ],
    ),
    # Function URLs do not exist there: the plan fails, streaming or not, whatever the layer.
    **{
        f"{region} has no Function URLs{label}": (
            region,
            overrides,
            [
                f"plan-test-{function}: Lambda Function URLs do not exist in {region} (AWS Lambda"
                ' Developer Guide, "Creating and managing Lambda function URLs"), and this module'
                " serves the function through one; response_streaming = false still creates a"
                f" URL. Deploy the stack in a region with Function URLs, e.g. {nearby}."
                for function in ("chat", "qa")
            ],
        )
        for region, nearby, label, overrides in [
            ("eu-central-2", "eu-central-1", "", {}),
            ("me-central-1", "eu-central-1", ", buffered either", {"response_streaming": False}),
            (
                "ap-southeast-7",
                "ap-southeast-1",
                ", whatever the adapter layer",
                {"adapter_layer_arn": "arn:aws:lambda:ap-southeast-7:123456789012:layer:lwa:1"},
            ),
        ]
    },
    # 2,000 characters pass system_prompt's own limit, but in Chinese they take 6,000 bytes.
    "a system prompt too large for Lambda's environment": (
        REGION,
        {"system_prompt": CHINESE_PROMPT},
        [
            "bytes, Lambda allows 4096 (4 KB, keys and values in UTF-8, measured as one JSON"
            f" object). Largest: SYSTEM_PROMPT ({len(('SYSTEM_PROMPT' + CHINESE_PROMPT).encode())}"
            " bytes), "
        ],
    ),
    "streaming in GovCloud with an adapter layer": (
        "us-gov-west-1",
        {"adapter_layer_arn": GOV_ADAPTER_LAYER},
        [],
    ),
    "buffered in GovCloud": ("us-gov-west-1", {"response_streaming": False}, []),
    "bad adapter layer": (
        REGION,
        {"adapter_layer_arn": "arn:aws:lambda:eu-west-1:123456789012:layer:LambdaAdapterLayerX86"},
        [
            "adapter_layer_arn must be a layer version ARN"
            " (arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION), or null."
        ],
    ),
    # Sign-in (auth.tf): rules across variables are independent preconditions, so several
    # share one plan.
    "API keys on an AWS_IAM URL, a JWKS without an issuer, browsers without the header": (
        REGION,
        {"api_keys_enabled": True, "jwt_jwks_url": LOOPBACK_JWKS, "url_cors": BROWSER},
        [
            BEARER_NEEDS_NONE,
            "jwt_jwks_url is where jwt_issuer's signing keys are",
            'add "authorization" (and "content-type") to url_cors.allow_headers',
        ],
    ),
    "tokens on an AWS_IAM URL, without audiences": (
        REGION,
        {"jwt_issuer": ISSUER},
        [BEARER_NEEDS_NONE, "jwt_issuer needs jwt_audiences"],
    ),
    "a user pool on an AWS_IAM URL, and another issuer": (
        REGION,
        {"create_cognito_user_pool": True, "jwt_issuer": ISSUER, "jwt_audiences": ["web"]},
        [
            BEARER_NEEDS_NONE,
            "create_cognito_user_pool sets the token issuer to the pool it creates",
        ],
    ),
    "URLs that are not https": (
        REGION,
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
        REGION,
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
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Small stand-in packages: a plan reads only their hashes."""
    folder = tmp_path_factory.mktemp("packages")
    paths = {}
    for name, member in [
        ("chat", "chat_handler.py"),
        ("qa", "qa_handler.py"),
        ("layer", "python/x.py"),
    ]:
        path = folder / f"{name}.zip"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(member, "def handler(event, context):\n    return {}\n")
        paths[f"{name}_package_path"] = str(path)
    return paths


@pytest.fixture(scope="module")
def plan_tree(tf_env: dict[str, str], staged) -> Path:
    tree = staged("plans")
    for folder in (".", "modules/sagemaker-tgi", "modules/lambda-url"):
        init(Terraform(tree / folder, tf_env))
    return tree


def errors_of(diagnostics: list[dict[str, Any]]) -> list[str]:
    return [
        f"{d['summary']}: {d.get('detail', '')}" for d in diagnostics if d["severity"] == "error"
    ]


@pytest.fixture(scope="module")
def root_plan_errors(plan_tree: Path, moto_env, packages: dict[str, str]) -> dict[str, list[str]]:
    def plan(name: str) -> list[str]:
        region, overrides, _ = ROOT_PLANS[name]
        tf = Terraform(plan_tree, moto_env(region))
        variables = {"name": "plan-test", **packages, **overrides}
        return errors_of(tf.plan_diagnostics(variables, "-refresh=false", "-lock=false"))

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(ROOT_PLANS, pool.map(plan, ROOT_PLANS), strict=True))


@pytest.mark.parametrize("name", ROOT_PLANS)
def test_root_plan(root_plan_errors: dict[str, list[str]], name: str) -> None:
    expected = ROOT_PLANS[name][2]
    errors = root_plan_errors[name]
    # Each bad value yields exactly its own message, and nothing else fails: no duplicate
    # report, no provider error that would otherwise surface minutes into an apply.
    unmatched = list(errors)
    for message in expected:
        matching = [e for e in unmatched if message in e]
        assert len(matching) == 1, f"expected one error containing {message!r}, got: {errors}"
        unmatched.remove(matching[0])
    assert unmatched == [], f"unexpected errors: {unmatched}"


@pytest.mark.parametrize(
    ("overrides", "messages"),
    [
        (
            {"handler": "chat_handler.handler", "environment_variables": {"AWS_REGION": "x"}},
            ["must not be one Lambda reserves (AWS_REGION"],
        ),
        (
            {
                "environment_variables": {"AWS_LWA_PORT": "8000"},
                "adapter_environment": {"AWS_LWA_INVOKE_MODE": "buffered"},
            },
            [
                "must not set AWS_LAMBDA_EXEC_WRAPPER or AWS_LWA_* keys",
                "other than AWS_LWA_INVOKE_MODE, which response_streaming sets",
            ],
        ),
    ],
    ids=["keys Lambda reserves", "adapter settings the module owns"],
)
def test_lambda_url_module_refuses_environment_keys_it_does_not_own(
    plan_tree: Path, moto_env, packages: dict[str, str], overrides: dict, messages: list[str]
) -> None:
    errors = lambda_url_plan_errors(plan_tree, moto_env, packages, REGION, **overrides)
    assert len(errors) == len(messages), errors
    for message in messages:
        assert any(message in error for error in errors), (message, errors)


def lambda_url_plan_errors(
    plan_tree: Path, moto_env, packages: dict[str, str], region: str, **overrides: Any
) -> list[str]:
    """The errors of a plan of the lambda-url module alone, streaming by default."""
    tf = Terraform(plan_tree / "modules" / "lambda-url", moto_env(region))
    variables = {
        "function_name": "module-test",
        "handler": "run.sh",
        "filename": packages["chat_package_path"],
        **overrides,
    }
    return errors_of(tf.plan_diagnostics(variables, "-refresh=false", "-lock=false"))


def lambda_environment_bytes(variables: dict[str, str]) -> int:
    """What Lambda measures against its 4 KB: the variables as one compact JSON object in
    UTF-8 (its refusal quotes that string as "String measured")."""
    return len(json.dumps(variables, separators=(",", ":"), ensure_ascii=False).encode())


# The variables the module adds to a streaming function's environment.
STREAMING_ENV = {
    "AWS_LAMBDA_EXEC_WRAPPER": "/opt/bootstrap",
    "AWS_LWA_INVOKE_MODE": "response_stream",
}


@pytest.mark.parametrize("excess", [0, 1])
def test_the_environment_is_measured_in_bytes_as_lambda_does(
    plan_tree: Path, moto_env, packages: dict[str, str], excess: int
) -> None:
    # Multi-byte characters, and the characters jsonencode escapes but Lambda does not.
    base = {"GREETING": "<b>Grüß & 你好</b>", "ENDPOINT_NAME": "llm", **STREAMING_ENV}
    filler = 4096 + excess - lambda_environment_bytes({**base, "PROMPT": ""})
    variables = {**base, "PROMPT": "x" * (filler % 3) + "你" * (filler // 3)}
    assert lambda_environment_bytes(variables) == 4096 + excess
    user_variables = {k: v for k, v in variables.items() if k not in STREAMING_ENV}

    errors = lambda_url_plan_errors(
        plan_tree, moto_env, packages, REGION, environment_variables=user_variables
    )
    if excess == 0:
        assert errors == []
    else:
        assert len(errors) == 1, errors
        sizes = {name: len((name + value).encode()) for name, value in variables.items()}
        largest = sorted(sizes, key=sizes.__getitem__, reverse=True)[:3]
        assert (
            "module-test: the environment variables take 4097 bytes, Lambda allows 4096 (4 KB,"
            " keys and values in UTF-8, measured as one JSON object). Largest: "
            + ", ".join(f"{name} ({sizes[name]} bytes)" for name in largest)
            + "."
        ) in errors[0]


@pytest.mark.parametrize(
    ("region", "architecture"), [("mx-central-1", "x86_64"), ("cn-northwest-1", "arm64")]
)
def test_where_layer_version_30_is_not_shown_the_module_asks_for_adapter_layer_arn(
    plan_tree: Path, moto_env, packages: dict[str, str], region: str, architecture: str
) -> None:
    errors = lambda_url_plan_errors(
        plan_tree, moto_env, packages, region, architecture=architecture
    )
    assert len(errors) == 1, errors
    assert (
        f"module-test: this module knows no Lambda Web Adapter layer version for {region}"
        f" ({architecture})."
    ) in errors[0]
    assert "Set adapter_layer_arn to the adapter's layer version in" in errors[0]


# -----------------------------------------------------------------------------
# The lambda-url module's adapter: its layer by partition, region and architecture
# -----------------------------------------------------------------------------

LWA_ACCOUNT = "753240598075"  # AWS's publishing account of LWA in the commercial regions
STAND_IN_LAYER = "arn:aws:lambda:eu-west-1:123456789012:layer:lwa-stand-in:1"
# The function's own layer, which the adapter's follows.
DEPS_LAYER = "arn:aws:lambda:{region}:123456789012:layer:deps:7"
# name -> (region, architecture, variables over the module's defaults, the adapter layer run).
ADAPTER_CASES: dict[str, tuple[str, str, dict[str, Any], str | None]] = {
    "commercial, x86_64": (
        "us-east-1",
        "x86_64",
        {},
        f"arn:aws:lambda:us-east-1:{LWA_ACCOUNT}:layer:LambdaAdapterLayerX86:30",
    ),
    "commercial, arm64": (
        "sa-east-1",
        "arm64",
        {},
        f"arn:aws:lambda:sa-east-1:{LWA_ACCOUNT}:layer:LambdaAdapterLayerArm64:30",
    ),
    "China, Beijing": (
        "cn-north-1",
        "x86_64",
        {},
        "arn:aws-cn:lambda:cn-north-1:041581134020:layer:LambdaAdapterLayerX86:30",
    ),
    "China, Ningxia": (
        "cn-northwest-1",
        "x86_64",
        {},
        "arn:aws-cn:lambda:cn-northwest-1:069767869989:layer:LambdaAdapterLayerX86:30",
    ),
    "China, arm64 with a copy": (
        "cn-north-1",
        "arm64",
        {"adapter_layer_arn": "arn:aws-cn:lambda:cn-north-1:123456789012:layer:lwa-copy:2"},
        "arn:aws-cn:lambda:cn-north-1:123456789012:layer:lwa-copy:2",
    ),
    "another layer named": (
        "eu-west-1",
        "x86_64",
        {"adapter_layer_arn": STAND_IN_LAYER},
        STAND_IN_LAYER,
    ),
    "GovCloud with a copy": (
        "us-gov-west-1",
        "arm64",
        {"adapter_layer_arn": GOV_ADAPTER_LAYER},
        GOV_ADAPTER_LAYER,
    ),
    "buffered": ("eu-west-1", "x86_64", {"response_streaming": False}, None),
}


@pytest.fixture(scope="module")
def adapter_plans(plan_tree: Path, moto_env, packages: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Each case's planned outputs, function and URL, from the lambda-url module alone."""
    folder = plan_tree / "modules" / "lambda-url"

    def planned(name: str) -> dict[str, Any]:
        region, architecture, overrides, _ = ADAPTER_CASES[name]
        streaming = overrides.get("response_streaming", True)
        tf = Terraform(folder, moto_env(region))
        plan_file = f"adapter-{abs(hash(name))}.tfplan"
        variables = {
            "function_name": "adapter-test",
            "handler": "run.sh" if streaming else "chat_handler.handler",
            "filename": packages["chat_package_path"],
            "architecture": architecture,
            "layers": [DEPS_LAYER.format(region=region)],
            "environment_variables": {"ENDPOINT_NAME": "llm"},
            "adapter_environment": {"AWS_LWA_READINESS_CHECK_PATH": "/ready"},
            **overrides,
        }
        tf.plan(variables, "-refresh=false", "-lock=false", f"-out={plan_file}")
        shown = json.loads(tf.run("show", "-json", plan_file).stdout)
        resources = {
            r["address"]: r["values"] for r in shown["planned_values"]["root_module"]["resources"]
        }
        return {
            "outputs": {k: v.get("value") for k, v in shown["planned_values"]["outputs"].items()},
            "function": resources["aws_lambda_function.this"],
            "url": resources["aws_lambda_function_url.this"],
        }

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(ADAPTER_CASES, pool.map(planned, ADAPTER_CASES), strict=True))


@pytest.mark.parametrize("name", ADAPTER_CASES)
def test_adapter_layer_follows_partition_region_and_architecture(
    adapter_plans: dict[str, dict[str, Any]], name: str
) -> None:
    region, architecture, _, adapter_layer = ADAPTER_CASES[name]
    planned = adapter_plans[name]
    assert planned["outputs"]["adapter_layer_arn"] == adapter_layer
    assert planned["function"]["architectures"] == [architecture]
    # The adapter's layer comes last: no layer of the function's may shadow /opt/bootstrap.
    own = [DEPS_LAYER.format(region=region)]
    assert planned["function"]["layers"] == own + ([adapter_layer] if adapter_layer else [])


@pytest.mark.parametrize("name", [n for n, case in ADAPTER_CASES.items() if case[3]])
def test_a_streaming_function_runs_its_start_script_behind_the_adapter(
    adapter_plans: dict[str, dict[str, Any]], name: str
) -> None:
    planned = adapter_plans[name]
    assert planned["function"]["handler"] == "run.sh"
    assert planned["function"]["environment"] == [
        {
            "variables": {
                "ENDPOINT_NAME": "llm",
                "AWS_LAMBDA_EXEC_WRAPPER": "/opt/bootstrap",
                "AWS_LWA_INVOKE_MODE": "response_stream",
                "AWS_LWA_READINESS_CHECK_PATH": "/ready",
            }
        }
    ]
    assert planned["url"]["invoke_mode"] == "RESPONSE_STREAM"
    assert planned["outputs"]["invoke_mode"] == "RESPONSE_STREAM"


def test_a_buffered_function_has_no_adapter(adapter_plans: dict[str, dict[str, Any]]) -> None:
    planned = adapter_plans["buffered"]
    assert planned["function"]["handler"] == "chat_handler.handler"
    # The adapter's settings are not set without it, whatever adapter_environment holds.
    assert planned["function"]["environment"] == [{"variables": {"ENDPOINT_NAME": "llm"}}]
    assert planned["url"]["invoke_mode"] == "BUFFERED"


# -----------------------------------------------------------------------------
# What the sagemaker-tgi module derives: image by region, GPUs by instance type
# -----------------------------------------------------------------------------

# (engine, region) -> instance type planned there (each plan checks one region's image and
# one GPU count).
MODULE_CASES: dict[tuple[str, str], str] = {
    ("tgi", "us-east-1"): "ml.g5.12xlarge",
    ("tgi", "ap-southeast-5"): "ml.g5.xlarge",
    ("tgi", "cn-north-1"): "ml.m5.xlarge",
    ("tgi", "us-gov-west-1"): "ml.g6.48xlarge",
    ("vllm", "eu-west-1"): "ml.g5.12xlarge",
    ("vllm", "ap-southeast-7"): "ml.g6e.xlarge",
    ("vllm", "ca-central-1"): "ml.m5.xlarge",
}
SDK_FRAMEWORK = {"tgi": "huggingface-llm", "vllm": "vllm"}
SDK_VERSION = {"tgi": "3.3.6", "vllm": "0.30.0"}


@pytest.fixture(scope="module")
def module_outputs(plan_tree: Path, moto_env) -> dict[tuple[str, str], dict[str, Any]]:
    folder = plan_tree / "modules" / "sagemaker-tgi"

    def planned_outputs(case: tuple[str, str]) -> dict[str, Any]:
        engine, region = case
        tf = Terraform(folder, moto_env(region))
        plan_file = f"{engine}-{region}.tfplan"
        variables = {
            "name": "image-test",
            "serving_engine": engine,
            "instance_type": MODULE_CASES[case],
        }
        tf.plan(variables, "-refresh=false", "-lock=false", f"-out={plan_file}")
        shown = json.loads(tf.run("show", "-json", plan_file).stdout)
        return {k: v.get("value") for k, v in shown["planned_values"]["outputs"].items()}

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(MODULE_CASES, pool.map(planned_outputs, MODULE_CASES), strict=True))


@pytest.mark.parametrize(("engine", "region"), MODULE_CASES)
def test_image_is_the_one_the_sdk_retrieves_for_the_region(
    module_outputs: dict[tuple[str, str], dict[str, Any]], engine: str, region: str
) -> None:
    try:
        from sagemaker.core import image_uris
    except ImportError:
        missing_tool("sagemaker-core is not installed (make venv installs requirements/dev.txt)")
    expected = image_uris.retrieve(
        SDK_FRAMEWORK[engine],
        region=region,
        version=SDK_VERSION[engine],
        instance_type="ml.g5.xlarge",
        image_scope="inference",
    )
    assert module_outputs[(engine, region)]["image_uri"] == expected


@pytest.mark.parametrize(
    ("region", "image"),
    [
        ("us-east-1", "763104351884.dkr.ecr.us-east-1.amazonaws.com"),
        ("ap-southeast-5", "550225433462.dkr.ecr.ap-southeast-5.amazonaws.com"),
        ("cn-north-1", "727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn"),
        ("us-gov-west-1", "442386744353.dkr.ecr.us-gov-west-1.amazonaws.com"),
    ],
)
def test_tgi_image_follows_the_region(
    module_outputs: dict[tuple[str, str], dict[str, Any]], region: str, image: str
) -> None:
    expected = f"{image}/huggingface-pytorch-tgi-inference:{TGI_TAG}"
    assert module_outputs[("tgi", region)]["image_uri"] == expected


def test_vllm_gets_its_documented_settings(
    module_outputs: dict[tuple[str, str], dict[str, Any]],
) -> None:
    outputs = module_outputs[("vllm", "eu-west-1")]  # ml.g5.12xlarge: 4 GPUs
    assert outputs["serving_engine"] == "vllm"
    assert outputs["image_uri"].endswith(f"/vllm:{VLLM_TAG}")
    assert outputs["container_environment"] == {
        "SM_VLLM_MODEL": "TinyLlama/TinyLlama-1.1B-Chat-v1.0",
        "SM_VLLM_MAX_MODEL_LEN": "2048",
        "SM_VLLM_TENSOR_PARALLEL_SIZE": "4",
    }
    # On CPU no tensor-parallel degree is set (vLLM's default is 1).
    cpu = module_outputs[("vllm", "ca-central-1")]["container_environment"]
    assert "SM_VLLM_TENSOR_PARALLEL_SIZE" not in cpu


@pytest.mark.parametrize(
    ("region", "gpus"), [("us-east-1", 4), ("ap-southeast-5", 1), ("us-gov-west-1", 8)]
)
def test_gpu_instances_shard_across_their_gpus(
    module_outputs: dict[tuple[str, str], dict[str, Any]], region: str, gpus: int
) -> None:
    outputs = module_outputs[("tgi", region)]
    assert outputs["num_gpus"] == gpus
    assert outputs["container_environment"]["SM_NUM_GPUS"] == str(gpus)


def test_cpu_instance_leaves_sm_num_gpus_unset(
    module_outputs: dict[tuple[str, str], dict[str, Any]],
) -> None:
    # The DLC turns SM_NUM_GPUS into TGI's shard count; 0 would stop TGI from starting.
    outputs = module_outputs[("tgi", "cn-north-1")]  # ml.m5.xlarge
    assert outputs["num_gpus"] == 0
    assert "SM_NUM_GPUS" not in outputs["container_environment"]
    assert outputs["container_environment"]["MAX_INPUT_TOKENS"] == "1024"
    assert outputs["container_environment"]["MAX_BATCH_PREFILL_TOKENS"] == "1074"


# -----------------------------------------------------------------------------
# Monitoring: which alarms and dashboard each configuration plans
# -----------------------------------------------------------------------------

# Variables over the valid base -> what the plan must hold.
MONITORING_PLANS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "paused endpoint": {"endpoint_enabled": False},
    "existing endpoint": {"existing_endpoint_name": "shared-llm"},
    "no history": {"chat_history_enabled": False},
    "cpu instance": {"instance_type": "ml.m5.2xlarge"},
    "switched off": {"alarms_enabled": False, "dashboard_enabled": False},
    "tracing active": {"tracing_mode": "Active"},
}
FUNCTION_ALARMS = {
    f'module.functions["{function}"].aws_cloudwatch_metric_alarm.this["{kind}"]'
    for function in ("chat", "qa")
    for kind in ("url-5xx", "errors", "throttles", "duration")
}
ENDPOINT_ALARMS = {
    f'module.llm[0].aws_cloudwatch_metric_alarm.this["{kind}"]'
    for kind in ("invocation-5xx", "model-latency", "utilization")
}
HISTORY_ALARM = {'aws_cloudwatch_metric_alarm.history_throttles["throttles"]'}


@pytest.fixture(scope="module")
def monitoring_plans(
    plan_tree: Path, moto_env, packages: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """Each case's planned alarms (address -> values), dashboard and outputs."""

    def planned(name: str) -> dict[str, Any]:
        tf = Terraform(plan_tree, moto_env(REGION))
        plan_file = f"monitoring-{name.replace(' ', '-')}.tfplan"
        variables = {"name": "plan-test", **packages, **MONITORING_PLANS[name]}
        tf.plan(variables, "-refresh=false", "-lock=false", f"-out={plan_file}")
        shown = json.loads(tf.run("show", "-json", plan_file).stdout)
        resources: dict[str, dict[str, Any]] = {}

        def walk(module: dict[str, Any]) -> None:
            for resource in module.get("resources", []):
                resources[resource["address"]] = resource.get("values", {})
            for child in module.get("child_modules", []):
                walk(child)

        walk(shown["planned_values"]["root_module"])
        return {
            "alarms": {a: v for a, v in resources.items() if "aws_cloudwatch_metric_alarm" in a},
            "dashboards": [a for a in resources if "aws_cloudwatch_dashboard" in a],
            "environments": {
                function: resources[f'module.functions["{function}"].aws_lambda_function.this'][
                    "environment"
                ][0]["variables"]
                for function in ("chat", "qa")
            },
            "outputs": {k: v.get("value") for k, v in shown["planned_values"]["outputs"].items()},
        }

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(MONITORING_PLANS, pool.map(planned, MONITORING_PLANS), strict=True))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("defaults", FUNCTION_ALARMS | ENDPOINT_ALARMS | HISTORY_ALARM),
        # No alarm on an endpoint the stack does not run, or on a table it does not create.
        ("paused endpoint", FUNCTION_ALARMS | HISTORY_ALARM),
        ("existing endpoint", FUNCTION_ALARMS | HISTORY_ALARM),
        ("no history", FUNCTION_ALARMS | ENDPOINT_ALARMS),
        ("switched off", set()),
    ],
)
def test_alarms_exist_only_for_what_the_stack_creates(
    monitoring_plans: dict[str, dict[str, Any]], name: str, expected: set[str]
) -> None:
    assert set(monitoring_plans[name]["alarms"]) == expected


def test_the_dashboard_and_its_url_follow_their_switch(
    monitoring_plans: dict[str, dict[str, Any]],
) -> None:
    assert monitoring_plans["defaults"]["dashboards"] == ["aws_cloudwatch_dashboard.this[0]"]
    assert monitoring_plans["defaults"]["outputs"]["dashboard_url"] == (
        f"https://console.aws.amazon.com/cloudwatch/home?region={REGION}"
        "#dashboards/dashboard/plan-test"
    )
    assert monitoring_plans["paused endpoint"]["dashboards"] != []
    assert monitoring_plans["switched off"]["dashboards"] == []
    assert monitoring_plans["switched off"]["outputs"]["dashboard_url"] is None


@pytest.mark.parametrize(
    ("name", "metric", "threshold"),
    [
        # ml.g5.xlarge: one GPU, 90% of it. ml.m5.2xlarge: 8 vCPUs at 90% each.
        ("defaults", "GPUUtilization", 90),
        ("cpu instance", "CPUUtilization", 720),
    ],
)
def test_the_utilisation_alarm_follows_the_instance(
    monitoring_plans: dict[str, dict[str, Any]], name: str, metric: str, threshold: int
) -> None:
    alarm = monitoring_plans[name]["alarms"][
        'module.llm[0].aws_cloudwatch_metric_alarm.this["utilization"]'
    ]
    assert (alarm["namespace"], alarm["metric_name"]) == ("/aws/sagemaker/Endpoints", metric)
    assert alarm["threshold"] == threshold


@pytest.mark.parametrize(("name", "enabled"), [("defaults", "false"), ("tracing active", "true")])
def test_the_functions_trace_their_aws_calls_only_when_tracing_is_active(
    monitoring_plans: dict[str, dict[str, Any]], name: str, enabled: str
) -> None:
    # TRACING_ENABLED decides whether llm_app.runtime.tracing imports the X-Ray SDK at all.
    for environment in monitoring_plans[name]["environments"].values():
        assert environment["TRACING_ENABLED"] == enabled
        assert environment["POWERTOOLS_METRICS_NAMESPACE"] == "LLMApp/plan-test"
