"""Document question answering: the request, its documents, and the chain that answers it.

`answer_question` is the domain call both front doors make: it returns an `Answer` whose
items come from the chain's thread (llm_app.model.answer, qa.guard.stream_before_deadline):
`Progress` after each map or refine call, then the final call's text, streamed when the
caller asked for a stream, then `Done`: `chain_type`, `chunks`, the final call's
`finish_reason` and the `usage` summed over every call. The chain and its final call go
through the budget policy (llm_app.model.budget) as one attempt.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from langchain_core.messages import BaseMessage

from llm_app.arguments import bind_arguments, require_flag, require_question
from llm_app.config import Settings
from llm_app.errors import AppError, ErrorCode
from llm_app.model.answer import Answer, Done, Facts, Item, ModelItem, relay
from llm_app.model.budget import within_budget
from llm_app.model.tokens import estimate_prompt_tokens
from llm_app.runtime.metrics import QA_CHUNKS
from qa.chains import (
    MAP_PROMPT,
    MIN_CHUNK_TOKENS,
    REFINE_PROMPT,
    ChainType,
    map_reduce,
    refine,
    room_for_text,
    split_documents,
    stuff_messages,
)
from qa.documents import DocumentStore, is_s3_uri, parse_s3_uri
from qa.guard import CallGuard, CallTally, Deadline, Generate, stream_before_deadline

# The seed's example document, answered over when the caller sends none.
EXAMPLE_DOCUMENT = (
    "Peter and Elizabeth took a taxi to attend the night party in the city. While in the "
    "party, Elizabeth collapsed and was rushed to the hospital.\n"
    "Since she was diagnosed with a brain injury, the doctor told Peter to stay besides her "
    "until she gets well.\n"
    "Therefore, Peter stayed with her at the hospital for 3 days without leaving."
)

MAX_DOCUMENTS = 100

ARGUMENT_NAMES = ("question", "documents")
# chain_type and stream are asked for by name only: the seed's array form has two positions.
FIELD_NAMES = (*ARGUMENT_NAMES, "chain_type", "stream")


@dataclass(frozen=True)
class QaRequest:
    question: str
    # Document texts and `s3://bucket/key` URIs, in the caller's order.
    documents: tuple[str, ...]
    # None: stuff when everything fits one prompt, map_reduce otherwise.
    chain_type: ChainType | None = None
    # `"stream": true` in the object form: answer as Server-Sent Events.
    stream: bool = False


def parse_qa_request(payload: Any, settings: Settings) -> QaRequest:
    """`["question"]`, `["question", ["doc", ...]]` or `{"question": ..., "documents": [...],
    "chain_type": ...}`; a document may be an `s3://bucket/key` URI."""
    names = ARGUMENT_NAMES if isinstance(payload, list) else FIELD_NAMES
    arguments = bind_arguments(payload, names)
    question = require_question(
        arguments["question"], field="question", max_chars=settings.max_question_chars
    )
    chain_type = _parse_chain_type(arguments.get("chain_type"))
    stream = require_flag(arguments.get("stream", False), field="stream")
    documents = arguments.get("documents")
    if documents is None:
        return QaRequest(question, (EXAMPLE_DOCUMENT,), chain_type, stream)
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
    for text in texts:
        if is_s3_uri(text):
            parse_s3_uri(text)  # a malformed URI is refused before any document is read
    return QaRequest(question, texts, chain_type, stream)


def _parse_chain_type(value: Any) -> ChainType | None:
    if value is None:
        return None
    try:
        return ChainType(value)
    except ValueError:
        choices = ", ".join(repr(c.value) for c in ChainType)
        raise AppError(
            ErrorCode.INVALID_REQUEST, f"'chain_type' must be one of {choices}; got {value!r}."
        ) from None


def load_documents(request: QaRequest, store: DocumentStore, settings: Settings) -> tuple[str, ...]:
    """The documents' texts, S3 objects read; their total is held to QA_MAX_DOCUMENT_BYTES."""
    limit = settings.qa_max_document_bytes
    texts: list[str] = []
    used = 0
    for entry in request.documents:
        if is_s3_uri(entry):
            text = store.read_text(parse_s3_uri(entry), max_bytes=limit - used)
        else:
            text = entry
        used += len(text.encode("utf-8"))
        if used > limit:
            raise AppError(
                ErrorCode.REQUEST_TOO_LARGE,
                f"The documents hold at least {used} bytes of text; the limit is {limit} "
                "(QA_MAX_DOCUMENT_BYTES).",
            )
        texts.append(text)
    return tuple(texts)


@dataclass(frozen=True)
class FinalCall:
    """What a chain leaves for its last model call: the prompt whose answer is the answer."""

    chain_type: ChainType
    chunks: int
    messages: list[BaseMessage]


def answer_question(
    request: QaRequest,
    load: Callable[[QaRequest], tuple[str, ...]],
    generate: Generate,
    deadline: Deadline,
    settings: Settings,
    *,
    stream: bool,
) -> Answer:
    """Answer over the request's documents (see the module docstring); `load` reads them."""
    tally = CallTally(deadline)

    def produce() -> Iterator[Item]:
        documents = load(request)

        def attempt(budget: int) -> tuple[FinalCall, Iterator[ModelItem]]:
            guard = CallGuard(generate, tally)
            smaller = replace(settings, max_input_tokens=budget)
            final = prepare_chain(request.question, documents, request.chain_type, guard, smaller)
            return final, guard.final(final.messages, stream=stream)

        final, call = within_budget(attempt, settings.max_input_tokens)
        _text, finish = yield from relay(call)
        chain = {"chain_type": final.chain_type.value, "chunks": final.chunks}
        yield Done(
            finish.finish_reason,
            tally.usage + finish.usage,
            chain,
            Facts(log={**chain, "model_calls": tally.calls}, metrics={QA_CHUNKS: final.chunks}),
        )

    return Answer(
        stream_before_deadline(produce, tally),
        streamed=stream,
        facts=Facts(log={"documents": len(request.documents)}),
        question=request.question,
    )


def prepare_chain(
    question: str,
    documents: tuple[str, ...],
    chain_type: ChainType | None,
    guard: CallGuard,
    settings: Settings,
) -> FinalCall:
    """Pick the chain (stuff when it fits, unless the caller chose), split, and run all its
    calls but the last."""
    budget = settings.max_input_tokens
    if chain_type is None:
        messages = stuff_messages(question, documents)
        if estimate_prompt_tokens(messages) <= budget:
            return FinalCall(ChainType.STUFF, len(documents), messages)
        chain_type = ChainType.MAP_REDUCE
    if chain_type is ChainType.STUFF:
        messages = build_qa_messages(question, documents, settings)
        return FinalCall(chain_type, len(documents), messages)
    if chain_type is ChainType.MAP_REDUCE:
        chunk_tokens = room_for_text(MAP_PROMPT, budget, question=question)
    else:
        # Half for the chunk, half for the answer so far.
        chunk_tokens = room_for_text(REFINE_PROMPT, budget, question=question) // 2
    if chunk_tokens < MIN_CHUNK_TOKENS:
        raise AppError(
            ErrorCode.CONTEXT_TOO_LONG,
            f"The question leaves about {max(chunk_tokens, 0)} of the model's "
            f"{budget} input tokens (MAX_INPUT_TOKENS) for document text; ask a shorter "
            "question.",
        )
    chunks = split_documents(documents, chunk_tokens)
    if len(chunks) > settings.qa_max_chunks:
        raise AppError(
            ErrorCode.REQUEST_TOO_LARGE,
            f"The documents split into {len(chunks)} chunks of up to about {chunk_tokens} "
            f"tokens; the limit is {settings.qa_max_chunks} (QA_MAX_CHUNKS), one model call "
            "each. Send a shorter document.",
        )
    if chain_type is ChainType.MAP_REDUCE:
        messages = map_reduce(
            question,
            chunks,
            guard,
            max_input_tokens=budget,
            concurrency=settings.qa_map_concurrency,
        )
    else:
        messages = refine(question, chunks, guard, answer_room=chunk_tokens)
    return FinalCall(chain_type, len(chunks), messages)


def build_qa_messages(
    question: str, documents: tuple[str, ...], settings: Settings
) -> list[BaseMessage]:
    """The stuff prompt, refused with 413 when it would overflow the model's input."""
    messages = stuff_messages(question, documents)
    needed = estimate_prompt_tokens(messages)
    if needed > settings.max_input_tokens:
        raise AppError(
            ErrorCode.CONTEXT_TOO_LONG,
            f"The question and documents need about {needed} tokens; the model accepts "
            f"{settings.max_input_tokens} input tokens (MAX_INPUT_TOKENS). Send fewer or "
            "shorter documents, or ask for chain_type map_reduce or refine.",
        )
    return messages
