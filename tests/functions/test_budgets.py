"""Against what real tokenizers and the real SageMaker runtime do, at the Function URL.

The fake endpoint counts prompt tokens as Llama's tokenizer does on numbers (a token per digit
and mark), or denser still where a test says so, and answers in SageMaker's exact error shapes:
a prompt too long is TGI's 422 inside a ModelError, a container timeout is a ModelError with
OriginalStatusCode 0, IAM's refusal carries the role's ARN and the account id.
"""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Iterator

import pytest

from llm_app.http.web import FunctionApp
from tests.support.canned_http import Canned, answering
from tests.support.environment import ENDPOINT_NAME, HISTORY_TABLE
from tests.support.events import function_url_event, response_json
from tests.support.web import SseReader, forwarded, open_stream, serving, text_of
from tools.bench.tokens import numeric_csv
from tools.model_server.backend import InvocationTimeout, SageMakerError, access_denied
from tools.model_server.scripted_backend import ScriptedStream

ACCOUNT_ID = "123456789012"
TABLE = HISTORY_TABLE
_ARN = re.compile(r"arn:aws")


def utf8_bytes(text: str) -> int:
    """A tokenizer far denser than any estimate: one token per byte."""
    return len(text.encode("utf-8"))


def post(function, lambda_context, payload) -> dict:
    return function.handler(function_url_event(json.dumps(payload)), lambda_context)


def assert_no_aws_internals(response: dict) -> None:
    assert not _ARN.search(response["body"]), response["body"]
    assert ACCOUNT_ID not in response["body"]


# -- Budgets that hold ---------------------------------------------------------------------


def test_a_numeric_csv_document_is_answered_never_502(load_handler, fake_endpoint, lambda_context):
    qa = load_handler("qa.handler")
    document = numeric_csv(130)  # about 3.2 KB; the old estimate said ~1,075 tokens
    assert 3000 <= len(document) <= 3500
    fake_endpoint.backend.respond_with(lambda _prompt: "The largest amount is 9,871.20.")
    response = post(qa, lambda_context, ["What is the largest amount?", [document]])
    assert response["statusCode"] == 200, response["body"]
    assert response_json(response)["chain_type"] == "map_reduce"
    # The estimate alone held: every prompt sent fitted the model's count (none refused).
    assert len(fake_endpoint.invocations) == len(fake_endpoint.backend.calls)


@pytest.mark.parametrize("chain_type", [None, "stuff", "map_reduce", "refine"])
def test_a_tokenizer_denser_than_the_estimate_gets_an_answer_or_413(
    load_handler, fake_endpoint, lambda_context, chain_type
):
    qa = load_handler("qa.handler")
    fake_endpoint.backend.count_tokens_with(utf8_bytes)
    fake_endpoint.backend.respond_with(lambda _prompt: "9,871.20")
    payload: dict = {"question": "Largest amount?", "documents": [numeric_csv(40)]}
    if chain_type:
        payload["chain_type"] = chain_type
    response = post(qa, lambda_context, payload)
    assert response["statusCode"] in (200, 413), response["body"]
    if response["statusCode"] == 413:
        error = response_json(response)["error"]
        assert error["code"] == "context_too_long"
        assert "by the model's own count" in error["message"]
    else:  # refused once at most: the retry's prompts all fitted
        assert len(fake_endpoint.invocations) - len(fake_endpoint.backend.calls) <= 4


def test_the_retry_is_budgeted_by_the_endpoints_own_figures(
    load_handler, fake_endpoint, lambda_context
):
    qa = load_handler("qa.handler")
    fake_endpoint.backend.count_tokens_with(lambda text: 3 * len(text.split()) + 100)
    fake_endpoint.backend.respond_with(lambda _prompt: "Three days.")
    document = " ".join(["Peter stayed with Elizabeth at the hospital."] * 80)
    response = post(qa, lambda_context, ["How long did he stay?", [document]])
    assert response["statusCode"] == 200, response["body"]
    assert response_json(response)["answer"] == "Three days."
    assert response_json(response)["chain_type"] == "map_reduce"
    refused = len(fake_endpoint.invocations) - len(fake_endpoint.backend.calls)
    assert refused == 1  # the stuff prompt; every smaller one fitted


@pytest.mark.parametrize("count", [None, utf8_bytes], ids=["llama", "one-token-a-byte"])
def test_a_chat_session_with_numeric_turns_keeps_answering(
    load_handler, fake_endpoint, lambda_context, memory, dynamodb, count
):
    chat = load_handler("chat.handler", **memory)
    if count is not None:
        fake_endpoint.backend.count_tokens_with(count)
    fake_endpoint.backend.respond_with(lambda _prompt: numeric_csv(25))  # ~600 characters
    session = None
    for turn in range(6):
        question = f"List the amounts of week {turn}: {numeric_csv(5, seed=turn)}"
        response = post(chat, lambda_context, [question, session] if session else [question])
        assert response["statusCode"] == 200, (turn, response["body"])
        session = response_json(response)["session_id"]


def test_a_chat_question_too_long_for_the_model_is_413(load_handler, fake_endpoint, lambda_context):
    chat = load_handler("chat.handler", MAX_QUESTION_CHARS="100000")
    fake_endpoint.backend.count_tokens_with(lambda text: 4 * utf8_bytes(text))
    response = post(chat, lambda_context, [numeric_csv(20)])
    assert response["statusCode"] == 413, response["body"]
    assert response_json(response)["error"]["code"] == "context_too_long"


# -- SageMaker's own errors ----------------------------------------------------------------


@pytest.mark.parametrize("handler", ["chat.handler", "qa.handler"])
def test_the_container_timeout_is_504_with_advice(
    load_handler, fake_endpoint, lambda_context, handler
):
    function = load_handler(handler)
    fake_endpoint.reply(InvocationTimeout())
    response = post(function, lambda_context, ["What is the capital of France?"])
    assert response["statusCode"] == 504, response["body"]
    error = response_json(response)["error"]
    assert error["code"] == "model_timeout"
    assert "60-second" in error["message"]
    assert "stream" in error["message"]
    assert "fewer new tokens" in error["message"]
    assert_no_aws_internals(response)


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        (access_denied(ENDPOINT_NAME, account_id=ACCOUNT_ID), 502, "model_error"),
        (InvocationTimeout(), 504, "model_timeout"),
        (SageMakerError("ThrottlingException", 400, "Rate exceeded"), 503, "model_unavailable"),
        (
            SageMakerError(
                "InternalFailure", 500, f"arn:aws:sagemaker:us-east-1:{ACCOUNT_ID}:endpoint/x"
            ),
            503,
            "model_unavailable",
        ),
        (SageMakerError("NewKindOfError", 400, f"account {ACCOUNT_ID}"), 502, "model_error"),
        (RuntimeError(f"arn:aws:iam::{ACCOUNT_ID}:role/x"), 502, "model_error"),
    ],
)
def test_no_error_body_shows_an_arn_or_account_id(
    load_handler, fake_endpoint, lambda_context, fault, status, code, caplog
):
    chat = load_handler("chat.handler")
    fake_endpoint.reply(fault)
    response = post(chat, lambda_context, ["What is the capital of France?"])
    assert response["statusCode"] == status, response["body"]
    assert response_json(response)["error"]["code"] == code
    assert_no_aws_internals(response)
    if isinstance(fault, SageMakerError):  # the log keeps SageMaker's own words
        logged = [vars(r) for r in caplog.records if "aws_error_message" in vars(r)]
        assert logged[0]["aws_error_message"] == fault.message


def test_a_missing_endpoint_names_it_without_the_account(
    load_handler, fake_endpoint, lambda_context
):
    chat = load_handler("chat.handler", ENDPOINT_NAME="no-such-endpoint")
    response = post(chat, lambda_context, ["Hi"])
    assert response["statusCode"] == 502
    assert response_json(response)["error"]["code"] == "endpoint_not_found"
    assert "'no-such-endpoint'" in response["body"]
    assert_no_aws_internals(response)


@pytest.fixture
def dynamodb_denying_access() -> Iterator[str]:
    """DynamoDB's JSON protocol answering IAM's refusal, table ARN and account id included."""
    body = json.dumps(
        {
            "__type": "com.amazon.coral.service#AccessDeniedException",
            "Message": f"User: arn:aws:sts::{ACCOUNT_ID}:assumed-role/chat/chat is not "
            "authorized to perform: dynamodb:Query on resource: "
            f"arn:aws:dynamodb:eu-west-1:{ACCOUNT_ID}:table/{TABLE} because no "
            "identity-based policy allows the dynamodb:Query action",
        }
    ).encode()
    with answering(lambda _path: Canned(400, "application/x-amz-json-1.0", body)) as url:
        yield url


def test_history_unavailable_shows_no_table_arn(
    load_handler, dynamodb_denying_access, lambda_context, caplog
):
    chat = load_handler(
        "chat.handler", HISTORY_TABLE_NAME=TABLE, AWS_ENDPOINT_URL_DYNAMODB=dynamodb_denying_access
    )
    response = post(chat, lambda_context, ["Hi", "session-0001"])
    assert response["statusCode"] == 503, response["body"]
    error = response_json(response)["error"]
    assert error["code"] == "history_unavailable"
    assert "AccessDeniedException" in error["message"]
    assert_no_aws_internals(response)
    # The detail stays in the log, with the request id.
    logged = [vars(r) for r in caplog.records if "aws_error" in vars(r)]
    assert f"table/{TABLE}" in logged[0]["aws_error"]


# -- Any chat template ---------------------------------------------------------------------


def test_a_template_without_a_system_role_still_answers(
    load_handler, fake_endpoint, lambda_context
):
    chat = load_handler("chat.handler", SYSTEM_PROMPT="Answer in one word.")
    fake_endpoint.backend.system_role = False
    for _ in range(2):
        response = post(chat, lambda_context, ["What is the capital of France?"])
        assert response["statusCode"] == 200, response["body"]
    roles = [[m["role"] for m in body["messages"]] for body in fake_endpoint.invocations]
    # Refused once, folded and retried; the container remembers, so the next call folds at once.
    assert roles == [["system", "user"], ["user"], ["user"]]
    first_user = fake_endpoint.invocations[-1]["messages"][0]["content"]
    assert first_user == "Answer in one word.\n\nWhat is the capital of France?"


@pytest.mark.parametrize(("placement", "roles"), [("user", ["user"]), ("system", None)])
def test_the_placement_setting_chooses_up_front(
    load_handler, fake_endpoint, lambda_context, placement, roles
):
    chat = load_handler("chat.handler", SYSTEM_PROMPT_PLACEMENT=placement)
    fake_endpoint.backend.system_role = placement != "system"
    response = post(chat, lambda_context, ["Hi"])
    if roles is None:  # never folded: the template's refusal is the model's 502
        assert response["statusCode"] == 502
        assert len(fake_endpoint.invocations) == 1
    else:
        assert response["statusCode"] == 200
        assert [m["role"] for m in fake_endpoint.last_request["messages"]] == roles


# -- The DynamoDB client -------------------------------------------------------------------


def test_the_history_client_has_short_timeouts_and_standard_retries(monkeypatch):
    from chat.history import build_dynamodb_client
    from llm_app.config import Settings

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    config = build_dynamodb_client(Settings(endpoint_name="e")).meta.config
    # botocore's defaults: 60 s reads and legacy retries, longer than the whole answer may take.
    assert (config.connect_timeout, config.read_timeout) == (5.0, 5.0)
    assert config.retries == {"total_max_attempts": 3, "mode": "standard"}


# -- The streamed path: door 2 (the ASGI app behind the Lambda Web Adapter) ----------------
#
# A streamed call's refusals (too long, a template without a system role, the container
# timeout) arrive before its first piece, so the retries and the mapping hold there too; a
# failure mid-stream is one error event that names no AWS internals.


def streamed_door(load_handler, module: str, **env: str):
    loaded = load_handler(module, AWS_LWA_INVOKE_MODE="response_stream", **env)
    return FunctionApp(loaded.ROUTES, loaded.SETTINGS, loaded.logger)


def ask_streamed(address: str, payload) -> http.client.HTTPResponse:
    event = function_url_event(json.dumps(payload), accept="text/event-stream")
    return open_stream(address, event["body"], forwarded(event))


def test_a_streamed_qa_answer_retries_smaller_never_502(load_handler, fake_endpoint):
    fake_endpoint.backend.count_tokens_with(lambda text: 3 * len(text.split()) + 100)
    fake_endpoint.backend.respond_with(lambda _prompt: "Three days.")
    document = " ".join(["Peter stayed with Elizabeth at the hospital."] * 80)
    with serving(streamed_door(load_handler, "qa.handler")) as address:
        response = ask_streamed(address, ["How long did he stay?", [document]])
        assert response.status == 200, response.read()
        assert text_of(SseReader(response).events()) == "Three days."
    refused = len(fake_endpoint.invocations) - len(fake_endpoint.backend.calls)
    assert refused == 1  # the streamed stuff prompt; every smaller one fitted


@pytest.mark.parametrize("chain_type", ["stuff", "map_reduce"])
def test_a_streamed_qa_answer_too_dense_is_200_or_413(load_handler, fake_endpoint, chain_type):
    fake_endpoint.backend.count_tokens_with(utf8_bytes)
    fake_endpoint.backend.respond_with(lambda _prompt: "9,871.20")
    payload = {"question": "Largest amount?", "documents": [numeric_csv(40)]}
    with serving(streamed_door(load_handler, "qa.handler")) as address:
        response = ask_streamed(address, {**payload, "chain_type": chain_type})
        body = response.read()
    assert response.status in (200, 413), body
    if response.status == 413:
        assert json.loads(body)["error"]["code"] == "context_too_long"


def test_a_streamed_chat_with_a_denser_tokenizer_trims_and_answers(load_handler, fake_endpoint):
    chat = streamed_door(load_handler, "chat.handler", MAX_QUESTION_CHARS="100000")
    # The first (streamed) call is refused as too long; the trimmed one fits.
    fake_endpoint.backend.count_tokens_with(lambda text: 2 * utf8_bytes(text))
    fake_endpoint.backend.respond_with(lambda _prompt: "Noted.")
    with serving(chat) as address:
        response = ask_streamed(address, [f"Sum these: {numeric_csv(30)}"])
        body = response.read()
    assert response.status in (200, 413), body
    assert response.status != 502


def test_a_streamed_chat_folds_the_system_prompt_on_a_template_refusal(load_handler, fake_endpoint):
    chat = streamed_door(load_handler, "chat.handler", SYSTEM_PROMPT="Answer in one word.")
    fake_endpoint.backend.system_role = False
    fake_endpoint.reply("Paris.")
    with serving(chat) as address:
        response = ask_streamed(address, ["What is the capital of France?"])
        assert response.status == 200
        assert text_of(SseReader(response).events()) == "Paris."
    roles = [[m["role"] for m in body["messages"]] for body in fake_endpoint.invocations]
    assert roles == [["system", "user"], ["user"]]
    assert all(body.get("stream") is True for body in fake_endpoint.invocations)


def test_a_streamed_call_the_container_times_out_is_504(load_handler, fake_endpoint):
    fake_endpoint.reply(InvocationTimeout())
    with serving(streamed_door(load_handler, "chat.handler")) as address:
        response = ask_streamed(address, ["Write a long essay."])
        body = response.read()
    assert response.status == 504
    assert json.loads(body)["error"]["code"] == "model_timeout"
    assert ACCOUNT_ID not in body.decode()


def test_a_failure_mid_stream_names_no_arn_or_account(load_handler, fake_endpoint):
    log_arn = f"arn:aws:logs:us-east-1:{ACCOUNT_ID}:log-group:/aws/sagemaker/Endpoints/x"
    fake_endpoint.backend.script(
        ScriptedStream(("Paris", " is"), fail_after=1, message=f"stream broke; see {log_arn}")
    )
    with serving(streamed_door(load_handler, "chat.handler")) as address:
        response = ask_streamed(address, ["What is the capital of France?"])
        assert response.status == 200
        events = SseReader(response).events()
    error = json.loads(events[-1][1])["error"]
    assert error["code"] == "model_error"
    assert "arn:" not in error["message"]
    assert ACCOUNT_ID not in error["message"]
