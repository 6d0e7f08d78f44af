import io
import json

import pytest
from botocore.exceptions import ClientError

from llm_app.errors import AppError, ErrorCode
from llm_app.model import TgiMessagesContentHandler
from llm_app.sagemaker_errors import translate_client_error


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


def test_unknown_errors_are_model_errors_with_their_code_and_not_their_message():
    message = "User: arn:aws:sts::123456789012:assumed-role/r/r is not authorized"
    for code in ("AccessDeniedException", "SomethingNew"):
        translated = translate_client_error(client_error(code, message), "ep")
        assert translated.code is ErrorCode.MODEL_ERROR
        assert code in translated.message
        assert "arn:" not in translated.message
        assert "123456789012" not in translated.message
