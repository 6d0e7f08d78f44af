import base64
import json
import re

import pytest
from aws_lambda_powertools import Logger

from llm_app.errors import AppError, ErrorCode
from llm_app.http.edge import RequestRecord
from llm_app.http.lambda_handler import lambda_response
from llm_app.http.renderers import json_body
from llm_app.http.request import parse_json, read_request
from tests.support.events import function_url_event, load_event, response_json
from tools.paths import REPO_ROOT


def test_reads_the_saved_event():
    request = read_request(load_event("function_url_post"), max_body_bytes=1024)
    assert request.method == "POST"
    assert request.body == b'["What is the capital of France?"]'
    assert request.request_id == "6c1f8a2e-3b7d-4e0f-9a51-2d8c7b6e4f10"
    assert request.query == {}


def test_the_caller_is_the_signed_principals_account_and_unique_id():
    request = read_request(load_event("function_url_post"), max_body_bytes=1024)
    assert request.caller == "123456789012:AIDACKCEVSQ6C2EXAMPLE"


@pytest.mark.parametrize(
    "iam",
    [None, {}, {"accountId": "123456789012"}, {"accountId": "", "userId": "AIDA"}, "alice"],
)
def test_no_caller_without_a_complete_iam_authorizer(iam):
    event = load_event("function_url_post")
    if iam is None:
        del event["requestContext"]["authorizer"]
    else:
        event["requestContext"]["authorizer"]["iam"] = iam
    assert read_request(event, max_body_bytes=1024).caller is None


def test_reads_query_parameters_when_present():
    request = read_request(load_event("function_url_delete_query"), max_body_bytes=1024)
    assert request.method == "DELETE"
    assert request.body == b""
    assert request.query == {"session_id": "3f2b9c1e-7a44-4d0b-8f6e-2c1d5e9a7b30"}


def test_decodes_base64_bodies():
    event = function_url_event('["q"]', base64_body=True)
    assert event["body"] == base64.b64encode(b'["q"]').decode()
    assert read_request(event, max_body_bytes=1024).body == b'["q"]'


def test_body_limit_counts_decoded_bytes():
    with pytest.raises(AppError) as caught:
        read_request(function_url_event("x" * 2000), max_body_bytes=1024)
    assert caught.value.code is ErrorCode.REQUEST_TOO_LARGE


@pytest.mark.parametrize(
    "event", [None, [], {"requestContext": {"http": {}}}, {"requestContext": "x"}]
)
def test_non_function_url_events_are_refused(event):
    with pytest.raises(AppError) as caught:
        read_request(event, max_body_bytes=1024)
    assert caught.value.code is ErrorCode.INVALID_REQUEST


def test_parse_json_accepts_utf8_and_utf16():
    assert parse_json('["é"]'.encode()) == ["é"]
    assert parse_json('["é"]'.encode("utf-16")) == ["é"]


def test_error_response_shape_and_headers():
    error = AppError(ErrorCode.MODEL_UNAVAILABLE, "busy", retry_after=5, headers={"x-a": "b"})
    response = lambda_response(
        RequestRecord(Logger(service="test"), log_prompts=False).refused(error)
    )
    assert response["statusCode"] == 503
    assert response["headers"] == {
        "content-type": "application/json",
        "retry-after": "5",
        "x-a": "b",
    }
    assert json.loads(response["body"]) == {
        "error": {"code": "model_unavailable", "message": "busy"}
    }


def test_json_keeps_unicode_readable():
    assert json_body({"answer": "東京"}) == '{"answer": "東京"}'.encode()


def test_a_control_character_in_a_string_is_named_once():
    """The shell form `-d "[\"...\", \"$(cat notes.txt)\"]"` puts raw newlines in a string."""
    with pytest.raises(AppError) as caught:
        parse_json(b'["What is it?", "line one\nline two"]')
    assert caught.value.code is ErrorCode.INVALID_JSON
    assert "Invalid control character at line 1 column 26" in caught.value.message
    assert "at at" not in caught.value.message


API_DOC = (REPO_ROOT / "docs" / "api.md").read_text()


@pytest.mark.parametrize("function", ["chat", "qa"])
def test_the_api_tables_200_body_shows_every_field(load_handler, lambda_context, function):
    """docs/api.md's table of requests and responses names each field of each 200 body."""
    [row] = [line for line in API_DOC.splitlines() if line.startswith(f"| {function} | `[")]
    documented = set(re.findall(r'"(\w+)":', row.split(" | ")[-1]))
    handler = load_handler(f"{function}.handler")
    body = response_json(handler.handler(function_url_event('["Why?"]'), lambda_context))
    assert documented == set(body) | set(body["usage"])
