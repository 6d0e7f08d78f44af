"""The engine's (TGI's or vLLM's) refusals and failures, as errors a caller may see: one mapping
wherever they arrive.

An engine reports an error in one of two places:
- as an HTTP error, before any stream: SageMaker relays it as a ``ModelError`` whose
  ``OriginalStatusCode`` and ``OriginalMessage`` carry the container's status and body
  (llm_app.model.sagemaker_errors);
- inside a 200 stream, as an error event then ``data: [DONE]``. TGI 3.x validates a streamed
  chat request inside its stream (router/src/infer/mod.rs, ``InferError::into_openai_event``:
  ``{"error": {"message": "...", "http_status_code": 422}}``, 422 whatever the error, so
  "Model is overloaded" too); vLLM's serving_chat answers a failure during generation with
  ``{"error": {"message", "type", "param", "code": <status>}}``.

`engine_error(status, body)` maps both the same way: a prompt over the context is
`PromptTooLong` (413 context_too_long, after the budget policy's one smaller retry), a chat
template without a system role `SystemRoleRefused` (the system prompt is folded and the call
tried again), an overloaded engine 503 with retry-after, anything else 502 model_error.
"""

from __future__ import annotations

import json
import re

from llm_app.errors import AppError, ErrorCode

# TGI (router/src/validation.rs): "`inputs` tokens + `max_new_tokens` must be <= 2048.
# Given: 2100 `inputs` tokens and 700 `max_new_tokens`", and "`inputs` must have less than
# 1348 tokens. Given: 1400".
_TGI_TOTAL = re.compile(
    r"`inputs` tokens \+ `max_new_tokens` must be <= (?P<limit>\d+)\. "
    r"Given: (?P<inputs>\d+) `inputs` tokens and (?P<new>\d+) `max_new_tokens`"
)
_TGI_INPUT = re.compile(
    r"`inputs` must have less than (?P<limit>\d+) tokens\. Given: (?P<inputs>\d+)"
)
# vLLM (its OpenAI server's length check), whose wording changed across releases:
# "This model's maximum context length is 2048 tokens. However, you requested 2100 tokens
# (1400 in the messages, 700 in the completion)." / "... However, you requested 700 output
# tokens and your prompt contains at least 1401 input tokens, ..." / "... However, your
# request has 2100 input tokens." / "'max_tokens' or 'max_completion_tokens' is too large:
# 700. This model's maximum context length is 2048 tokens and your request has 1400 input
# tokens (700 > 2048 - 1400)."
_VLLM_LIMIT = re.compile(r"maximum context length is (?P<limit>\d+) tokens")
_VLLM_COUNTS = (
    re.compile(r"\((?P<inputs>\d+) in the messages, (?P<new>\d+) in the completion\)"),
    re.compile(
        r"requested (?P<new>\d+) output tokens and your prompt contains at least "
        r"(?P<inputs>\d+) input tokens"
    ),
    re.compile(r"too large: (?P<new>\d+)\..*your request has (?P<inputs>\d+) input tokens"),
    re.compile(r"your request has (?P<inputs>\d+) input tokens"),
)
# TGI's InferError::Overloaded (router/src/infer/mod.rs): its queue is full.
_OVERLOADED = "model is overloaded"
OVERLOADED_RETRY_AFTER_SECONDS = 5
# The part of the endpoint's measured ratio a retried prompt is budgeted at: the text that
# goes is not exactly as dense as the text that stays.
SHRINK_MARGIN = 0.9
# What must never reach a caller, should a container or AWS sentence carry it.
_ARN = re.compile(r"arn:aws[a-z-]*:[^\s\"',]*")
_ACCOUNT_ID = re.compile(r"(?<!\d)\d{12}(?!\d)")


class PromptTooLong(AppError):
    """The engine counted more input tokens than it accepts: 413, with its real figures.

    ``input_tokens`` is the engine's count of the prompt it refused, ``input_limit`` the most
    it would have taken with the same ``max_new_tokens``, and ``sent_estimate`` our estimate
    of that prompt (set by the call that sent it, llm_app.model.endpoint): together, what a
    smaller retry may budget (`shrunk_budget`).
    """

    def __init__(self, input_tokens: int, input_limit: int, sent_estimate: int | None = None):
        super().__init__(
            ErrorCode.CONTEXT_TOO_LONG,
            f"The prompt is {input_tokens} tokens by the model's own count; it accepts "
            f"{input_limit} input tokens. Send fewer or shorter documents, a shorter "
            "question, or start a new chat session.",
        )
        self.input_tokens = input_tokens
        self.input_limit = input_limit
        self.sent_estimate = sent_estimate

    def sent(self, estimate: int) -> PromptTooLong:
        """The same refusal, knowing our estimate of the prompt it refused."""
        return PromptTooLong(self.input_tokens, self.input_limit, estimate)

    def shrunk_budget(self) -> int:
        """A budget, in the estimate's units, that the engine's own ratio of allowed to
        counted tokens says would fit, less a margin (0 when the estimate is unknown)."""
        estimate = self.sent_estimate or 0
        return int(estimate * self.input_limit / self.input_tokens * SHRINK_MARGIN)


class SystemRoleRefused(AppError):
    """The model's chat template has no system role (Gemma, Mistral-Instruct v0.1/v0.2)."""

    def __init__(self, container_message: str) -> None:
        super().__init__(
            ErrorCode.MODEL_ERROR,
            f"The model's chat template refused the system prompt: {container_message}",
            log_message="The model's chat template refused the system prompt.",
        )


def engine_error(status: object, body: object) -> AppError:
    """The AppError for an engine's error: its HTTP status (TGI's in-stream events say 422
    whatever the error) and its body (JSON, or plain text)."""
    message = safe(container_message(body) or "")
    too_long = parse_prompt_too_long(message)
    if too_long is not None:
        return too_long
    if status in (400, 422) and refuses_system_role(body):
        return SystemRoleRefused(message)
    if status == 429 or message.lower().startswith(_OVERLOADED):
        return AppError(
            ErrorCode.MODEL_UNAVAILABLE,
            f"The model is overloaded: {message}",
            retry_after=OVERLOADED_RETRY_AFTER_SECONDS,
            log_message="The model is overloaded.",
        )
    return AppError(
        ErrorCode.MODEL_ERROR,
        f"The model rejected the request (HTTP {status}): {message}",
        # The container's sentence may quote the request: the caller sees it, the log does not.
        log_message=f"The model rejected the request (HTTP {status}).",
    )


def stream_error_event(event: dict[str, object]) -> AppError | None:
    """The AppError of an in-stream error event (TGI's or vLLM's shape), None if it is not one.

    vLLM before its ErrorInfo wrapper sent the ErrorResponse flat: `{"object": "error",
    "message", "type", "param", "code"}` (vllm/entrypoints/openai/protocol.py)."""
    if event.get("object") == "error":
        event = {"error": {key: event.get(key) for key in ("message", "type", "code")}}
    error = event.get("error")
    if error is None:
        return None
    status = error.get("http_status_code", error.get("code")) if isinstance(error, dict) else None
    return engine_error(status, json.dumps(event))


def parse_prompt_too_long(message: str) -> PromptTooLong | None:
    """TGI's 422 or vLLM's 400 for a prompt over the context, with the counts they give."""
    if match := _TGI_TOTAL.search(message):
        inputs, limit, new = int(match["inputs"]), int(match["limit"]), int(match["new"])
        return PromptTooLong(inputs, limit - new)
    if match := _TGI_INPUT.search(message):
        return PromptTooLong(int(match["inputs"]), int(match["limit"]) - 1)
    if limit_match := _VLLM_LIMIT.search(message):
        limit = int(limit_match["limit"])
        for pattern in _VLLM_COUNTS:
            if match := pattern.search(message):
                new = int(match["new"]) if "new" in match.groupdict() else 0
                return PromptTooLong(int(match["inputs"]), limit - new)
    return None


def refuses_system_role(body: object) -> bool:
    """The container's chat template refused a system message.

    TGI answers 422 ``{"error_type": "template_error"}`` (in a stream, "Template error: ...");
    vLLM a 400 whose message is the template's own ("System role not supported",
    "Conversation roles must alternate ...").
    """
    if not isinstance(body, str):
        return False
    lowered = body.lower()
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and parsed.get("error_type") == "template_error":
        return True
    return "system role" in lowered or ("roles must alternate" in lowered)


def container_message(body: object) -> str | None:
    """The container's own sentence from its error body.

    TGI answers {"error": "...", "error_type": "..."} (in a stream {"error": {"message"}});
    vLLM's OpenAI server answers {"error": {"message": "...", "type": "...", "code": 400}}.
    """
    if not isinstance(body, str) or not body:
        return None
    try:
        parsed = json.loads(body)
    except ValueError:
        return body
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    return error if isinstance(error, str) else body


def safe(text: str) -> str:
    """`text` without ARNs or account ids."""
    return _ACCOUNT_ID.sub("<account>", _ARN.sub("<arn>", text))
