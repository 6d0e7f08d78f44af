"""The SageMaker runtime + TGI protocol server, driven through boto3's real invoke_endpoint.

The backend here is a few lines of deterministic "generation" (whitespace words as tokens),
so every assertion is about the protocol: request parsing, TGI's defaults and validation
wording, the response schemas, and the SageMaker error envelopes botocore parses.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.model_server import runtime_client
from tools.model_server.backend import (
    ChatTemplateError,
    GenerateParams,
    Generation,
    InvocationTimeout,
    SageMakerError,
    access_denied,
)
from tools.model_server.server import SageMakerTGIServer

pytestmark = pytest.mark.local

ENDPOINT = "tgi-local-test"
MAX_INPUT_TOKENS = 40
MAX_TOTAL_TOKENS = 150
REGION = "eu-west-1"


@dataclass
class WordBackend:
    """Tokens are whitespace-separated words; the reply is scripted; calls are recorded."""

    model_id: str = "test/words"
    reply: str = "The capital of France is Paris ."
    finish_on_eos: bool = True
    fail_with: BaseException | None = None
    template_error: str | None = None
    delay: float = 0.0
    calls: list[tuple[str, GenerateParams]] = field(default_factory=list)
    running: int = 0
    most_running: int = 0

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def apply_chat_template(self, messages: list[dict[str, str]]) -> str:
        if self.template_error:
            raise ChatTemplateError(self.template_error)
        return "".join(f"<|{m['role']}|> {m['content']} </s> " for m in messages) + "<|assistant|>"

    def generate(self, prompt: str, params: GenerateParams) -> Generation:
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            time.sleep(self.delay)
            self.calls.append((prompt, params))
            if self.fail_with is not None:
                raise self.fail_with
            words = self.reply.split(" ")
            for index in range(1, len(words) + 1):
                text = " ".join(words[:index])
                for stop in params.stop:
                    if stop in text:
                        return Generation(
                            text[: text.index(stop) + len(stop)], index, "stop_sequence"
                        )
                if index == params.max_new_tokens:
                    return Generation(text, index, "length")
            return Generation(self.reply, len(words), "eos_token")
        finally:
            self.running -= 1

    def generate_stream(self, prompt: str, params: GenerateParams) -> Iterator[str | Generation]:
        """The whole generation as one last item, once the stream is read (the model is free)."""
        yield self.generate(prompt, params)


@dataclass
class Endpoint:
    server: SageMakerTGIServer
    backend: WordBackend
    client: Any
    invocations: list[tuple[str, Any]]
    log: list[str]

    def invoke(self, body: Any, *, content_type: str | None = "application/json") -> Any:
        payload = body if isinstance(body, str | bytes) else json.dumps(body)
        kwargs = {"ContentType": content_type} if content_type else {}
        response = self.client.invoke_endpoint(EndpointName=ENDPOINT, Body=payload, **kwargs)
        assert response["ContentType"] == "application/json"
        assert response["InvokedProductionVariant"] == "AllTraffic"
        return json.loads(response["Body"].read())

    def error(self, body: Any, **kwargs: Any) -> dict[str, Any]:
        with pytest.raises(ClientError) as caught:
            self.invoke(body, **kwargs)
        return caught.value.response

    @property
    def last_params(self) -> GenerateParams:
        return self.backend.calls[-1][1]


@pytest.fixture(scope="module")
def _server() -> Iterator[tuple[SageMakerTGIServer, Any, list[tuple[str, Any]], list[str]]]:
    invocations: list[tuple[str, Any]] = []
    log: list[str] = []
    server = SageMakerTGIServer(
        WordBackend(),
        ENDPOINT,
        max_input_tokens=MAX_INPUT_TOKENS,
        max_total_tokens=MAX_TOTAL_TOKENS,
        on_invocation=lambda name, body: invocations.append((name, body)),
        region=REGION,
        log=log.append,
    )
    with server:
        yield server, runtime_client(server.url, REGION), invocations, log


@pytest.fixture
def endpoint(
    _server: tuple[SageMakerTGIServer, Any, list[tuple[str, Any]], list[str]],
) -> Endpoint:
    """The module's server with a fresh backend and empty records."""
    server, client, invocations, log = _server
    server.backend = WordBackend()
    invocations.clear()
    log.clear()
    return Endpoint(server, server.backend, client, invocations, log)  # type: ignore[arg-type]


def model_error(response: dict[str, Any], status: int) -> str:
    """Assert SageMaker's ModelError envelope around a container error; return its body."""
    assert response["Error"]["Code"] == "ModelError"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert response["OriginalStatusCode"] == status
    original = response["OriginalMessage"]
    kind = "client" if 400 <= status < 500 else "server"
    assert response["Error"]["Message"] == (
        f'Received {kind} error ({status}) from primary with message "{original}". See '
        f"https://{REGION}.console.aws.amazon.com/cloudwatch/home?region={REGION}#logEventViewer:"
        f"group=/aws/sagemaker/Endpoints/{ENDPOINT} in account 123456789012 for more information."
    )
    assert response["LogStreamArn"] == (
        f"arn:aws:logs:{REGION}:123456789012:log-group:/aws/sagemaker/Endpoints/{ENDPOINT}"
    )
    return original


def validation(response: dict[str, Any]) -> str:
    """The sentence of a TGI 422 validation error, after checking its exact JSON shape."""
    body = json.loads(model_error(response, 422))
    assert set(body) == {"error", "error_type"}
    assert body["error_type"] == "validation"
    assert body["error"].startswith("Input validation error: ")
    return body["error"].removeprefix("Input validation error: ")


# ---------------------------------------------------------------------------
# Generate route
# ---------------------------------------------------------------------------
def test_generate_echoes_the_prompt_by_default_on_the_sagemaker_route(endpoint: Endpoint) -> None:
    body = {"inputs": "What is the capital of France ?", "parameters": {"max_new_tokens": 50}}
    answer = endpoint.invoke(body)
    assert answer == [
        {"generated_text": "What is the capital of France ?The capital of France is Paris ."}
    ]
    assert endpoint.invocations == [(ENDPOINT, body)]
    assert endpoint.backend.calls[-1][0] == "What is the capital of France ?"


def test_generate_returns_only_new_text_when_return_full_text_is_false(endpoint: Endpoint) -> None:
    answer = endpoint.invoke(
        {"inputs": "Question ?", "parameters": {"return_full_text": False, "max_new_tokens": 9}}
    )
    assert answer == [{"generated_text": "The capital of France is Paris ."}]


def test_generate_parameters_reach_the_backend_in_tgi_terms(endpoint: Endpoint) -> None:
    endpoint.invoke(
        {
            "inputs": "Question ?",
            "parameters": {
                "max_new_tokens": 7,
                "temperature": 0.5,
                "top_p": 0.9,
                "top_k": 40,
                "repetition_penalty": 1.1,
                "seed": 42,
                "stop": ["Paris"],
            },
        }
    )
    assert endpoint.last_params == GenerateParams(
        max_new_tokens=7,
        temperature=0.5,
        top_p=0.9,
        top_k=40,
        do_sample=True,  # any warper turns sampling on, as in TGI
        seed=42,
        stop=("Paris",),
        repetition_penalty=1.1,
    )


def test_generate_defaults_follow_tgi(endpoint: Endpoint) -> None:
    # No `parameters` at all: TGI's default_parameters() samples, with 100 new tokens.
    endpoint.invoke({"inputs": "Question ?"})
    params = endpoint.last_params
    assert (params.max_new_tokens, params.do_sample) == (100, True)
    assert params.seed is not None  # drawn by the server, like TGI's router

    # An empty `parameters` object: greedy, no seed.
    endpoint.invoke({"inputs": "Question ?", "parameters": {}})
    assert endpoint.last_params == GenerateParams(max_new_tokens=100)

    # temperature exactly 1.0 is no warper: still greedy.
    endpoint.invoke({"inputs": "Question ?", "parameters": {"temperature": 1.0}})
    assert endpoint.last_params.do_sample is False

    # An explicit null asks for as many as fit, capped at 1024.
    endpoint.invoke({"inputs": "one two three", "parameters": {"max_new_tokens": None}})
    assert endpoint.last_params.max_new_tokens == MAX_TOTAL_TOKENS - 3


def test_generate_stop_sequence_is_included_and_reported(endpoint: Endpoint) -> None:
    answer = endpoint.invoke(
        {
            "inputs": "Question ?",
            "parameters": {
                "stop": ["France", "Paris"],
                "return_full_text": False,
                "details": True,
                "max_new_tokens": 20,
            },
        }
    )
    assert answer == [
        {
            "generated_text": "The capital of France",
            "details": {
                "finish_reason": "stop_sequence",
                "generated_tokens": 4,
                "seed": None,
                "prefill": [],
                "tokens": [],
            },
        }
    ]


def test_generate_details_report_length_and_the_seed_used(endpoint: Endpoint) -> None:
    answer = endpoint.invoke(
        {
            "inputs": "Question ?",
            "parameters": {"max_new_tokens": 2, "details": True, "do_sample": True, "seed": 7},
        }
    )
    assert answer[0]["details"] == {
        "finish_reason": "length",
        "generated_tokens": 2,
        "seed": 7,
        "prefill": [],
        "tokens": [],
    }


def test_unicode_round_trips(endpoint: Endpoint) -> None:
    endpoint.backend.reply = "Paris — la capitale ✓"
    answer = endpoint.invoke(
        {"inputs": "Capitale ?", "parameters": {"return_full_text": False, "max_new_tokens": 9}}
    )
    assert answer[0]["generated_text"] == "Paris — la capitale ✓"


# ---------------------------------------------------------------------------
# Token limits and validation, in TGI's words
# ---------------------------------------------------------------------------
def test_total_token_limit_error_is_tgis_exact_sentence(endpoint: Endpoint) -> None:
    response = endpoint.error({"inputs": "word " * 30, "parameters": {"max_new_tokens": 121}})
    assert validation(response) == (
        "`inputs` tokens + `max_new_tokens` must be <= 150. Given: 30 `inputs` tokens "
        "and 121 `max_new_tokens`"
    )
    assert endpoint.backend.calls == []


def test_input_token_limit_error_is_tgis_exact_sentence(endpoint: Endpoint) -> None:
    response = endpoint.error({"inputs": "word " * 45, "parameters": {"max_new_tokens": 1}})
    assert validation(response) == "`inputs` must have less than 40 tokens. Given: 45"


def test_total_limit_is_checked_before_input_limit_as_in_tgi(endpoint: Endpoint) -> None:
    response = endpoint.error({"inputs": "word " * 45, "parameters": {"max_new_tokens": 110}})
    assert validation(response).startswith("`inputs` tokens + `max_new_tokens` must be <= 150.")


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"temperature": 0}, "`temperature` must be strictly positive"),
        ({"temperature": -1.5}, "`temperature` must be strictly positive"),
        ({"top_p": 1.0}, "`top_p` must be > 0.0 and < 1.0"),
        ({"top_p": 0}, "`top_p` must be > 0.0 and < 1.0"),
        ({"top_k": 0}, "`top_k` must be strictly positive"),
        ({"repetition_penalty": 0}, "`repetition_penalty` must be strictly positive"),
        ({"frequency_penalty": 3}, "`frequency_penalty` must be >= -2.0 and <= 2.0"),
        ({"typical_p": 1}, "`typical_p` must be > 0.0 and < 1.0"),
        ({"max_new_tokens": 0}, "`max_new_tokens` must be strictly positive"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "`stop` supports up to 4 stop sequences. Given: 5"),
        ({"best_of": 2}, "you must use sampling when `best_of` is > 1"),
        ({"best_of": 2, "do_sample": True}, "`best_of` != 1 is not allowed for this endpoint"),
        ({"top_n_tokens": 3}, "`top_n_tokens` != 0 is not allowed for this endpoint"),
        (
            {"truncate": 0},
            "`truncate` must be strictly positive and less than 40. Given: 0",
        ),
        ({"grammar": {"type": "json", "value": {}}}, "grammar is not supported"),
    ],
)
def test_parameter_validation_uses_tgis_wording(
    endpoint: Endpoint, parameters: dict[str, Any], message: str
) -> None:
    response = endpoint.error({"inputs": "Question ?", "parameters": parameters})
    assert validation(response) == message
    assert endpoint.backend.calls == []


def test_empty_inputs_are_refused(endpoint: Endpoint) -> None:
    assert validation(endpoint.error({"inputs": ""})) == "`inputs` cannot be empty"


@pytest.mark.parametrize(
    "parameters",
    [{"truncate": 10}, {"typical_p": 0.5}, {"watermark": True}, {"decoder_input_details": True}],
)
def test_tgi_features_this_server_lacks_are_refused_not_ignored(
    endpoint: Endpoint, parameters: dict[str, Any]
) -> None:
    message = validation(endpoint.error({"inputs": "Question ?", "parameters": parameters}))
    name = next(iter(parameters))
    assert message.startswith(f"`{name}` is not supported by this local TGI server")


# ---------------------------------------------------------------------------
# Bodies TGI's JSON extractor rejects
# ---------------------------------------------------------------------------
def test_malformed_json_is_the_containers_plain_400(endpoint: Endpoint) -> None:
    original = model_error(endpoint.error("not json"), 400)
    assert original == (
        "Failed to parse the request body as JSON: Expecting value at line 1 column 1"
    )
    assert endpoint.invocations == []  # nothing parsed, nothing reported


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"question": "hi"}, "expected `inputs` (generate) or `messages` (Messages API)"),
        (["What is the capital of France?"], "expected a JSON object, got sequence"),
        (
            {"inputs": "hi", "parameters": {"temperature": "hot"}},
            '`temperature`: invalid type: string "hot", expected f32',
        ),
        (
            {"inputs": "hi", "parameters": {"max_new_tokens": -1}},
            "`max_new_tokens`: invalid value: integer `-1`, expected u32",
        ),
        ({"inputs": 42}, "`inputs`: invalid type: integer `42`, expected a string"),
        ({"messages": [{"role": "user"}]}, "`messages[0]`: missing field `content`"),
        ({"prompt": "hi"}, "the Completions API (`prompt`) is not implemented"),
    ],
)
def test_unrecognised_bodies_are_the_containers_422(
    endpoint: Endpoint, body: Any, detail: str
) -> None:
    original = model_error(endpoint.error(body), 422)
    assert original.startswith(
        "Failed to deserialize the JSON body into the target type: "
        "data did not match any variant of untagged enum SagemakerRequest: "
    )
    assert detail in original


def test_a_body_without_json_content_type_is_refused_with_415(endpoint: Endpoint) -> None:
    original = model_error(endpoint.error({"inputs": "hi"}, content_type=None), 415)
    assert original == "Expected request with `Content-Type: application/json`"
    model_error(endpoint.error({"inputs": "hi"}, content_type="text/plain"), 415)
    assert endpoint.invoke({"inputs": "hi"}, content_type="application/json; charset=utf-8")


# ---------------------------------------------------------------------------
# Messages API
# ---------------------------------------------------------------------------
def test_messages_api_answers_a_chat_completion(endpoint: Endpoint) -> None:
    body = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is the capital of France?"},
        ],
        "max_tokens": 20,
        "temperature": 0.5,
        "top_p": 0.9,
    }
    before = int(time.time())
    answer = endpoint.invoke(body)
    prompt, params = endpoint.backend.calls[-1]
    assert prompt == (
        "<|system|> Be brief. </s> <|user|> What is the capital of France? </s> <|assistant|>"
    )
    assert params == GenerateParams(
        max_new_tokens=20, temperature=0.5, top_p=0.9, do_sample=True, seed=params.seed
    )
    assert params.seed is not None
    assert before <= answer.pop("created") <= int(time.time())
    assert answer == {
        "object": "chat.completion",
        "id": "",
        "model": "test/words",
        "system_fingerprint": "sagemaker_tgi-local",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "The capital of France is Paris ."},
                "logprobs": None,
                "finish_reason": "stop",  # TGI's name for eos_token on this API
            }
        ],
        "usage": {"prompt_tokens": 13, "completion_tokens": 7, "total_tokens": 20},
    }
    assert endpoint.invocations == [(ENDPOINT, body)]


def test_messages_api_defaults_and_greedy_temperature_zero(endpoint: Endpoint) -> None:
    endpoint.invoke({"messages": [{"role": "user", "content": "hi"}]})
    params = endpoint.last_params
    assert (params.max_new_tokens, params.do_sample, params.temperature) == (100, True, None)

    answer = endpoint.invoke(
        {"messages": [{"role": "user", "content": "hi"}], "temperature": 0, "max_tokens": 3}
    )
    assert endpoint.last_params == GenerateParams(max_new_tokens=3)
    assert answer["choices"][0]["finish_reason"] == "length"
    assert answer["choices"][0]["message"]["content"] == "The capital of"


def test_messages_api_stop_presence_penalty_and_content_chunks(endpoint: Endpoint) -> None:
    answer = endpoint.invoke(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Capital"},
                        {"type": "text", "text": " of France?"},
                    ],
                }
            ],
            "stop": ["Paris"],
            "presence_penalty": 0.5,
            "seed": 3,
        }
    )
    prompt, params = endpoint.backend.calls[-1]
    assert "<|user|> Capital of France? </s>" in prompt
    assert params.repetition_penalty == 2.5  # TGI passes presence_penalty + 2
    assert params.seed == 3
    assert answer["choices"][0]["finish_reason"] == "stop_sequence"
    assert answer["choices"][0]["message"]["content"] == "The capital of France is Paris"


def test_messages_api_validation_and_unsupported_options(endpoint: Endpoint) -> None:
    user = [{"role": "user", "content": "hi"}]
    assert validation(endpoint.error({"messages": user, "top_p": 1})) == (
        "`top_p` must be > 0.0 and < 1.0"
    )
    assert validation(endpoint.error({"messages": user, "max_tokens": 0})) == (
        "`max_new_tokens` must be strictly positive"
    )
    assert validation(endpoint.error({"messages": user, "max_tokens": 147})) == (
        "`inputs` tokens + `max_new_tokens` must be <= 150. Given: 4 `inputs` tokens and "
        "147 `max_new_tokens`"
    )
    # Streamed chat is tests/model_server/test_response_stream.py's; a generate request
    # cannot stream here.
    streaming = validation(endpoint.error({"inputs": "hi", "stream": True}))
    assert streaming.startswith("Streaming (`stream: true`) is not supported")
    assert validation(endpoint.error({"messages": user, "logprobs": True})).startswith(
        "`logprobs` is not supported"
    )


def test_chat_template_failure_is_tgis_template_error(endpoint: Endpoint) -> None:
    endpoint.backend.template_error = "Conversation roles must alternate user/assistant"
    body = json.loads(
        model_error(endpoint.error({"messages": [{"role": "user", "content": "hi"}]}), 422)
    )
    assert body == {
        "error": "Failed applying chat template to inputs: "
        "Conversation roles must alternate user/assistant",
        "error_type": "template_error",
    }


# ---------------------------------------------------------------------------
# Platform errors and backend failures
# ---------------------------------------------------------------------------
def test_unknown_endpoint_is_sagemakers_validation_error(endpoint: Endpoint) -> None:
    with pytest.raises(ClientError) as caught:
        endpoint.client.invoke_endpoint(
            EndpointName="no-such-endpoint", Body=b"{}", ContentType="application/json"
        )
    response = caught.value.response
    assert response["Error"] == {
        "Code": "ValidationError",
        "Message": "Endpoint no-such-endpoint of account 123456789012 not found.",
    }
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert isinstance(caught.value, endpoint.client.exceptions.ValidationError)
    assert endpoint.invocations == []


def test_backend_failure_is_a_424_generation_error(endpoint: Endpoint) -> None:
    endpoint.backend.fail_with = RuntimeError("CUDA out of memory")
    original = model_error(endpoint.error({"inputs": "hi"}), 424)
    assert json.loads(original) == {
        "error": "Request failed during generation: CUDA out of memory",
        "error_type": "generation",
    }
    assert any("generation failed" in line for line in endpoint.log)


@pytest.mark.parametrize(
    ("code", "status"),
    [("ModelNotReadyException", 429), ("ServiceUnavailable", 503), ("ThrottlingException", 400)],
)
def test_sagemaker_errors_from_the_backend_are_rendered_verbatim(
    endpoint: Endpoint, code: str, status: int
) -> None:
    endpoint.backend.fail_with = SageMakerError(code, status, "try again later")
    response = endpoint.error({"inputs": "hi"})
    assert response["Error"] == {"Code": code, "Message": "try again later"}
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status


def test_the_container_timeout_is_sagemakers_model_error_with_status_0(endpoint: Endpoint) -> None:
    endpoint.backend.fail_with = InvocationTimeout()
    original = model_error(endpoint.error({"inputs": "hi"}), 0)
    assert original == (
        "Your invocation timed out while waiting for a response from container primary. Review "
        "the latency metrics for each container in Amazon CloudWatch, resolve the issue, and "
        "try again."
    )


def test_access_denied_names_the_role_and_the_account_as_iam_does(endpoint: Endpoint) -> None:
    endpoint.backend.fail_with = access_denied(ENDPOINT, region=REGION, role_name="qa")
    response = endpoint.error({"inputs": "hi"})
    assert response["Error"] == {
        "Code": "AccessDeniedException",
        "Message": "User: arn:aws:sts::123456789012:assumed-role/qa/qa is not authorized to "
        f"perform: sagemaker:InvokeEndpoint on resource: arn:aws:sagemaker:{REGION}:"
        f"123456789012:endpoint/{ENDPOINT} because no identity-based policy allows the "
        "sagemaker:InvokeEndpoint action",
    }
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_sagemaker_error_rejects_a_non_error_status() -> None:
    with pytest.raises(ValueError, match="4xx or 5xx"):
        SageMakerError("Oops", 200, "fine")


# ---------------------------------------------------------------------------
# HTTP behaviour: keep-alive, chunked bodies, serialised generation, shutdown
# ---------------------------------------------------------------------------
def test_keep_alive_connection_serves_several_requests(endpoint: Endpoint) -> None:
    connection = http.client.HTTPConnection(endpoint.server.host, endpoint.server.port, timeout=10)
    path = f"/endpoints/{ENDPOINT}/invocations"
    sockets = []
    for question in ("one ?", "two ?", "three ?"):
        connection.request(
            "POST",
            path,
            body=json.dumps({"inputs": question}),
            headers={"Content-Type": "application/json"},
        )
        response = connection.getresponse()
        body = response.read()
        assert response.status == 200
        assert int(response.getheader("Content-Length")) == len(body)
        assert json.loads(body)[0]["generated_text"].startswith(question)
        sockets.append(connection.sock)
    assert sockets[0] is not None
    assert all(s is sockets[0] for s in sockets)
    connection.close()


def test_chunked_request_body_is_read(endpoint: Endpoint) -> None:
    connection = http.client.HTTPConnection(endpoint.server.host, endpoint.server.port, timeout=10)
    chunks = iter([b'{"inputs": ', b'"chunked ?"}'])
    connection.request(
        "POST",
        f"/endpoints/{ENDPOINT}/invocations",
        body=chunks,
        headers={"Content-Type": "application/json"},
        encode_chunked=True,
    )
    response = connection.getresponse()
    assert response.status == 200
    assert json.loads(response.read())[0]["generated_text"].startswith("chunked ?")
    connection.close()


def test_concurrent_requests_generate_one_at_a_time(endpoint: Endpoint) -> None:
    endpoint.backend.delay = 0.2
    results: list[Any] = []

    def call() -> None:
        results.append(endpoint.invoke({"inputs": "hi", "parameters": {}}))

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 3
    assert endpoint.backend.most_running == 1


def test_stop_closes_the_port_and_idle_connections() -> None:
    server = SageMakerTGIServer(WordBackend(), ENDPOINT, max_input_tokens=4, max_total_tokens=8)
    server.start()
    host, port = server.host, server.port
    idle = http.client.HTTPConnection(host, port, timeout=5)
    idle.request("GET", "/ping")
    assert idle.getresponse().read() == b""
    server.stop()
    # The kept-alive connection was shut down, and nothing listens any more.
    idle.request("GET", "/ping")
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        idle.getresponse()
    with pytest.raises(ConnectionRefusedError):
        http.client.HTTPConnection(host, port, timeout=5).request("GET", "/ping")


def test_limits_must_be_consistent() -> None:
    with pytest.raises(ValueError, match="must be < max_total_tokens"):
        SageMakerTGIServer(WordBackend(), ENDPOINT, max_input_tokens=8, max_total_tokens=8)


def test_each_request_logs_its_start_and_its_end_without_the_prompt(endpoint: Endpoint) -> None:
    endpoint.invoke({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3})
    endpoint.error({"inputs": "secret " * 45})
    assert len(endpoint.log) == 4
    started, ok, started_again, failed = endpoint.log
    number = started.split()[1]
    assert started.startswith(f"request {number} started: POST /endpoints/{ENDPOINT}/invocations ")
    assert "1 in flight, at most 8 admitted" in started
    assert ok.startswith(f"POST /endpoints/{ENDPOINT}/invocations 200 ")
    assert "chat: 4 prompt + 3 generated tokens, finish_reason=length" in ok
    assert ok.endswith(f"(request {number})")
    assert started_again.startswith(f"request {int(number) + 1} started: ")
    assert failed.startswith(f"POST /endpoints/{ENDPOINT}/invocations 424 ")
    assert "ModelError" in failed
    assert not any("secret" in line or "hi" in line.split() for line in endpoint.log)


def test_payloads_over_the_invoke_endpoint_limit_are_refused(endpoint: Endpoint) -> None:
    body = json.dumps({"inputs": "x" * (6 * 1024 * 1024)})
    response = endpoint.error(body)
    assert response["Error"]["Code"] == "ValidationError"
    assert response["Error"]["Message"].endswith("exceeds the 6291456-byte limit")
    assert endpoint.invocations == []
