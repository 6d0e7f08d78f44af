"""The seed's `loadQAChain` chain types over the TGI endpoint: stuff, map_reduce and refine.

- stuff: every document in one prompt (the seed's chain).
- map_reduce: each chunk answered on its own, concurrently (at most QA_MAP_CONCURRENCY calls in
  flight), then the partial answers combined, in as many rounds as it takes for them to fit
  one prompt.
- refine: the chunks walked in order, each call improving the answer so far.

Every chain runs all its calls but the last buffered and returns the last call's prompt: the
caller makes that call (`CallGuard.final`), streamed when the answer streams, so its tokens
reach the caller as they come.

Every model call goes through a `CallGuard`: it refuses to start a call once the deadline has
passed or another call failed, so a failed or late request stops spending endpoint time. It
sums the calls' token usage and reports each finished call (`Progress`) to `on_progress`.
`stream_before_deadline` runs a chain on a worker thread (`CHAIN_THREADS`) and hands its parts
over as they come, answering 504 when the deadline comes first.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from enum import StrEnum

from langchain_core.messages import BaseMessage
from langchain_core.prompt_values import ChatPromptValue, PromptValue
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langchain_text_splitters import RecursiveCharacterTextSplitter

from llm_app.errors import AppError, ErrorCode
from llm_app.model.answer import Generation, Part, Progress, Usage
from llm_app.model.engine_errors import PromptTooLong
from llm_app.model.tokens import estimate_prompt_tokens, estimate_tokens, truncate_to_tokens

# A model call: the messages, and whether it streams.
Generate = Callable[..., Generation]


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


class CallGuard:
    """Counts model calls and stops new ones after the deadline or the first failure.

    `guard(prompt)` is a buffered call's text (a chain step); `final(messages, stream)` the
    last call's `Generation`. `usage` sums the calls' tokens; `on_progress` hears of each
    finished call, with the calls planned so far (`plan`).
    """

    def __init__(
        self,
        generate: Generate,
        deadline: Deadline,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        self._generate = generate
        self.deadline = deadline
        self.on_progress = on_progress
        self._lock = threading.Lock()
        self._stopped: AppError | None = None
        self.calls = 0
        self.finished = 0
        self.planned = 0
        self.usage = Usage()
        self._longest_call = 0.0

    @property
    def stopped(self) -> bool:
        return self._stopped is not None

    def stop(self, error: AppError) -> None:
        with self._lock:
            if self._stopped is None:
                self._stopped = error

    def resume_after(self, error: PromptTooLong) -> None:
        """Allow calls again after the endpoint refused a prompt as too long (to retry smaller)."""
        with self._lock:
            if isinstance(self._stopped, PromptTooLong):
                self._stopped = None

    def plan(self, calls: int) -> None:
        """`calls` more model calls will be made (for progress's total)."""
        with self._lock:
            self.planned += calls

    def _start(self) -> None:
        with self._lock:
            if self._stopped is not None:
                raise self._stopped
            left = self.deadline.seconds_left()
            # A call no faster than the slowest so far would end after the deadline.
            if left <= 0 or left < self._longest_call:
                self._stopped = deadline_error(self.calls, left)
                raise self._stopped
            self.calls += 1

    def __call__(self, prompt: PromptValue) -> str:
        self._start()
        started = time.monotonic()
        messages = prompt.to_messages()
        try:
            with self._stopping_on_failure(messages):
                generation = self._generate(messages, stream=False)
                text = generation.text()
        finally:
            with self._lock:
                self._longest_call = max(self._longest_call, time.monotonic() - started)
        with self._lock:
            self.usage = self.usage + generation.usage
            self.finished += 1
            progress = Progress(self.finished, max(self.planned, self.finished))
        if self.on_progress is not None:
            self.on_progress(progress)
        return text

    def final(self, messages: Sequence[BaseMessage], *, stream: bool) -> Generation:
        """The chain's last call, whose text is the answer (read up to its first piece)."""
        self._start()
        with self._stopping_on_failure(messages):
            return self._generate(messages, stream=stream)

    @contextmanager
    def _stopping_on_failure(self, messages: Sequence[BaseMessage]) -> Iterator[None]:
        """A failed call stops the chain; a too-long refusal keeps our estimate of its prompt
        (the retry shrinks by the endpoint's count against it)."""
        try:
            yield
        except PromptTooLong as error:
            error.sent_estimate = estimate_prompt_tokens(messages)
            self.stop(error)
            raise
        except AppError as error:
            self.stop(error)
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
# request cost QA about 0.5 ms of its warm latency); a chain abandoned at its deadline keeps
# its thread until its calls in flight end, and the next request then starts another.
CHAIN_THREADS = ThreadPoolExecutor(thread_name_prefix="qa-chain")


def stream_before_deadline(
    produce: Callable[[Callable[[Part], None]], None], guard: CallGuard
) -> Iterator[Part]:
    """The parts `produce(emit)` emits, as they come; 504 when the deadline comes first.

    `produce` runs on a chain thread so this one can stop waiting, before Lambda kills the
    function; calls already in flight finish in the background and the guard starts no new
    one. Closing the iterator (a client gone) stops the guard the same way.
    """
    handoff: queue.SimpleQueue[object] = queue.SimpleQueue()

    def run() -> None:
        try:
            produce(handoff.put)
        except BaseException as error:  # handed to the reader, raised there
            handoff.put(error)
        else:
            handoff.put(_DONE)

    CHAIN_THREADS.submit(run)
    try:
        while True:
            try:
                item = handoff.get(timeout=max(guard.deadline.seconds_left(), 0))
            except queue.Empty:
                error = deadline_error(guard.calls, guard.deadline.seconds_left())
                guard.stop(error)
                raise error from None
            if isinstance(item, BaseException):
                raise item
            if not isinstance(item, str | Progress):
                return  # _DONE: produce finished
            yield item
    finally:
        guard.stop(AppError(ErrorCode.INTERNAL_ERROR, "The answer was abandoned."))


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
    return RunnableLambda(guard, name="tgi_endpoint")


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
