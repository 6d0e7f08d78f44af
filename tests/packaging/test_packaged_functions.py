"""The artifacts alone answer Function URL events: nothing is missing from the zips.

Each function runs in a fresh `python3.12 -I -S -B` whose sys.path holds only its unzipped zip
and the unzipped layer (see tools/lambda_sandbox), against the fake SageMaker runtime;
for memory, against DynamoDB on moto. This is what proves the trimmed layer (no numpy, no
zstandard, botocore models for our services only) still serves both functions.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.support.documents import FACT, QUESTION, minimal_pdf
from tests.support.environment import ENDPOINT_NAME, MAX_INPUT_TOKENS, create_history_table
from tests.support.moto import moto_client
from tests.support.web import SseReader, forwarded, open_stream, send, start_script, text_of
from tools.lambda_sandbox import artifacts as sandbox
from tools.packaging import build as package

pytestmark = pytest.mark.packaging


@pytest.fixture
def lambda_env(fake_endpoint, tmp_path: Path) -> dict[str, str]:
    """The functions' environment, pointed at the session's fake SageMaker endpoint."""
    return sandbox.lambda_environment(
        fake_endpoint.url,
        tmp_path,
        ENDPOINT_NAME=ENDPOINT_NAME,
        MAX_INPUT_TOKENS=str(MAX_INPUT_TOKENS),
    )


QUESTION_EVENT = sandbox.function_url_event(json.dumps(["What is the capital of France?"]))


@pytest.mark.parametrize("function", ["chat", "qa"])
def test_the_packaged_function_answers_a_function_url_event(
    function: str, unpacked: sandbox.Unpacked, lambda_env: dict[str, str], fake_endpoint
) -> None:
    fake_endpoint.reply("Paris.")

    run = sandbox.run_isolated(
        unpacked.sys_path(function),
        lambda_env,
        handler=sandbox.HANDLERS[function],
        events=[QUESTION_EVENT],
    )

    response = run.responses[0]
    assert response["statusCode"] == 200, response["body"]
    assert json.loads(response["body"])["answer"] == "Paris."
    sent = json.dumps(fake_endpoint.last_request)
    assert "What is the capital of France?" in sent
    assert run.foreign_modules == [], "loaded from outside the artifacts and the stdlib"
    left_out = {name.replace("-", "_") for name in package.LAYER_POLICY.excluded_distributions}
    assert left_out.isdisjoint(run.loaded_modules), "a dependency left out of the layer is used"
    assert not (unpacked.layer / "numpy").exists()


def test_packaged_chat_keeps_its_memory_in_dynamodb(
    unpacked: sandbox.Unpacked, lambda_env: dict[str, str], fake_endpoint, moto_url: str
) -> None:
    """Exercises botocore's trimmed DynamoDB model as the deployed function would."""
    table = "packaged-chat-history"
    fake_endpoint.reply("Paris.", "About 2.1 million.")
    dynamodb = moto_client("dynamodb", moto_url, lambda_env["AWS_REGION"])
    create_history_table(dynamodb, table)
    session = "packaged-session-1"
    events = [
        sandbox.function_url_event(json.dumps(["What is the capital of France?", session])),
        sandbox.function_url_event(json.dumps(["How many people live there?", session])),
    ]
    env = {**lambda_env, "HISTORY_TABLE_NAME": table, "AWS_ENDPOINT_URL_DYNAMODB": moto_url}
    caller = events[0]["requestContext"]["authorizer"]["iam"]
    owner = f"iam:{caller['accountId']}:{caller['userId']}"  # the session's owner

    run = sandbox.run_isolated(
        unpacked.sys_path("chat"), env, handler="chat.handler.handler", events=events
    )

    assert [r["statusCode"] for r in run.responses] == [200, 200], run.responses
    stored = dynamodb.query(
        TableName=table,
        KeyConditionExpression="session_id = :s",
        ExpressionAttributeValues={":s": {"S": f"{owner}#{session}"}},
    )["Items"]
    assert len(stored) == 2
    assert "What is the capital of France?" in json.dumps(fake_endpoint.last_request)


def test_every_aws_service_the_functions_call_keeps_its_botocore_model() -> None:
    """The layer keeps botocore models only for LAYER_POLICY's services: a new client("x")
    (or llm_app.runtime.aws's aws_client("x")) in the function code must be added there, or it would
    fail only once deployed."""
    named = set()
    for source in Path(package.REPO_ROOT, "functions").rglob("*.py"):
        named |= set(
            re.findall(
                r"""(?:\.client|\.resource|\baws_client)\(\s*["']([a-z0-9-]+)["']""",
                source.read_text(),
            )
        )
    assert named, "found no boto3 client in the function code: is the pattern stale?"
    assert named <= package.LAYER_POLICY.botocore_services


def test_packaged_qa_reads_a_text_and_a_pdf_document_from_s3(
    unpacked: sandbox.Unpacked, lambda_env: dict[str, str], fake_endpoint, moto_url: str
) -> None:
    """Exercises botocore's trimmed S3 model and the layer's pypdf as the deployed function."""
    bucket = "packaged-qa-documents"
    fake_endpoint.reply("The code is 4172.")
    s3 = moto_client("s3", moto_url, lambda_env["AWS_REGION"])
    s3.create_bucket(
        Bucket=bucket,
        CreateBucketConfiguration={"LocationConstraint": lambda_env["AWS_REGION"]},
    )
    s3.put_object(Bucket=bucket, Key="notes.md", Body=b"# Notes\nThe mill is old.")
    s3.put_object(Bucket=bucket, Key="vault.pdf", Body=minimal_pdf(FACT))
    documents = [f"s3://{bucket}/notes.md", f"s3://{bucket}/vault.pdf"]
    env = {**lambda_env, "QA_DOCUMENT_BUCKETS": bucket, "AWS_ENDPOINT_URL_S3": moto_url}

    run = sandbox.run_isolated(
        unpacked.sys_path("qa"),
        env,
        handler="qa.handler.handler",
        events=[sandbox.function_url_event(json.dumps([QUESTION, documents]))],
    )

    response = run.responses[0]
    assert response["statusCode"] == 200, response["body"]
    prompt = fake_endpoint.last_request["messages"][0]["content"]
    assert "The mill is old." in prompt
    assert FACT in prompt
    assert "pypdf" in run.loaded_modules
    assert run.foreign_modules == [], "loaded from outside the artifacts and the stdlib"


@pytest.mark.parametrize("function", ["chat", "qa"])
def test_the_start_script_serves_the_packaged_function_as_the_adapter_expects(
    function: str,
    unpacked: sandbox.Unpacked,
    lambda_env: dict[str, str],
    fake_endpoint,
    tmp_path: Path,
) -> None:
    """run.sh as LWA's /opt/bootstrap execs it (tests.support.web.start_script) must answer
    the readiness check, stream an answer to a forwarded request, and refuse a request
    without the adapter's header."""
    fake_endpoint.stream_reply(["Paris", " is", " nice."])
    with start_script(unpacked.task(function), unpacked.layer, lambda_env, tmp_path) as address:
        event = sandbox.function_url_event()
        refused = send(address, event["body"], {"accept": "text/event-stream"})
        streamed = open_stream(address, event["body"], forwarded(event, accept="text/event-stream"))
        events = SseReader(streamed).events()

    assert refused.status == 403
    assert text_of(events) == "Paris is nice."
    assert events[-1] == (None, "[DONE]")


def test_the_packaged_function_defers_the_package_inits_it_never_reads(
    unpacked: sandbox.Unpacked, lambda_env: dict[str, str], fake_endpoint
) -> None:
    """On the deployed path: the chat model's imports take one enum from langsmith.types, not
    the package's 230 generated modules, and langchain-aws's SageMaker chat model without its
    Bedrock models; reading a name of either package afterwards still works."""
    fake_endpoint.reply("Paris.")

    answered = sandbox.run_isolated(
        unpacked.sys_path("chat"),
        lambda_env,
        handler=sandbox.HANDLERS["chat"],
        events=[sandbox.function_url_event(json.dumps(["What is the capital of France?"]))],
    )
    read_later = sandbox.run_isolated(
        unpacked.sys_path("chat"),
        lambda_env,
        steps=[
            ("handler", "import chat.handler"),
            ("types", "from langsmith.types import Run; assert Run.__name__ == 'Run'"),
            ("bedrock", "from langchain_aws import ChatBedrock; assert ChatBedrock.__name__"),
        ],
    )

    assert answered.responses[0]["statusCode"] == 200
    assert "langsmith.types.run_select_field" in answered.loaded_modules
    assert "langsmith.types.run" not in answered.loaded_modules
    assert "langchain_aws.chat_models.bedrock" not in answered.loaded_modules
    assert "langsmith.types.run" in read_later.loaded_modules
    assert "langchain_aws.chat_models.bedrock" in read_later.loaded_modules
