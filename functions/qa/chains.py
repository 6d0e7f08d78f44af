"""The seed's `loadQAChain` chain types over the TGI endpoint: stuff, map_reduce and refine.

- stuff: every document in one prompt (the seed's chain).
- map_reduce: each chunk answered on its own, concurrently (at most QA_MAP_CONCURRENCY calls in
  flight), then the partial answers combined, in as many rounds as it takes for them to fit
  one prompt.
- refine: the chunks walked in order, each call improving the answer so far.

Every model call goes through a `CallGuard`: it refuses to start a call once the deadline has
passed or another call failed, so a failed or late request stops spending endpoint time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import dataclass
from enum import StrEnum

from langchain_core.messages import BaseMessage
from langchain_core.prompt_values import PromptValue
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langchain_text_splitters import RecursiveCharacterTextSplitter

from llm_app.errors import AppError, ErrorCode
from llm_app.sagemaker_errors import PromptTooLong
from llm_app.tokens import estimate_prompt_tokens, estimate_tokens, truncate_to_tokens

Ask = Callable[[Sequence[BaseMessage]], str]


class ChainType(StrEnum):
    STUFF = "stuff"
    MAP_REDUCE = "map_reduce"
    REFINE = "refine"


def _human(template: str) -> ChatPromptTemplate:
    return ChatPromptTemplate.from_messages([("human", template)])


# The seed's prompt; also the first step of refine, as in LangChain's refine chain.
QA_PROMPT = _human(
    "Use the following pieces of context to answer the question at the end.\n\n"
    "{context}\n\nQuestion: {question}\nAnswer:"
)
MAP_PROMPT = _human(
    "Use the following part of a long document to see whether any of its text helps answer "
    "the question. Quote the relevant text, or say that it holds nothing relevant.\n\n"
    "{context}\n\nQuestion: {question}\nRelevant text, if any:"
)
COMBINE_PROMPT = _human(
    "Below are notes taken from the parts of a long document, and a question. Use them to "
    "write the final answer; if they do not hold it, say that you don't know.\n\n"
    "{summaries}\n\nQuestion: {question}\nAnswer:"
)
REFINE_PROMPT = _human(
    "The question is: {question}\nThe answer so far is: {existing_answer}\n"
    "Here is more of the document:\n\n{context}\n\n"
    "Improve the answer with this text if it helps; otherwise repeat the answer so far.\n"
    "Answer:"
)
# "Stuff" joins every document into one context, as LangChain's stuff chain does.
DOCUMENT_SEPARATOR = "\n\n"
# Partial answers in a combine prompt.
SUMMARY_SEPARATOR = "\n\n---\n\n"
# Below this many tokens per chunk the question leaves too little room to read a document.
MIN_CHUNK_TOKENS = 64
# Overlap between neighbouring chunks, as a fraction of a chunk: a fact cut by a chunk
# boundary still appears whole in one of them.
CHUNK_OVERLAP_FRACTION = 0.1


# ---------------------------------------------------------------------------------------------
# The deadline and the guard every model call passes
# ---------------------------------------------------------------------------------------------
class Deadline:
    """When the function must have answered: the Lambda deadline minus a reserve."""

    def __init__(self, seconds_left: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._end = clock() + seconds_left

    @classmethod
    def from_remaining_ms(cls, remaining_ms: int, reserve_seconds: float) -> Deadline:
        return cls(remaining_ms / 1000 - reserve_seconds)

    def seconds_left(self) -> float:
        return self._end - self._clock()


class CallGuard:
    """Counts model calls and stops new ones after the deadline or the first failure."""

    def __init__(self, ask: Ask, deadline: Deadline) -> None:
        self._ask = ask
        self.deadline = deadline
        self._lock = threading.Lock()
        self._stopped: AppError | None = None
        self.calls = 0
        self._longest_call = 0.0

    def stop(self, error: AppError) -> None:
        with self._lock:
            if self._stopped is None:
                self._stopped = error

    def resume_after(self, error: PromptTooLong) -> None:
        """Allow calls again after the endpoint refused a prompt as too long (to retry smaller)."""
        with self._lock:
            if isinstance(self._stopped, PromptTooLong):
                self._stopped = None

    def __call__(self, prompt: PromptValue) -> str:
        with self._lock:
            if self._stopped is not None:
                raise self._stopped
            left = self.deadline.seconds_left()
            # A call no faster than the slowest so far would end after the deadline.
            if left <= 0 or left < self._longest_call:
                self._stopped = deadline_error(self.calls, left)
                raise self._stopped
            self.calls += 1
        started = time.monotonic()
        messages = prompt.to_messages()
        try:
            return self._ask(messages)
        except PromptTooLong as error:
            error.sent_estimate = estimate_prompt_tokens(messages)
            self.stop(error)
            raise
        except AppError as error:
            self.stop(error)
            raise
        finally:
            with self._lock:
                self._longest_call = max(self._longest_call, time.monotonic() - started)


def deadline_error(calls_made: int, seconds_left: float) -> AppError:
    return AppError(
        ErrorCode.DEADLINE_EXCEEDED,
        f"The documents could not be answered before the function's time limit "
        f"({calls_made} model calls made, {max(seconds_left, 0):.1f} s left); send a shorter "
        "document, or raise function_timeout.",
    )


def run_before_deadline[T](work: Callable[[], T], guard: CallGuard) -> T:
    """Run `work`, answering 504 when the deadline comes first, before Lambda kills us.

    The work runs on a thread of its own so this thread can stop waiting; calls already in
    flight finish in the background, and the guard starts no new one.
    """
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qa-chain")
    future = executor.submit(work)
    executor.shutdown(wait=False)
    try:
        return future.result(timeout=max(guard.deadline.seconds_left(), 0))
    except FuturesTimeout:
        error = deadline_error(guard.calls, guard.deadline.seconds_left())
        guard.stop(error)
        raise error from None


# ---------------------------------------------------------------------------------------------
# Chains
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChainResult:
    answer: str
    chain_type: ChainType
    chunks: int


def stuff_messages(question: str, documents: Sequence[str]) -> list[BaseMessage]:
    return QA_PROMPT.format_messages(context=DOCUMENT_SEPARATOR.join(documents), question=question)


def room_for_text(prompt: ChatPromptTemplate, max_input_tokens: int, **variables: str) -> int:
    """Tokens left for document text once the prompt's fixed parts are counted."""
    empty = {name: "" for name in prompt.input_variables}
    return max_input_tokens - estimate_prompt_tokens(prompt.format_messages(**empty | variables))


def split_documents(documents: Sequence[str], chunk_tokens: int) -> list[str]:
    """Chunks of at most `chunk_tokens` (our estimate), split at paragraphs, lines, words."""
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=chunk_tokens,
        chunk_overlap=int(chunk_tokens * CHUNK_OVERLAP_FRACTION),
        length_function=estimate_tokens,
    )
    return [chunk for document in documents for chunk in splitter.split_text(document)]


def _model_step(guard: CallGuard) -> Runnable[PromptValue, str]:
    return RunnableLambda(guard, name="tgi_endpoint")


def map_reduce(
    question: str,
    chunks: Sequence[str],
    guard: CallGuard,
    *,
    max_input_tokens: int,
    concurrency: int,
) -> str:
    config = RunnableConfig(max_concurrency=concurrency)
    map_chain = MAP_PROMPT | _model_step(guard)
    partials = map_chain.batch([{"context": c, "question": question} for c in chunks], config)
    combine_chain = COMBINE_PROMPT | _model_step(guard)
    room = room_for_text(COMBINE_PROMPT, max_input_tokens, question=question)
    # At least one combine call, as LangChain's map_reduce makes, even over a single chunk.
    while True:
        groups = pack_summaries(partials, room)
        partials = combine_chain.batch(
            [{"summaries": SUMMARY_SEPARATOR.join(g), "question": question} for g in groups],
            config,
        )
        if len(partials) == 1:
            return partials[0]


def pack_summaries(summaries: Sequence[str], room: int) -> list[list[str]]:
    """Group partial answers so that each group fits one combine prompt of `room` tokens.

    Answers too long for the room are cut; when no two answers fit together, each is cut to
    half the room so that every round at least halves their number.
    """
    separator = estimate_tokens(SUMMARY_SEPARATOR)
    fitted = [truncate_to_tokens(s, room) for s in summaries]
    groups: list[list[str]] = []
    used = 0
    for summary in fitted:
        size = estimate_tokens(summary) + separator
        if groups and used + size <= room:
            groups[-1].append(summary)
            used += size
        else:
            groups.append([summary])
            used = size
    if len(groups) > 1 and len(groups) == len(fitted):
        half = room // 2 - separator
        cut = [truncate_to_tokens(s, half) for s in fitted]
        groups = [cut[i : i + 2] for i in range(0, len(cut), 2)]
    return groups


def refine(question: str, chunks: Sequence[str], guard: CallGuard, *, answer_room: int) -> str:
    """Sequential by nature: each call needs the answer before it."""
    initial = QA_PROMPT | _model_step(guard)
    refine_step = REFINE_PROMPT | _model_step(guard)
    answer = initial.invoke({"context": chunks[0], "question": question})
    for chunk in chunks[1:]:
        answer = refine_step.invoke(
            {
                "question": question,
                "existing_answer": truncate_to_tokens(answer, answer_room),
                "context": chunk,
            }
        )
    return answer
