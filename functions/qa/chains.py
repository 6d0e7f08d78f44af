"""The seed's `loadQAChain` chain types over the TGI endpoint: stuff, map_reduce and refine.

- stuff: every document in one prompt (the seed's chain).
- map_reduce: each chunk answered on its own, concurrently (at most QA_MAP_CONCURRENCY calls in
  flight), then the partial answers combined, in as many rounds as it takes for them to fit
  one prompt.
- refine: the chunks walked in order, each call improving the answer so far.

Every chain runs all its calls but the last buffered and returns the last call's prompt: the
caller makes that call (`CallGuard.final`), streamed when the answer streams, so its tokens
reach the caller as they come.

Every model call goes through a `CallGuard` (one per attempt of the budget policy,
llm_app.model.budget): it refuses to start a call once the deadline has passed, the reader
left or another call of the attempt failed, so a failed or late request stops spending
endpoint time. The request's `CallTally` sums the calls' token usage and reports each
finished call (`Progress`). `stream_before_deadline` runs a chain on a worker thread
(`CHAIN_THREADS`) and hands its items over as they come, answering 504 when the deadline
comes first.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from enum import StrEnum
from typing import cast

from langchain_core.messages import BaseMessage
from langchain_core.prompt_values import ChatPromptValue, PromptValue
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langchain_text_splitters import RecursiveCharacterTextSplitter

from llm_app.errors import AppError, ErrorCode
from llm_app.model.answer import (
    Item,
    ModelItem,
    Progress,
    Usage,
    close_iterator,
    read_whole,
)
from llm_app.model.tokens import estimate_prompt_tokens, estimate_tokens, truncate_to_tokens

# A model call (Endpoint.generate): the messages, and whether it streams.
Generate = Callable[..., Iterator[ModelItem]]


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

    def seconds_left(self) -> float:
        return self._end - self._clock()


class CallTally:
    """What a request's model calls add up to, across the budget policy's attempts: calls,
    tokens, progress (reported to `on_progress`), and why no call may start any more (the
    deadline passed, or the reader left)."""

    def __init__(
        self, deadline: Deadline, on_progress: Callable[[Progress], None] | None = None
    ) -> None:
        self.deadline = deadline
        self.on_progress = on_progress
        self.lock = threading.Lock()
        self.calls = 0
        self.finished = 0
        self.planned = 0
        self.usage = Usage()
        self.longest_call = 0.0
        self.stopped: AppError | None = None

    def stop(self, reason: AppError) -> None:
        with self.lock:
            if self.stopped is None:
                self.stopped = reason


class CallGuard:
    """One attempt's model calls: it starts none after the deadline, the reader's leaving, or
    the attempt's first failure (so a failed or late request stops spending endpoint time).

    `guard(prompt)` is a buffered call's text (a chain step); `final(messages, stream)` the
    last call, read up to its first piece. A call refused because the attempt stopped raises
    the stopping error's twin (`AppError.again`): LangChain's batch raises the first failure
    in input order, which may be a call that never started.
    """

    def __init__(self, generate: Generate, tally: CallTally) -> None:
        self._generate = generate
        self.tally = tally
        self._failed: AppError | None = None

    def plan(self, calls: int) -> None:
        """`calls` more model calls will be made (for progress's total)."""
        with self.tally.lock:
            self.tally.planned += calls

    def _start(self) -> None:
        tally = self.tally
        with tally.lock:
            reason = tally.stopped or self._failed
            if reason is not None:
                raise reason.again()
            left = tally.deadline.seconds_left()
            # A call no faster than the slowest so far would end after the deadline.
            if left <= 0 or left < tally.longest_call:
                tally.stopped = deadline_error(tally.calls, left)
                raise tally.stopped.again()
            tally.calls += 1

    def __call__(self, prompt: PromptValue) -> str:
        self._start()
        started = time.monotonic()
        try:
            with self._failing_the_attempt():
                text, finish = read_whole(self._generate(prompt.to_messages(), stream=False))
        finally:
            with self.tally.lock:
                self.tally.longest_call = max(self.tally.longest_call, time.monotonic() - started)
        tally = self.tally
        with tally.lock:
            tally.usage = tally.usage + finish.usage
            tally.finished += 1
            progress = Progress(tally.finished, max(tally.planned, tally.finished))
        if tally.on_progress is not None:
            tally.on_progress(progress)
        return text

    def final(self, messages: Sequence[BaseMessage], *, stream: bool) -> Iterator[ModelItem]:
        """The chain's last call, whose text is the answer (read up to its first piece)."""
        self._start()
        with self._failing_the_attempt():
            return self._generate(messages, stream=stream)

    @contextmanager
    def _failing_the_attempt(self) -> Iterator[None]:
        try:
            yield
        except AppError as error:
            with self.tally.lock:
                self._failed = self._failed or error
            raise


def deadline_error(calls_made: int, seconds_left: float) -> AppError:
    return AppError(
        ErrorCode.DEADLINE_EXCEEDED,
        f"The documents could not be answered before the function's time limit "
        f"({calls_made} model calls made, {max(seconds_left, 0):.1f} s left); send a shorter "
        "document, or raise function_timeout.",
    )


_DONE = object()
# The chains' threads, once per container: a request reuses an idle one (starting a thread per
# request showed in QA's warm latency, docs/performance.md); a chain abandoned at its deadline keeps
# its thread until its calls in flight end, and the next request then starts another.
CHAIN_THREADS = ThreadPoolExecutor(thread_name_prefix="qa-chain")


def stream_before_deadline(
    produce: Callable[[], Iterator[Item]], tally: CallTally
) -> Iterator[Item]:
    """The items `produce()` yields, and the progress its calls report, as they come; 504
    when the deadline comes first.

    `produce` runs on a chain thread so this one can stop waiting, before Lambda kills the
    function; calls already in flight finish in the background and no new one starts.
    Closing the iterator (a client gone) stops the calls the same way, and `produce` at its
    next item.
    """
    handoff: queue.SimpleQueue[object] = queue.SimpleQueue()
    tally.on_progress = handoff.put

    def run() -> None:
        items = produce()
        try:
            for item in items:
                if tally.stopped is not None:  # the reader left or gave up
                    return
                handoff.put(item)
        except BaseException as error:  # handed to the reader, raised there
            handoff.put(error)
        else:
            handoff.put(_DONE)
        finally:
            close_iterator(items)

    CHAIN_THREADS.submit(run)
    try:
        while True:
            try:
                item = handoff.get(timeout=max(tally.deadline.seconds_left(), 0))
            except queue.Empty:
                error = deadline_error(tally.calls, tally.deadline.seconds_left())
                tally.stop(error)
                raise error from None
            if isinstance(item, BaseException):
                raise item
            if item is _DONE:
                return
            yield cast(Item, item)
    finally:
        tally.stop(AppError(ErrorCode.INTERNAL_ERROR, "The answer was abandoned."))


# ---------------------------------------------------------------------------------------------
# Chains
# ---------------------------------------------------------------------------------------------
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
    return RunnableLambda(guard, name="model_endpoint")


def map_reduce(
    question: str,
    chunks: Sequence[str],
    guard: CallGuard,
    *,
    max_input_tokens: int,
    concurrency: int,
) -> list[BaseMessage]:
    """Map every chunk, combine until one group is left; that group's prompt is returned."""
    config = RunnableConfig(max_concurrency=concurrency)
    guard.plan(len(chunks) + 1)  # the maps and at least the final combine
    map_chain = MAP_PROMPT | _model_step(guard)
    partials = map_chain.batch([{"context": c, "question": question} for c in chunks], config)
    combine_chain = COMBINE_PROMPT | _model_step(guard)
    room = room_for_text(COMBINE_PROMPT, max_input_tokens, question=question)
    # At least one combine call, as LangChain's map_reduce makes, even over a single chunk.
    while True:
        groups = pack_summaries(partials, room)
        inputs = [{"summaries": SUMMARY_SEPARATOR.join(g), "question": question} for g in groups]
        if len(groups) == 1:
            return COMBINE_PROMPT.format_messages(**inputs[0])
        guard.plan(len(groups))
        partials = combine_chain.batch(inputs, config)


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


def refine(
    question: str, chunks: Sequence[str], guard: CallGuard, *, answer_room: int
) -> list[BaseMessage]:
    """Sequential by nature: each call needs the answer before it. Returns the last call's
    prompt (the answer so far refined with the last chunk)."""
    guard.plan(len(chunks))
    prompt = QA_PROMPT.format_messages(context=chunks[0], question=question)
    for chunk in chunks[1:]:
        answer = guard(ChatPromptValue(messages=prompt))
        prompt = REFINE_PROMPT.format_messages(
            question=question,
            existing_answer=truncate_to_tokens(answer, answer_room),
            context=chunk,
        )
    return prompt
