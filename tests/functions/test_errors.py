"""Every failure is `{"error": {"code", "message"}}` with the right status, never a traceback."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.support.canned_http import Canned, answering
from tests.support.environment import ENDPOINT_NAME
from tests.support.events import function_url_event, response_json
from tools.model_server.backend import SageMakerError


@pytest.fixture(params=["chat.handler", "qa.handler"])
def function(request, load_handler):
    return load_handler(request.param)


def error_of(response: dict) -> dict:
    payload = response_json(response)
    assert set(payload) == {"error"}
    assert set(payload["error"]) == {"code", "message"}
    assert "Traceback" not in response["body"]
    return payload["error"]


# -- The caller's mistakes -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "code", "phrase"),
    [
        ("", 400, "invalid_json", "empty"),
        ("What is the capital of France?", 400, "invalid_json", "not valid JSON"),
        ("[1", 400, "invalid_json", "not valid JSON"),
        (b"\xff\xfe\x00[", 400, "invalid_json", "not"),
        ('"just a string"', 400, "invalid_request", "JSON array"),
        ("[]", 400, "invalid_request", "got 0"),
        ("[42]", 400, "invalid_request", "must be a string"),
        ('[""]', 400, "invalid_request", "is empty"),
        ('["   "]', 400, "invalid_request", "is empty"),
        ("[null]", 400, "invalid_request", "got null"),
        ('["a", "b", "c"]', 400, "invalid_request", "got 3"),
        ('{"typo": "x"}', 400, "invalid_request", "Unknown field"),
        ("{}", 400, "invalid_request", "Missing field"),
    ],
)
def test_bad_bodies_get_4xx(function, fake_endpoint, lambda_context, body, status, code, phrase):
    response = function.handler(function_url_event(body), lambda_context)
    assert response["statusCode"] == status
    error = error_of(response)
    assert error["code"] == code
    assert phrase in error["message"]
    assert fake_endpoint.invocations == []


def test_question_over_the_limit_is_413(load_handler, lambda_context):
    function = load_handler("chat.handler", MAX_QUESTION_CHARS="10")
    response = function.handler(
        function_url_event('["a question that is too long"]'), lambda_context
    )
    assert response["statusCode"] == 413
    assert error_of(response)["code"] == "request_too_large"


def test_body_over_the_limit_is_413(load_handler, lambda_context):
    function = load_handler("qa.handler", MAX_BODY_BYTES="2048")
    body = json.dumps(["q", ["x" * 4096]])
    response = function.handler(function_url_event(body), lambda_context)
    assert response["statusCode"] == 413
    assert "4" in error_of(response)["message"]


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH"])
def test_other_methods_are_405_with_allow(function, lambda_context, method):
    response = function.handler(function_url_event(None, method=method), lambda_context)
    assert response["statusCode"] == 405
    assert "POST" in response["headers"]["allow"]
    assert error_of(response)["code"] == "method_not_allowed"


def test_bad_base64_is_400(function, lambda_context):
    event = function_url_event("[]")
    event["isBase64Encoded"] = True
    event["body"] = "%%% not base64 %%%"
    response = function.handler(event, lambda_context)
    assert response["statusCode"] == 400
    assert "base64" in error_of(response)["message"]


def test_an_event_that_is_not_a_function_url_event_is_400(function, lambda_context):
    response = function.handler({"Records": []}, lambda_context)
    assert response["statusCode"] == 400
    assert "Function URL" in error_of(response)["message"]


# -- The endpoint's failures ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "retry_after"),
    [
        (SageMakerError("ThrottlingException", 400, "Rate exceeded"), "5"),
        (SageMakerError("ModelNotReadyException", 429, "Model is not ready"), "30"),
        (SageMakerError("ServiceUnavailable", 503, "Service unavailable"), "10"),
    ],
)
def test_transient_endpoint_states_are_503_with_retry_after(
    function, fake_endpoint, lambda_context, fault, retry_after
):
    fake_endpoint.reply(fault)
    response = function.handler(function_url_event(), lambda_context)
    assert response["statusCode"] == 503
    assert response["headers"]["retry-after"] == retry_after
    error = error_of(response)
    assert error["code"] == "model_unavailable"
    assert fault.code in error["message"]


def test_throttling_is_retried_within_the_attempt_budget(
    load_handler, fake_endpoint, lambda_context
):
    function = load_handler("qa.handler", MAX_ATTEMPTS="2")
    fake_endpoint.reply(SageMakerError("ThrottlingException", 400, "Rate exceeded"), "Three days.")
    response = function.handler(function_url_event(), lambda_context)
    assert response["statusCode"] == 200
    assert response_json(response)["answer"] == "Three days."
    assert len(fake_endpoint.invocations) == 2


def test_a_model_rejection_is_502_with_the_models_message(function, fake_endpoint, lambda_context):
    fake_endpoint.reply(RuntimeError("CUDA out of memory"))
    response = function.handler(function_url_event(), lambda_context)
    assert response["statusCode"] == 502
    error = error_of(response)
    assert error["code"] == "model_error"
    assert "(HTTP 424): Request failed during generation: CUDA out of memory" in error["message"]


def test_generation_failure_is_502(function, fake_endpoint, lambda_context):
    fake_endpoint.reply(RuntimeError("CUDA out of memory"))
    response = function.handler(function_url_event(), lambda_context)
    assert response["statusCode"] == 502
    assert error_of(response)["code"] == "model_error"


def test_missing_endpoint_is_502_naming_it(load_handler, fake_endpoint, lambda_context):
    function = load_handler("chat.handler", ENDPOINT_NAME="no-such-endpoint")
    response = function.handler(function_url_event(), lambda_context)
    assert response["statusCode"] == 502
    error = error_of(response)
    assert error["code"] == "endpoint_not_found"
    assert "'no-such-endpoint'" in error["message"]


def test_slow_model_is_504(load_handler, fake_endpoint, lambda_context):
    function = load_handler("chat.handler", READ_TIMEOUT_SECONDS="0.3")
    fake_endpoint.reply(lambda: time.sleep(1.0) or "late")
    response = function.handler(function_url_event(), lambda_context)
    assert response["statusCode"] == 504
    assert error_of(response)["code"] == "model_timeout"


@pytest.fixture
def garbage_runtime() -> Iterator[str]:
    """A container that answers 200 with something that is not a TGI chat completion."""
    page = b"<html>upstream proxy error</html>"
    with answering(lambda _path: Canned(200, "text/html", page)) as url:
        yield url


def test_unreadable_model_output_is_502_quoted_only_with_log_prompts(
    load_handler, garbage_runtime, lambda_context
):
    function = load_handler("qa.handler", AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=garbage_runtime)
    response = function.handler(function_url_event(), lambda_context)
    assert response["statusCode"] == 502
    error = error_of(response)
    assert error["code"] == "bad_model_output"
    assert "Expecting value" in error["message"]
    # The reply is the model's output, user data like an answer.
    assert "upstream proxy error" not in error["message"]

    debugging = load_handler(
        "qa.handler", AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=garbage_runtime, LOG_PROMPTS="true"
    )
    response = debugging.handler(function_url_event(), lambda_context)
    assert "upstream proxy error" in error_of(response)["message"]


def test_unreachable_runtime_is_503(load_handler, lambda_context):
    function = load_handler(
        "chat.handler",
        AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME="http://127.0.0.1:9",
        CONNECT_TIMEOUT_SECONDS="1",
    )
    response = function.handler(function_url_event(), lambda_context)
    assert response["statusCode"] == 503
    assert error_of(response)["code"] == "model_unavailable"


def test_a_bug_is_500_without_a_traceback(load_handler, monkeypatch, lambda_context):
    function = load_handler("qa.handler")

    def broken(*_args: object, **_kwargs: object) -> None:
        raise KeyError("internal detail")

    monkeypatch.setattr(function, "answer_question", broken)
    response = function.handler(function_url_event(), lambda_context)
    assert response["statusCode"] == 500
    assert "internal detail" not in response["body"]
    assert error_of(response)["code"] == "internal_error"


def test_logs_carry_request_id_and_no_user_text(load_handler, lambda_context, capsys):
    function = load_handler("chat.handler")
    function.handler(function_url_event('["my secret question"]'), lambda_context)
    lines = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    request_line = next(line for line in lines if line["message"] == "request")
    assert request_line["function_request_id"] == lambda_context.aws_request_id
    assert request_line["status"] == 200
    assert "model_ms" in request_line
    assert "cold_start" in request_line
    assert "my secret question" not in json.dumps(lines)
    assert ENDPOINT_NAME
