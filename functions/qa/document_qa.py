"""Document question answering: the seed's "stuff" chain, with a budget on the context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.prompts import ChatPromptTemplate

from llm_app.arguments import bind_arguments, require_question
from llm_app.config import Settings
from llm_app.errors import AppError, ErrorCode
from llm_app.tokens import estimate_prompt_tokens

# The seed's example document, answered over when the caller sends none.
EXAMPLE_DOCUMENT = (
    "Peter and Elizabeth took a taxi to attend the night party in the city. While in the "
    "party, Elizabeth collapsed and was rushed to the hospital.\n"
    "Since she was diagnosed with a brain injury, the doctor told Peter to stay besides her "
    "until she gets well.\n"
    "Therefore, Peter stayed with her at the hospital for 3 days without leaving."
)

# The seed's prompt, sent as the user turn; the TGI server wraps it in the model's chat template.
QA_PROMPT = ChatPromptTemplate.from_messages(
    [
        (
            "human",
            "Use the following pieces of context to answer the question at the end.\n\n"
            "{context}\n\nQuestion: {question}\nAnswer:",
        )
    ]
)
# "Stuff" joins every document into one context, as LangChain's stuff chain does.
DOCUMENT_SEPARATOR = "\n\n"
MAX_DOCUMENTS = 100

ARGUMENT_NAMES = ("question", "documents")


@dataclass(frozen=True)
class QaRequest:
    question: str
    documents: tuple[str, ...]


def parse_qa_request(payload: Any, settings: Settings) -> QaRequest:
    """`["question"]`, `["question", ["doc", ...]]` or `{"question": ..., "documents": [...]}`."""
    arguments = bind_arguments(payload, ARGUMENT_NAMES)
    question = require_question(
        arguments["question"], field="question", max_chars=settings.max_question_chars
    )
    documents = arguments.get("documents")
    if documents is None:
        return QaRequest(question, (EXAMPLE_DOCUMENT,))
    if not isinstance(documents, list) or not all(isinstance(d, str) for d in documents):
        raise AppError(ErrorCode.INVALID_REQUEST, "'documents' must be an array of strings.")
    texts = tuple(d.strip() for d in documents if d.strip())
    if not texts:
        raise AppError(
            ErrorCode.INVALID_REQUEST,
            "'documents' holds no text; leave it out to ask about the example document.",
        )
    if len(texts) > MAX_DOCUMENTS:
        raise AppError(
            ErrorCode.REQUEST_TOO_LARGE,
            f"{len(texts)} documents sent; the limit is {MAX_DOCUMENTS}.",
        )
    return QaRequest(question, texts)


def build_qa_messages(request: QaRequest, settings: Settings) -> list[BaseMessage]:
    """The prompt for one question, refused with 413 when it would overflow the model's input."""
    messages = QA_PROMPT.format_messages(
        context=DOCUMENT_SEPARATOR.join(request.documents), question=request.question
    )
    needed = estimate_prompt_tokens(messages)
    if needed > settings.max_input_tokens:
        raise AppError(
            ErrorCode.CONTEXT_TOO_LONG,
            f"The question and documents need about {needed} tokens; the model accepts "
            f"{settings.max_input_tokens} input tokens (MAX_INPUT_TOKENS). Send fewer or "
            "shorter documents.",
        )
    return messages
