import io
import json

import pytest
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage

from llm_app.errors import AppError, ErrorCode
from llm_app.model.endpoint import Endpoint
from llm_app.model.engine_errors import SystemRoleRefused, parse_prompt_too_long
from llm_app.model.messages_api import MessagesApiContentHandler
from llm_app.model.sagemaker_errors import translate_client_error


def client_error(code: str, message: str, **extra: object) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}, **extra}, "InvokeEndpoint")


def test_request_is_a_messages_api_body():
    body = MessagesApiContentHandler().transform_input(
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
    message = MessagesApiContentHandler().transform_output(
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
        MessagesApiContentHandler().transform_output(io.BytesIO(raw))
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


@pytest.mark.parametrize(
    ("message", "input_tokens", "input_limit"),
    [
        (
            "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 2048. "
            "Given: 2100 `inputs` tokens and 700 `max_new_tokens`",
            2100,
            1348,
        ),
        (
            "Input validation error: `inputs` must have less than 1348 tokens. Given: 1400",
            1400,
            1347,
        ),
        (
            "This model's maximum context length is 2048 tokens. However, you requested 2100 "
            "tokens (1400 in the messages, 700 in the completion). Please reduce the length of "
            "the messages or completion.",
            1400,
            1348,
        ),
        (
            "This model's maximum context length is 2048 tokens. However, you requested 700 "
            "output tokens and your prompt contains at least 1401 input tokens, for a total of "
            "at least 2101 tokens.",
            1401,
            1348,
        ),
        (
            "'max_tokens' or 'max_completion_tokens' is too large: 700. This model's maximum "
            "context length is 2048 tokens and your request has 1400 input tokens "
            "(700 > 2048 - 1400).",
            1400,
            1348,
        ),
        (
            "This model's maximum context length is 2048 tokens. However, your request has 2100 "
            "input tokens. Please reduce the length of the input messages.",
            2100,
            2048,
        ),
    ],
)
def test_too_long_answers_of_tgi_and_vllm_give_their_counts(message, input_tokens, input_limit):
    too_long = parse_prompt_too_long(message)
    assert too_long is not None
    assert (too_long.input_tokens, too_long.input_limit) == (input_tokens, input_limit)
    assert too_long.code is ErrorCode.CONTEXT_TOO_LONG
    assert too_long.status == 413


def test_the_container_timeout_is_a_model_timeout():
    error = client_error(
        "ModelError",
        'Received server error (0) from primary with message "Your invocation timed out while '
        'waiting for a response from container primary. ...". See https://us-east-1.console.'
        "aws.amazon.com/cloudwatch/home?region=us-east-1#logEventViewer:group=/aws/sagemaker/"
        "Endpoints/ep in account 123456789012 for more information.",
        OriginalStatusCode=0,
        OriginalMessage="Your invocation timed out while waiting for a response from container "
        "primary. Review the latency metrics for each container in Amazon CloudWatch, resolve "
        "the issue, and try again.",
        LogStreamArn="arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/ep",
    )
    translated = translate_client_error(error, "ep")
    assert translated.code is ErrorCode.MODEL_TIMEOUT
    assert "123456789012" not in translated.message


@pytest.mark.parametrize(
    ("status", "original", "refused"),
    [
        (
            422,
            '{"error":"Template error: System role not supported","error_type":"template_error"}',
            True,
        ),
        (
            400,
            '{"error":{"message":"System role not supported","type":"BadRequestError","code":400}}',
            True,
        ),
        (
            422,
            '{"error":"Input validation error: `top_p` must be > 0.0 and < 1.0",'
            '"error_type":"validation"}',
            False,
        ),
    ],
)
def test_a_template_refusing_the_system_role_is_recognised(status, original, refused):
    error = client_error("ModelError", "x", OriginalStatusCode=status, OriginalMessage=original)
    assert isinstance(translate_client_error(error, "ep"), SystemRoleRefused) is refused


# -- Streamed calls: one SSE line at a time (langchain-aws hands transform_output each line) --
def line(event: object) -> bytes:
    return b"data: " + json.dumps(event).encode()


@pytest.mark.parametrize("raw", [b"", b": keep-alive", b"event: message", b"data: [DONE]"])
def test_lines_without_a_chunk_carry_no_text(raw):
    chunk = MessagesApiContentHandler().transform_output(raw)
    assert chunk.content == ""
    assert chunk.usage_metadata is None


def test_a_token_line_is_its_delta():
    raw = line({"choices": [{"index": 0, "delta": {"content": " Paris"}, "finish_reason": None}]})
    chunk = MessagesApiContentHandler().transform_output(raw)
    assert chunk.content == " Paris"
    assert chunk.response_metadata == {}


def test_the_finish_chunk_keeps_its_reason_even_without_text_or_usage():
    """langchain-aws drops chunks with neither text nor usage: this one carries zero usage."""
    raw = line({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]})
    chunk = MessagesApiContentHandler().transform_output(raw)
    assert chunk.response_metadata == {"finish_reason": "length"}
    assert chunk.usage_metadata == {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}


def test_vllms_usage_chunk_has_no_choices():
    raw = line({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2}})
    chunk = MessagesApiContentHandler().transform_output(raw)
    assert chunk.usage_metadata == {"input_tokens": 9, "output_tokens": 2, "total_tokens": 11}


def test_an_in_stream_error_event_is_a_model_error():
    raw = line({"error": "Request failed during generation: CUDA OOM", "error_type": "generation"})
    with pytest.raises(AppError) as caught:
        MessagesApiContentHandler().transform_output(raw)
    assert caught.value.code is ErrorCode.MODEL_ERROR
    assert "CUDA OOM" in caught.value.message


@pytest.mark.parametrize("raw", [b"data: {not json", b"data: [1, 2]"])
def test_a_data_line_that_is_not_a_chunk_is_bad_model_output(raw):
    with pytest.raises(AppError) as caught:
        MessagesApiContentHandler().transform_output(raw)
    assert caught.value.code is ErrorCode.BAD_MODEL_OUTPUT


def test_a_mid_stream_model_stream_error_is_a_model_error_without_aws_words():
    """SageMaker's message is for the log: it may name the endpoint's log stream's ARN."""
    error = ClientError(
        {
            "Error": {
                "Code": "ModelStreamError",
                "Message": "the container broke; see arn:aws:logs:us-east-1:123456789012:x",
            }
        },
        "InvokeEndpointWithResponseStream",
    )
    translated = translate_client_error(error, "ep")
    assert translated.code is ErrorCode.MODEL_ERROR
    assert "streaming" in translated.message
    assert "arn:" not in translated.message
    assert "123456789012" not in translated.message


def test_an_in_stream_error_event_shows_no_arn_or_account():
    raw = line({"error": "failed at arn:aws:sagemaker:us-east-1:123456789012:endpoint/ep"})
    with pytest.raises(AppError) as caught:
        MessagesApiContentHandler().transform_output(raw)
    assert "arn:" not in caught.value.message
    assert "123456789012" not in caught.value.message


def test_a_stream_that_ends_before_the_model_finished_is_bad_model_output():
    """A model whose stream stops without a finish reason (LangChain's own fake chat model, as
    the unit under test is Endpoint's check): the answer is never passed off as complete."""
    model = GenericFakeChatModel(messages=iter([AIMessage("Paris is")]))
    endpoint = Endpoint(model, "ep", Logger(service="test"), streaming=True)
    generation = endpoint.generate([HumanMessage("?")], stream=True)
    with pytest.raises(AppError) as caught:
        list(generation)
    assert caught.value.code is ErrorCode.BAD_MODEL_OUTPUT


@pytest.mark.parametrize(
    ("event", "code"),
    [
        # TGI 3.x: 422 whatever the error (router/src/infer/mod.rs, into_openai_event).
        (
            {"error": {"message": "Model is overloaded", "http_status_code": 422}},
            "model_unavailable",
        ),
        (
            {
                "error": {
                    "message": "Input validation error: `inputs` must have less than 1348 "
                    "tokens. Given: 1400",
                    "http_status_code": 422,
                }
            },
            "context_too_long",
        ),
        # vLLM's ErrorResponse, wrapped (ErrorInfo) and flat (older releases).
        (
            {
                "error": {
                    "message": "boom",
                    "type": "InternalServerError",
                    "param": None,
                    "code": 500,
                }
            },
            "model_error",
        ),
        (
            {"object": "error", "message": "slow down", "type": "x", "code": 429},
            "model_unavailable",
        ),
    ],
)
def test_an_in_stream_error_event_maps_as_its_http_error_would(event, code):
    with pytest.raises(AppError) as caught:
        MessagesApiContentHandler().transform_output(line(event))
    assert caught.value.code.value == code
