import io
import json

import pytest
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage

from llm_app.errors import AppError, ErrorCode
from llm_app.model import Endpoint, TgiMessagesContentHandler, translate_client_error


def client_error(code: str, message: str, **extra: object) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}, **extra}, "InvokeEndpoint")


def test_request_is_a_messages_api_body():
    body = TgiMessagesContentHandler().transform_input(
        [{"role": "user", "content": "hi"}], {"max_tokens": 5, "temperature": 0.5}
    )
    assert json.loads(body) == {
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 5,
        "temperature": 0.5,
        "stream": False,
    }


def test_completion_becomes_a_message_with_usage():
    completion = {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Paris."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 30, "completion_tokens": 3, "total_tokens": 33},
    }
    message = TgiMessagesContentHandler().transform_output(
        io.BytesIO(json.dumps(completion).encode())
    )
    assert message.content == "Paris."
    assert message.usage_metadata == {"input_tokens": 30, "output_tokens": 3, "total_tokens": 33}
    assert message.response_metadata["finish_reason"] == "stop"


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[]",
        b'{"choices": []}',
        b'[{"generated_text": "x"}]',
        b'{"choices": [{"message": {"content": 1}}]}',
    ],
)
def test_unreadable_output_is_bad_model_output(raw):
    with pytest.raises(AppError) as caught:
        TgiMessagesContentHandler().transform_output(io.BytesIO(raw))
    assert caught.value.code is ErrorCode.BAD_MODEL_OUTPUT


def test_model_error_carries_the_containers_sentence():
    error = client_error(
        "ModelError",
        "Received client error (422) from primary with message ...",
        OriginalStatusCode=422,
        OriginalMessage=json.dumps(
            {"error": "Input validation error: too long", "error_type": "validation"}
        ),
    )
    translated = translate_client_error(error, "ep")
    assert translated.code is ErrorCode.MODEL_ERROR
    assert (
        translated.message
        == "The model rejected the request (HTTP 422): Input validation error: too long"
    )


def test_tgi_overload_is_transient():
    error = client_error(
        "ModelError",
        "x",
        OriginalStatusCode=429,
        OriginalMessage='{"error": "Model is overloaded"}',
    )
    translated = translate_client_error(error, "ep")
    assert (translated.code, translated.retry_after) == (ErrorCode.MODEL_UNAVAILABLE, 5)


def test_missing_endpoint_names_it():
    error = client_error("ValidationError", "Endpoint ep of account 123456789012 not found.")
    translated = translate_client_error(error, "ep")
    assert translated.code is ErrorCode.ENDPOINT_NOT_FOUND
    assert "'ep'" in translated.message


def test_unknown_errors_are_model_errors_with_their_code():
    translated = translate_client_error(client_error("AccessDeniedException", "no"), "ep")
    assert translated.code is ErrorCode.MODEL_ERROR
    assert "AccessDeniedException" in translated.message


# -- Streamed calls: one SSE line at a time (langchain-aws hands transform_output each line) --
def line(event: object) -> bytes:
    return b"data: " + json.dumps(event).encode()


@pytest.mark.parametrize("raw", [b"", b": keep-alive", b"event: message", b"data: [DONE]"])
def test_lines_without_a_chunk_carry_no_text(raw):
    chunk = TgiMessagesContentHandler().transform_output(raw)
    assert chunk.content == ""
    assert chunk.usage_metadata is None


def test_a_token_line_is_its_delta():
    raw = line({"choices": [{"index": 0, "delta": {"content": " Paris"}, "finish_reason": None}]})
    chunk = TgiMessagesContentHandler().transform_output(raw)
    assert chunk.content == " Paris"
    assert chunk.response_metadata == {}


def test_the_finish_chunk_keeps_its_reason_even_without_text_or_usage():
    """langchain-aws drops chunks with neither text nor usage: this one carries zero usage."""
    raw = line({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]})
    chunk = TgiMessagesContentHandler().transform_output(raw)
    assert chunk.response_metadata == {"finish_reason": "length"}
    assert chunk.usage_metadata == {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}


def test_vllms_usage_chunk_has_no_choices():
    raw = line({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2}})
    chunk = TgiMessagesContentHandler().transform_output(raw)
    assert chunk.usage_metadata == {"input_tokens": 9, "output_tokens": 2, "total_tokens": 11}


def test_an_in_stream_error_event_is_a_model_error():
    raw = line({"error": "Request failed during generation: CUDA OOM", "error_type": "generation"})
    with pytest.raises(AppError) as caught:
        TgiMessagesContentHandler().transform_output(raw)
    assert caught.value.code is ErrorCode.MODEL_ERROR
    assert "CUDA OOM" in caught.value.message


@pytest.mark.parametrize("raw", [b"data: {not json", b"data: [1, 2]"])
def test_a_data_line_that_is_not_a_chunk_is_bad_model_output(raw):
    with pytest.raises(AppError) as caught:
        TgiMessagesContentHandler().transform_output(raw)
    assert caught.value.code is ErrorCode.BAD_MODEL_OUTPUT


def test_a_mid_stream_model_stream_error_is_a_model_error():
    error = ClientError(
        {"Error": {"Code": "ModelStreamError", "Message": "the container broke"}},
        "InvokeEndpointWithResponseStream",
    )
    translated = translate_client_error(error, "ep")
    assert translated.code is ErrorCode.MODEL_ERROR
    assert "the container broke" in translated.message


def test_a_stream_that_ends_before_the_model_finished_is_bad_model_output():
    """A model whose stream stops without a finish reason (LangChain's own fake chat model, as
    the unit under test is Endpoint's check): the answer is never passed off as complete."""
    model = GenericFakeChatModel(messages=iter([AIMessage("Paris is")]))
    endpoint = Endpoint(model, "ep", Logger(service="test"), streaming=True)
    generation = endpoint.generate([HumanMessage("?")], stream=True)
    with pytest.raises(AppError) as caught:
        list(generation)
    assert caught.value.code is ErrorCode.BAD_MODEL_OUTPUT
