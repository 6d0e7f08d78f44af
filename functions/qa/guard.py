"""The guard every QA model call passes, and the thread a chain runs on.

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
from typing import cast

from langchain_core.messages import BaseMessage
from langchain_core.prompt_values import PromptValue

from llm_app.errors import AppError, ErrorCode
from llm_app.model.answer import (
    Item,
    ModelItem,
    Progress,
    Usage,
    close_iterator,
    read_whole,
)

# A model call (Endpoint.generate): the messages, and whether it streams.
Generate = Callable[..., Iterator[ModelItem]]


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
