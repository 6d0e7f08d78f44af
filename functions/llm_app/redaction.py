"""What the logs may say about a request when log_prompts is off: no credential, no user text.

A session id is the only key to a conversation on a public URL, and a caller-chosen name on an
AWS_IAM URL may itself say what the conversation is about, so logs carry a tag instead. Errors
and exceptions go to the log without the text they may quote (the question, a document, the
model's reply, a container's error sentence).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import traceback

from llm_app.errors import AppError

LANGCHAIN_SAGEMAKER_LOGGER = "langchain_aws.chat_models.sagemaker_endpoint"
# pypdf's modules log on loggers under this one (pypdf._utils.logger_warning), quoting a
# malformed PDF's bytes: "invalid pdf header: b'Peter'" is the start of the user's document.
PYPDF_LOGGER = "pypdf"
TAG_HEX_CHARS = 16  # 64 bits: enough to tell a function's sessions apart in its logs


def session_tag(owner_key: str, session_id: str) -> str:
    """A short tag that correlates one session's log lines and cannot be turned back into its id.

    HMAC keyed with the session's owner (the signed caller's unique id, or "public"), which the
    logs never show. An id the function issued is 256 random bits: its tag cannot be reversed
    at all. A caller-chosen name could be guessed and checked only by someone who also knows
    the owner's unique id, and a name alone still reaches nothing: the owner must sign.
    There is no per-deployment secret to key it with instead (docs/security.md).
    """
    digest = hmac.new(owner_key.encode(), session_id.encode(), hashlib.sha256).hexdigest()
    return digest[:TAG_HEX_CHARS]


def loggable_message(error: AppError, *, log_prompts: bool) -> str:
    """The error's message, or its version without quoted outside text unless log_prompts."""
    return error.message if log_prompts else error.log_message


def exception_summary(error: BaseException, *, log_prompts: bool) -> str:
    """The traceback of an unexpected exception; its messages (any text) only with log_prompts.

    Without log_prompts: each exception's type and where it was raised (file, line, code),
    the cause chain included, but none of their messages, which may quote user data.
    """
    if log_prompts:
        return "".join(traceback.format_exception(error))
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frames = "".join(traceback.format_tb(current.__traceback__))
        parts.append(f"{frames}{type(current).__module__}.{type(current).__qualname__}\n")
        if current.__cause__ is not None:
            current = current.__cause__
        else:
            current = None if current.__suppress_context__ else current.__context__
    return "\nwhich happened while handling:\n".join(parts)


class _DropLangChainSageMakerRecords(logging.Filter):
    """langchain-aws logs the endpoint's errors (quoting the container's sentence, so maybe the
    request), a failed stream's traceback and, at DEBUG, the messages sent and received: on
    its module's logger (llm_app.model.endpoint raises that one to CRITICAL) and, for a
    buffered call's error, on the root logger (`logging.error`), which only this filter keeps
    quiet."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.module == "sagemaker_endpoint" and "langchain_aws" in record.pathname)


def keep_library_logs_free_of_user_data(*, log_prompts: bool) -> None:
    """Unless log_prompts, drop langchain-aws's SageMaker log records and pypdf's warnings
    (once per container).

    Called where the chat model is built (llm_app.model.endpoint), so both front doors have it.
    Nothing is lost: Endpoint maps the same errors to AppErrors, which llm_app.http.edge logs
    safely, streamed or not; a PDF pypdf cannot read is the caller's `document_unreadable`.
    """
    if log_prompts:
        return
    # pypdf's loggers set no level of their own: they inherit this one, above every record's.
    logging.getLogger(PYPDF_LOGGER).setLevel(logging.CRITICAL + 1)
    for logger in (logging.getLogger(), logging.getLogger(LANGCHAIN_SAGEMAKER_LOGGER)):
        if not any(isinstance(f, _DropLangChainSageMakerRecords) for f in logger.filters):
            logger.addFilter(_DropLangChainSageMakerRecords())
