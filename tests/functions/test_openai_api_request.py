"""The Chat Completions request parser: what it takes, and what it refuses, naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.chat import completion_create_params

from llm_app.http.openai.request import (
    IGNORED_FIELDS,
    SUPPORTED_FIELDS,
    UNSUPPORTED_FIELDS,
    ChatCompletionRequest,
    ChatMessage,
    ModelIds,
    RequestRefused,
    parse_chat_completion,
)

MODELS = ModelIds(hub_id="TinyLlama/TinyLlama-1.1B-Chat-v1.0", alias="tinyllama")
MAX_NEW_TOKENS = 700
HELLO = [{"role": "user", "content": "What is the capital of France?"}]


def parse(**fields: Any) -> ChatCompletionRequest:
    body = {"model": "tinyllama", "messages": HELLO, **fields}
    return parse_chat_completion(body, models=MODELS, max_new_tokens=MAX_NEW_TOKENS)


def refusal(body: Any) -> RequestRefused:
    with pytest.raises(RequestRefused) as raised:
        parse_chat_completion(body, models=MODELS, max_new_tokens=MAX_NEW_TOKENS)
    return raised.value


def test_the_smallest_request_takes_the_stacks_defaults() -> None:
    request = parse()
    assert request == ChatCompletionRequest(
        model="tinyllama", messages=(ChatMessage("user", "What is the capital of France?"),)
    )
    assert request.generation_kwargs(max_new_tokens=700, temperature=0.5, top_p=0.9) == {
        "max_tokens": 700,
        "temperature": 0.5,
        "top_p": 0.9,
    }


def test_every_field_it_supports_is_taken() -> None:
    request = parse(
        model=MODELS.hub_id,
        messages=[
            {"role": "developer", "content": "Be brief."},
            {
                "role": "system",
                "content": [
                    {"type": "text", "text": "Answer"},
                    {"type": "text", "text": "in French."},
                ],
            },
            {"role": "user", "content": "Capital of France?", "name": "ann"},
            {"role": "assistant", "content": "Paris."},
            {"role": "user", "content": [{"type": "text", "text": "And of Italy?"}]},
        ],
        stream=True,
        stream_options={"include_usage": True},
        max_tokens=50,
        temperature=0,
        top_p=0.5,
        stop=["\n\n", "User:"],
        seed=7,
        n=1,
        user="user-1234",
    )
    assert request.messages == (
        ChatMessage("system", "Be brief."),
        ChatMessage("system", "Answer\nin French."),
        ChatMessage("user", "Capital of France?"),
        ChatMessage("assistant", "Paris."),
        ChatMessage("user", "And of Italy?"),
    )
    assert (request.model, request.stream, request.include_usage, request.user) == (
        MODELS.hub_id,
        True,
        True,
        "user-1234",
    )
    # Greedy: top_p is left out (None: the stack's too), or TGI would sample again.
    assert request.generation_kwargs(max_new_tokens=700, temperature=0.5, top_p=0.9) == {
        "max_tokens": 50,
        "temperature": 0.0,
        "top_p": None,
        "stop": ["\n\n", "User:"],
        "seed": 7,
    }


@pytest.mark.parametrize(
    ("fields", "max_tokens"),
    [
        ({"max_tokens": 100}, 100),
        ({"max_completion_tokens": 100}, 100),
        ({"max_tokens": 100, "max_completion_tokens": 200}, 200),  # the newer name wins
        ({"max_completion_tokens": 100_000}, MAX_NEW_TOKENS),  # lowered to the stack's limit
        ({"max_tokens": None}, None),
    ],
)
def test_max_tokens(fields: dict[str, Any], max_tokens: int | None) -> None:
    assert parse(**fields).max_tokens == max_tokens


@pytest.mark.parametrize(
    ("top_p", "sampling"),
    [
        (0.5, {"temperature": 0.7, "top_p": 0.5}),
        (1, {"temperature": 0.7, "top_p": None}),  # no cut: TGI takes top_p only below 1
        (1.0, {"temperature": 0.7, "top_p": None}),
        (0, {"temperature": 0.0, "top_p": None}),  # only the likeliest token: greedy
    ],
)
def test_top_p(top_p: float, sampling: dict[str, float]) -> None:
    kwargs = parse(top_p=top_p, temperature=0.7).generation_kwargs(
        max_new_tokens=700, temperature=0.5, top_p=0.9
    )
    assert kwargs == {"max_tokens": 700, **sampling}


@pytest.mark.parametrize(
    ("stop", "sequences"),
    [("\n", ("\n",)), (["a", "b"], ("a", "b")), ([], ()), (None, ()), (["", "x"], ("x",))],
)
def test_stop(stop: Any, sequences: tuple[str, ...]) -> None:
    assert parse(stop=stop).stop == sequences


@pytest.mark.parametrize(
    "fields",
    [
        # Unsupported fields sent with the value that asks for nothing: what clients default to.
        {"tools": []},
        {"tool_choice": "none"},
        {"parallel_tool_calls": True},
        {"response_format": {"type": "text"}},
        {"logprobs": False},
        {"top_logprobs": 0},
        {"logit_bias": {}},
        {"modalities": ["text"]},
        {"frequency_penalty": 0},
        {"presence_penalty": 0.0},
        {"store": False},
        {"n": None, "audio": None, "prediction": None},
        # Fields that cannot change the answer, and fields the API does not define.
        {"metadata": {"team": "a"}, "service_tier": "auto", "prompt_cache_key": "k"},
        {"top_k": 5, "repetition_penalty": 1.1, "chat_template_kwargs": {}},
    ],
)
def test_neutral_and_unknown_fields_are_accepted(fields: dict[str, Any]) -> None:
    assert parse(**fields).messages == (ChatMessage("user", HELLO[0]["content"]),)


def test_an_unknown_model_is_not_found() -> None:
    error = refusal({"model": "gpt-4o", "messages": HELLO})
    assert (error.status, error.param, error.openai_code) == (404, "model", "model_not_found")
    assert MODELS.hub_id in error.message
    assert "tinyllama" in error.message


OK = {"model": "tinyllama", "messages": HELLO}
REFUSED: list[tuple[Any, str | None, str | None]] = [
    # (body, param, OpenAI's code)
    ([{"role": "user"}], None, None),
    ({"messages": HELLO}, "model", None),
    ({**OK, "model": 7}, "model", "invalid_type"),
    ({"model": "tinyllama"}, "messages", None),
    ({**OK, "messages": []}, "messages", None),
    ({**OK, "messages": "hi"}, "messages", "invalid_type"),
    ({**OK, "messages": [{"role": "system", "content": "Be brief."}]}, "messages", None),
    ({**OK, "messages": ["hi"]}, "messages[0]", None),
    ({**OK, "messages": [{"content": "hi"}]}, "messages[0].role", None),
    (
        {**OK, "messages": [{"role": "tool", "content": "4", "tool_call_id": "c"}]},
        "messages[0].role",
        None,
    ),
    ({**OK, "messages": [{"role": "user", "content": None}]}, "messages[0].content", None),
    ({**OK, "messages": [{"role": "user", "content": 5}]}, "messages[0].content", None),
    ({**OK, "messages": [{"role": "user", "content": ["hi"]}]}, "messages[0].content[0]", None),
    (
        {**OK, "messages": [{"role": "user", "content": [{"type": "text"}]}]},
        "messages[0].content[0]",
        None,
    ),
    (
        {
            **OK,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                    ],
                }
            ],
        },
        "messages[0].content[1]",
        "unsupported_content_type",
    ),
    (
        {
            **OK,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}
                    ],
                }
            ],
        },
        "messages[0].content[0]",
        "unsupported_content_type",
    ),
    (
        {
            **OK,
            "messages": [
                *HELLO,
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": "c", "type": "function"}],
                },
            ],
        },
        "messages[1].tool_calls",
        "unsupported_parameter",
    ),
    ({**OK, "stream": "yes"}, "stream", "invalid_type"),
    ({**OK, "stream": 1}, "stream", "invalid_type"),
    ({**OK, "stream_options": {"include_usage": True}}, "stream_options", None),
    ({**OK, "stream": True, "stream_options": True}, "stream_options", "invalid_type"),
    (
        {**OK, "stream": True, "stream_options": {"include_usage": "yes"}},
        "stream_options.include_usage",
        "invalid_type",
    ),
    ({**OK, "max_tokens": 0}, "max_tokens", "invalid_value"),
    ({**OK, "max_completion_tokens": 1.5}, "max_completion_tokens", "invalid_type"),
    ({**OK, "max_tokens": True}, "max_tokens", "invalid_type"),
    ({**OK, "temperature": 2.5}, "temperature", "invalid_value"),
    ({**OK, "temperature": "hot"}, "temperature", "invalid_type"),
    ({**OK, "top_p": -0.1}, "top_p", "invalid_value"),
    ({**OK, "stop": 5}, "stop", None),
    ({**OK, "stop": ["a", 1]}, "stop", None),
    ({**OK, "stop": ["a", "b", "c", "d", "e"]}, "stop", "invalid_value"),
    ({**OK, "seed": "7"}, "seed", "invalid_type"),
    ({**OK, "n": 2}, "n", "unsupported_value"),
    ({**OK, "n": 0}, "n", "invalid_value"),
    ({**OK, "user": 42}, "user", "invalid_type"),
    # Defined by the API, not served by this stack: refused by name.
    (
        {**OK, "tools": [{"type": "function", "function": {"name": "f"}}]},
        "tools",
        "unsupported_parameter",
    ),
    ({**OK, "tool_choice": "auto"}, "tool_choice", "unsupported_parameter"),
    ({**OK, "functions": [{"name": "f"}]}, "functions", "unsupported_parameter"),
    ({**OK, "function_call": "auto"}, "function_call", "unsupported_parameter"),
    (
        {**OK, "response_format": {"type": "json_object"}},
        "response_format",
        "unsupported_parameter",
    ),
    ({**OK, "logprobs": True}, "logprobs", "unsupported_parameter"),
    ({**OK, "top_logprobs": 3}, "top_logprobs", "unsupported_parameter"),
    ({**OK, "logit_bias": {"50256": -100}}, "logit_bias", "unsupported_parameter"),
    ({**OK, "audio": {"voice": "alloy", "format": "wav"}}, "audio", "unsupported_parameter"),
    ({**OK, "modalities": ["text", "audio"]}, "modalities", "unsupported_parameter"),
    ({**OK, "parallel_tool_calls": False}, "parallel_tool_calls", "unsupported_parameter"),
    ({**OK, "frequency_penalty": 0.5}, "frequency_penalty", "unsupported_parameter"),
    ({**OK, "reasoning_effort": "low"}, "reasoning_effort", "unsupported_parameter"),
    ({**OK, "store": True}, "store", "unsupported_parameter"),
]


@pytest.mark.parametrize(("body", "param", "code"), REFUSED)
def test_refused_requests_name_the_field(body: Any, param: str | None, code: str | None) -> None:
    error = refusal(body)
    assert (error.status, error.param, error.openai_code) == (400, param, code)
    if param is not None:
        assert f"'{param}'" in error.message


def test_the_parser_decides_every_field_the_official_sdk_sends() -> None:
    """A field OpenAI's API adds shows here first: take it, refuse it, or ignore it."""
    base = completion_create_params.CompletionCreateParamsBase
    defined = set(base.__required_keys__ | base.__optional_keys__) | {"stream"}
    decided = SUPPORTED_FIELDS | set(UNSUPPORTED_FIELDS) | IGNORED_FIELDS
    assert defined - decided == set()
    assert not SUPPORTED_FIELDS & set(UNSUPPORTED_FIELDS)


def test_the_models_list_holds_the_alias_only_when_it_differs() -> None:
    assert MODELS.ids == (MODELS.hub_id, "tinyllama")
    assert ModelIds(hub_id="a/b", alias="a/b").ids == ("a/b",)
    assert ModelIds(hub_id="a/b", alias="").ids == ("a/b",)
