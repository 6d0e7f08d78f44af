"""The QA function end to end: Function URL events in, real HTTP to the fake TGI endpoint."""

from __future__ import annotations

import json

import pytest

from qa.document_qa import EXAMPLE_DOCUMENT
from tests.support.environment import ENDPOINT_NAME
from tests.support.events import function_url_event, response_json


@pytest.fixture
def qa(load_handler):
    return load_handler("qa.handler")


def test_seed_curl_body_without_query_string_answers_from_the_example_document(
    qa, fake_endpoint, lambda_context
):
    fake_endpoint.reply("Peter stayed 3 days.")
    event = function_url_event('["How long was Elizabeth hospitalized?"]')
    assert "queryStringParameters" not in event

    response = qa.handler(event, lambda_context)

    assert response["statusCode"] == 200
    body = response_json(response)
    # Today's fields in today's order, then what the model reported (fields added, none removed).
    assert list(body) == ["answer", "chain_type", "chunks", "finish_reason", "usage"]
    assert body == {
        "answer": "Peter stayed 3 days.",
        "chain_type": "stuff",
        "chunks": 1,
        "finish_reason": "stop",
        # The scripted model counts tokens as a Llama tokenizer does (roughly).
        "usage": fake_endpoint.usage_of_last_call(completion_tokens=4),
    }
    request = fake_endpoint.last_request
    assert request == {
        "messages": [
            {
                "role": "user",
                "content": "Use the following pieces of context to answer the question at the "
                "end.\n\n" + EXAMPLE_DOCUMENT + "\n\nQuestion: How long was Elizabeth "
                "hospitalized?\nAnswer:",
            }
        ],
        "max_tokens": 700,
        "temperature": 0.5,
        "top_p": 0.9,
        "stream": False,
    }


def test_documents_sent_by_the_caller_are_stuffed_into_the_context(
    qa, fake_endpoint, lambda_context
):
    body = json.dumps(["Who won?", ["Team A scored 3.", "Team B scored 1."]])
    response = qa.handler(function_url_event(body), lambda_context)

    assert response["statusCode"] == 200
    prompt = fake_endpoint.last_request["messages"][0]["content"]
    assert "Team A scored 3.\n\nTeam B scored 1.\n\nQuestion: Who won?" in prompt
    assert EXAMPLE_DOCUMENT not in prompt


def test_object_form_is_accepted(qa, fake_endpoint, lambda_context):
    body = json.dumps({"question": "Who won?", "documents": ["Team A won."]})
    response = qa.handler(function_url_event(body), lambda_context)
    assert response["statusCode"] == 200
    assert "Team A won." in fake_endpoint.last_request["messages"][0]["content"]


def test_context_over_the_input_budget_is_refused_before_calling_the_model(
    qa, fake_endpoint, lambda_context
):
    body = json.dumps(
        {"question": "Summarise.", "documents": ["word " * 2000], "chain_type": "stuff"}
    )
    response = qa.handler(function_url_event(body), lambda_context)

    assert response["statusCode"] == 413
    error = response_json(response)["error"]
    assert error["code"] == "context_too_long"
    assert "1348 input tokens" in error["message"]
    assert fake_endpoint.invocations == []


def test_the_answer_never_contains_the_prompt(qa, fake_endpoint, lambda_context):
    response = qa.handler(function_url_event('["Where?"]'), lambda_context)
    answer = response_json(response)["answer"]
    assert answer == "Paris."
    assert "Use the following pieces of context" not in answer
    # The server applied the chat template itself: the model saw the Zephyr prompt.
    assert fake_endpoint.backend.calls[-1].prompt.startswith("<|user|>\nUse the following")


def test_endpoint_name_in_request_is_the_configured_one(qa, fake_endpoint, lambda_context):
    qa.handler(function_url_event(), lambda_context)
    assert qa.SETTINGS.endpoint_name == ENDPOINT_NAME
    assert len(fake_endpoint.invocations) == 1
