"""The chat function end to end, stateless (memory off): events in, fake TGI endpoint behind."""

from __future__ import annotations

import json

import pytest

from tests.support.events import function_url_event, response_json

SEED_SYSTEM_PROMPT = (
    "You are a cool and aloof robot, answering questions very briefly and directly."
)


@pytest.fixture
def chat(load_handler):
    return load_handler("chat.handler")


def test_seed_curl_body_gets_the_answer(chat, fake_endpoint, lambda_context):
    fake_endpoint.reply("Paris.")
    response = chat.handler(function_url_event(), lambda_context)

    assert response["statusCode"] == 200
    body = response_json(response)
    # Today's fields in today's order, then what the model reported (fields added, none removed).
    assert list(body) == ["answer", "session_id", "memory", "finish_reason", "usage"]
    assert body == {
        "answer": "Paris.",
        "session_id": None,
        "memory": "disabled",
        "finish_reason": "stop",
        # The scripted model counts tokens as a Llama tokenizer does (roughly).
        "usage": fake_endpoint.usage_of_last_call(completion_tokens=1),
    }
    assert fake_endpoint.last_request == {
        "messages": [
            {"role": "system", "content": SEED_SYSTEM_PROMPT},
            {"role": "user", "content": "What is the capital of France?"},
        ],
        "max_tokens": 700,
        "temperature": 0.5,
        "top_p": 0.9,
        "stream": False,
    }
    # The model saw TinyLlama's Zephyr format, built by the server's chat template.
    assert fake_endpoint.backend.calls[-1].prompt == (
        f"<|system|>\n{SEED_SYSTEM_PROMPT}</s>\n"
        "<|user|>\nWhat is the capital of France?</s>\n<|assistant|>\n"
    )


@pytest.mark.parametrize(
    ("body", "base64_body", "content_type"),
    [
        ('["What is the capital of France?"]', False, "application/json"),
        ('["What is the capital of France?"]', True, "application/octet-stream"),
        ('["What is the capital of France?"]', False, None),
        ('{"query": "What is the capital of France?"}', False, "text/plain"),
        ('  ["What is the capital of France?"]\n', False, "application/json"),
    ],
)
def test_body_is_read_whatever_curl_labels_it(
    chat, fake_endpoint, lambda_context, body, base64_body, content_type
):
    event = function_url_event(body, base64_body=base64_body, content_type=content_type)
    response = chat.handler(event, lambda_context)
    assert response["statusCode"] == 200, response
    assert fake_endpoint.last_request["messages"][-1]["content"] == (
        "What is the capital of France?"
    )


def test_query_string_is_neither_needed_nor_harmful(chat, fake_endpoint, lambda_context):
    response = chat.handler(function_url_event(query={"n": "1"}), lambda_context)
    assert response["statusCode"] == 200


def test_settings_come_from_the_environment(load_handler, fake_endpoint, lambda_context):
    chat = load_handler(
        "chat.handler",
        SYSTEM_PROMPT="Answer in French.",
        MAX_NEW_TOKENS="64",
        TEMPERATURE="0.2",
        TOP_P="0.5",
    )
    chat.handler(function_url_event(), lambda_context)
    request = fake_endpoint.last_request
    assert request["messages"][0] == {"role": "system", "content": "Answer in French."}
    assert (request["max_tokens"], request["temperature"], request["top_p"]) == (64, 0.2, 0.5)


def test_temperature_zero_reaches_the_endpoint_as_greedy_decoding(
    load_handler, fake_endpoint, lambda_context
):
    chat = load_handler("chat.handler", TEMPERATURE="0", TOP_P="0.9")
    chat.handler(function_url_event(), lambda_context)
    assert "top_p" not in fake_endpoint.last_request  # a warper would make TGI sample
    (call,) = fake_endpoint.backend.calls
    assert call.params.do_sample is False


def test_unicode_round_trips(chat, fake_endpoint, lambda_context):
    fake_endpoint.reply("東京です。")
    body = json.dumps(["日本の首都は？"], ensure_ascii=False)
    response = chat.handler(function_url_event(body), lambda_context)
    assert response_json(response)["answer"] == "東京です。"
    assert "東京です。" in response["body"]  # readable in a terminal, not \\u-escaped
