"""The local SageMaker runtime answering as AWS's vLLM DLC, through boto3's invoke_endpoint.

The backend counts whitespace words as tokens and replies with a fixed sentence, so every
assertion is about vLLM's side of the protocol: the chat completion it returns on
/invocations, its one length limit (--max-model-len), and its error body inside SageMaker's
ModelError. The functions' own model code reads these answers too (last tests).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.model_server import runtime_client
from tools.model_server.backend import GenerateParams, Generation
from tools.model_server.server import SageMakerTGIServer

pytestmark = pytest.mark.local

ENDPOINT = "vllm-local-test"
MAX_MODEL_LEN = 60
REGION = "eu-west-1"


@dataclass
class WordBackend:
    model_id: str = "test/words"
    reply: str = "Paris is the capital . STOP and more"
    calls: list[GenerateParams] = field(default_factory=list)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def apply_chat_template(self, messages: list[dict[str, str]]) -> str:
        return " ".join(f"<{m['role']}> {m['content']}" for m in messages) + " <assistant>"

    def generate(self, prompt: str, params: GenerateParams) -> Generation:
        self.calls.append(params)
        words = self.reply.split(" ")
        for count in range(1, len(words) + 1):
            text = " ".join(words[:count])
            if any(text.endswith(stop) for stop in params.stop):
                return Generation(text, count, "stop_sequence")
            if count == params.max_new_tokens:
                return Generation(text, count, "length")
        return Generation(self.reply, len(words), "eos_token")

    def generate_stream(self, prompt: str, params: GenerateParams) -> Iterator[str | Generation]:
        """The whole generation as one last item, once the stream is read (the model is free)."""
        yield self.generate(prompt, params)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[tuple[Any, WordBackend]]:
    backend = WordBackend()
    server = SageMakerTGIServer(
        backend,
        ENDPOINT,
        max_input_tokens=MAX_MODEL_LEN - 1,
        max_total_tokens=MAX_MODEL_LEN,
        region=REGION,
        engine="vllm",
    )
    with server:
        yield runtime_client(server.url, REGION), backend


def invoke(client: Any, body: Any) -> Any:
    response = client.invoke_endpoint(
        EndpointName=ENDPOINT, Body=json.dumps(body), ContentType="application/json"
    )
    return json.loads(response["Body"].read())


def model_error(client: Any, body: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        invoke(client, body)
    response: dict[str, Any] = caught.value.response
    assert response["Error"]["Code"] == "ModelError"
    return response


MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


def test_messages_get_a_vllm_chat_completion(endpoint) -> None:
    client, backend = endpoint
    answer = invoke(client, {"messages": MESSAGES, "max_tokens": 5, "temperature": 0})
    assert answer["object"] == "chat.completion"
    assert answer["id"].startswith("chatcmpl-")
    [choice] = answer["choices"]
    assert choice["message"] == {
        "role": "assistant",
        "content": "Paris is the capital .",
        "reasoning_content": None,
        "tool_calls": [],
    }
    assert choice["finish_reason"] == "length"
    prompt_tokens = len(["<user>", "What", "is", "the", "capital", "of", "France?", "<assistant>"])
    assert answer["usage"]["prompt_tokens"] == prompt_tokens
    assert answer["usage"]["completion_tokens"] == 5
    assert backend.calls[-1].do_sample is False


def test_a_stop_string_ends_the_answer_and_is_left_out(endpoint) -> None:
    client, _ = endpoint
    answer = invoke(client, {"messages": MESSAGES, "max_tokens": 20, "stop": [" STOP"]})
    assert answer["choices"][0]["message"]["content"] == "Paris is the capital ."
    assert answer["choices"][0]["finish_reason"] == "stop"


def test_missing_max_tokens_means_the_rest_of_the_model_length(endpoint) -> None:
    client, backend = endpoint
    invoke(client, {"messages": MESSAGES})
    prompt_tokens = len(["<user>", "What", "is", "the", "capital", "of", "France?", "<assistant>"])
    assert backend.calls[-1].max_new_tokens == MAX_MODEL_LEN - prompt_tokens


def test_too_long_a_request_is_vllms_400_inside_a_model_error(endpoint) -> None:
    client, _ = endpoint
    response = model_error(client, {"messages": MESSAGES, "max_tokens": MAX_MODEL_LEN})
    assert response["OriginalStatusCode"] == 400
    original = json.loads(response["OriginalMessage"])
    assert set(original) == {"error"}
    assert original["error"]["type"] == "BadRequestError"
    assert original["error"]["code"] == 400
    assert original["error"] == {
        "message": "'max_tokens' or 'max_completion_tokens' is too large: 60. This model's "
        "maximum context length is 60 tokens and your request has 8 input tokens (60 > 60 - 8).",
        "type": "BadRequestError",
        "param": "max_tokens",
        "code": 400,
    }
    long_prompt = [{"role": "user", "content": "word " * MAX_MODEL_LEN}]
    response = model_error(client, {"messages": long_prompt, "stream": True})
    assert json.loads(response["OriginalMessage"])["error"] == {
        "message": "This model's maximum context length is 60 tokens. However, your request has "
        "62 input tokens. Please reduce the length of the input messages.",
        "type": "BadRequestError",
        "param": "input_tokens",
        "code": 400,
    }


@pytest.mark.parametrize(
    ("body", "phrase"),
    [
        ({"inputs": "What is the capital of France?"}, "chat completion request"),
        ({"messages": MESSAGES, "tools": [{"type": "function"}]}, "`tools`"),
        (
            {"messages": MESSAGES, "stream_options": {"include_usage": True}},
            "Stream options can only be defined when `stream=True`.",
        ),
        ({"messages": []}, "non-empty list"),
        ({"messages": MESSAGES, "max_tokens": 0}, "max_tokens must be at least 1"),
    ],
)
def test_requests_it_cannot_honour_are_refused_with_a_reason(endpoint, body, phrase) -> None:
    client, _ = endpoint
    response = model_error(client, body)
    assert response["OriginalStatusCode"] == 400
    assert phrase in json.loads(response["OriginalMessage"])["error"]["message"]


def test_the_functions_read_the_vllm_answer_and_its_errors(endpoint) -> None:

    from llm_app.model.engine_errors import PromptTooLong
    from llm_app.model.messages_api import MessagesApiContentHandler
    from llm_app.model.sagemaker_errors import translate_client_error

    client, _ = endpoint
    body = MessagesApiContentHandler().transform_input(
        [{"role": "user", "content": "What is the capital of France?"}],
        {"max_tokens": 5, "temperature": 0.0},
    )
    raw = client.invoke_endpoint(EndpointName=ENDPOINT, Body=body, ContentType="application/json")
    message = MessagesApiContentHandler().transform_output(raw["Body"])
    assert message.content == "Paris is the capital ."
    assert message.usage_metadata is not None
    assert message.usage_metadata["output_tokens"] == 5

    with pytest.raises(ClientError) as caught:
        invoke(client, {"messages": MESSAGES, "max_tokens": MAX_MODEL_LEN})
    error = translate_client_error(caught.value, ENDPOINT)
    assert error.code.value == "context_too_long"
    assert isinstance(error, PromptTooLong)
    # vLLM counts the prompt and the completion against one context length.
    assert error.input_limit == 0  # max_tokens asked for the whole context
    assert error.input_tokens > 0
