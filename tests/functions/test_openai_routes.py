"""OpenAI's routes on the chat function, read by the official `openai` SDK through both doors.

The SDK's requests reach the chat handler as a Function URL passes them: door 1 is the
buffered Lambda handler on the URL's event, door 2 the ASGI app over HTTP with the headers
the Lambda Web Adapter adds. The model is the fake endpoint (its real SageMaker protocol),
so what the function sent it can be read back. The real model behind the adapter stand-in
answers the same clients in tests/local/test_openai_clients.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest
from openai import BadRequestError, InternalServerError, NotFoundError

from llm_app.http.web import FunctionApp
from tests.support.environment import ENDPOINT_NAME
from tests.support.events import ALICE, REQUEST_ID, lambda_context
from tests.support.web import forwarded, send, serving
from tools.lambda_sandbox.events import request_event

HUB_ID = "TinyLlama/TinyLlama-1.1B-Chat-v1.0"
FRANCE = [{"role": "user", "content": "What is the capital of France?"}]


class FunctionUrl(httpx2.BaseTransport):
    """The SDK's requests as the function's URL delivers them, to door 1 or door 2."""

    def __init__(self, handler_module: Any, address: str | None) -> None:
        self.module, self.address = handler_module, address

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        body = request.read()
        event = request_event(
            body,
            method=request.method,
            path=request.url.path,
            content_type=request.headers.get("content-type"),
            request_id=REQUEST_ID,
            iam=ALICE,
        )
        event["headers"]["accept"] = request.headers.get("accept", "*/*")
        if self.address is None:
            response = self.module.handler(event, lambda_context())
            status, headers = response["statusCode"], response["headers"]
            content = response["body"].encode()
        else:
            target = {"method": request.method, "path": request.url.path}
            reply = send(self.address, body, forwarded(event), **target)
            status, headers, content = reply.status, reply.headers, reply.body
        return httpx2.Response(status, headers=headers, content=content)


@pytest.fixture(params=["lambda", "adapter"])
def client(request: pytest.FixtureRequest, load_handler: Any) -> Iterator[openai.OpenAI]:
    """The SDK on the chat URL, through door 1 ("lambda") or door 2 ("adapter")."""
    chat = load_handler("chat.handler", MODEL_ID=HUB_ID)

    def sdk(address: str | None) -> openai.OpenAI:
        return openai.OpenAI(
            base_url="https://chat.example/v1",
            api_key="unused",
            http_client=httpx2.Client(transport=FunctionUrl(chat, address)),
            max_retries=0,
        )

    if request.param == "lambda":
        yield sdk(None)
        return
    with serving(FunctionApp(chat.ROUTES, chat.SETTINGS, chat.logger)) as address:
        yield sdk(address)


def test_the_sdk_lists_the_models_and_reads_answers_whole_and_streamed(
    client: openai.OpenAI, fake_endpoint: Any
) -> None:
    assert [model.id for model in client.models.list()] == [HUB_ID, HUB_ID.partition("/")[2]]

    fake_endpoint.reply("Paris.")
    completion = client.chat.completions.create(
        model="TinyLlama-1.1B-Chat-v1.0",
        messages=[{"role": "developer", "content": "Be brief."}, *FRANCE],  # type: ignore[list-item]
        max_tokens=20,
        temperature=0,
        stop=["\n\n"],
        seed=7,
    )
    assert completion.choices[0].message.content == "Paris."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == HUB_ID  # the alias answered with the model's name, as OpenAI's
    assert completion.usage is not None
    assert completion.usage.completion_tokens > 0
    # The client's conversation as it was sent, with its own sampling parameters.
    sent = fake_endpoint.last_request
    assert sent["messages"] == [{"role": "system", "content": "Be brief."}, *FRANCE]
    assert {k: sent.get(k) for k in ("max_tokens", "temperature", "stop", "seed")} == {
        "max_tokens": 20,
        "temperature": 0.0,
        "stop": ["\n\n"],
        "seed": 7,
    }
    assert "top_p" not in sent  # greedy: the stack's top_p would turn sampling back on

    fake_endpoint.reply("Paris is the capital.")
    stream = client.chat.completions.create(
        model=HUB_ID,
        messages=FRANCE,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "Paris is the capital."
    )
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens > 0


def test_the_sdk_raises_its_own_errors_for_what_the_route_refuses(
    client: openai.OpenAI, fake_endpoint: Any
) -> None:
    with pytest.raises(NotFoundError) as unknown:
        client.chat.completions.create(model="gpt-4o", messages=FRANCE)  # type: ignore[arg-type]
    assert unknown.value.code == "model_not_found"

    image = [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]
    with pytest.raises(BadRequestError) as refused:
        client.chat.completions.create(
            model=HUB_ID,
            messages=[{"role": "user", "content": image}],  # type: ignore[list-item]
        )
    assert refused.value.code == "unsupported_content_type"
    assert refused.value.body["param"] == "messages[0].content[0]"  # type: ignore[index]

    long = [{"role": "user", "content": "word " * 5000}]
    with pytest.raises(BadRequestError) as too_long:
        client.chat.completions.create(model=HUB_ID, messages=long)  # type: ignore[arg-type]
    assert too_long.value.code == "context_length_exceeded"
    # Over MAX_BODY_BYTES, refused as the request is read: the same error, in OpenAI's shape.
    huge = [{"role": "user", "content": "word " * 60_000}]
    with pytest.raises(BadRequestError) as too_large:
        client.chat.completions.create(model=HUB_ID, messages=huge)  # type: ignore[arg-type]
    assert too_large.value.code == "context_length_exceeded"
    assert fake_endpoint.invocations == []  # refused before the model was called


def test_an_unavailable_endpoint_is_the_sdks_server_error(load_handler: Any) -> None:
    chat = load_handler("chat.handler", ENDPOINT_ENABLED="false")
    sdk = openai.OpenAI(
        base_url="https://chat.example/v1",
        api_key="unused",
        http_client=httpx2.Client(transport=FunctionUrl(chat, None)),
        max_retries=0,
    )
    with pytest.raises(InternalServerError) as paused:
        sdk.chat.completions.create(model=ENDPOINT_NAME, messages=FRANCE)  # type: ignore[arg-type]
    assert paused.value.status_code == 503
    assert paused.value.response.headers["x-should-retry"] == "false"


@pytest.mark.parametrize(
    ("method", "path", "status", "shape"),
    [
        ("GET", "/v1/chat/completions", 405, "openai"),  # the path's own methods only
        ("POST", "/v1/chat/completions", 400, "openai"),  # the seed's body is no completion
        ("POST", "/", 200, "seed"),  # today's routes, as they were
        ("POST", "/anything", 200, "seed"),
    ],
)
def test_the_path_picks_the_route_and_its_error_shape(
    load_handler: Any, fake_endpoint: Any, method: str, path: str, status: int, shape: str
) -> None:
    chat = load_handler("chat.handler")
    fake_endpoint.reply("Paris.")
    event = request_event('["What is the capital of France?"]', method=method, path=path, iam=ALICE)
    response = chat.handler(event, lambda_context())
    assert response["statusCode"] == status
    body = json.loads(response["body"])
    if status == 200:
        assert body["answer"] == "Paris."
    elif shape == "openai":
        assert set(body["error"]) == {"message", "type", "param", "code"}
        if status == 405:
            assert response["headers"]["allow"] == "POST"
