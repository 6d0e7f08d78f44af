"""What the domain yields: one typed stream per answer, every item frozen once yielded.

- A model call (`Endpoint.generate`) is an iterator of `Text` pieces, then one `Finish` (why
  the model stopped, the tokens it read and wrote). A call that ends without a `Finish`
  raises instead: a model answer is complete or an error, never silently cut.
- A request's answer (`Answer`, what a route returns) is an iterator of `Text`, `Progress`
  (QA's long chains) and, last, exactly one `Done`: the finish reason, the usage summed over
  the request's calls, the answer's other JSON fields in their contract order, and the
  `Facts` the request's log line and metrics need. What is known before the first item
  (chat's x-session-id header, its session tag) travels on the `Answer` itself.

The edge (llm_app.http.edge) renders this stream for both front doors; nothing reaches it
any other way.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, cast

FINISH_STOP = "stop"
FINISH_LENGTH = "length"
_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class Usage:
    """Tokens the model read (the prompt) and wrote, summed over a request's model calls, in
    OpenAI's names (the JSON answer's and the stream's `usage` alike)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_json(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True)
class Text:
    """A piece of the answer's text, as the model wrote it."""

    text: str


@dataclass(frozen=True)
class Progress:
    """QA's map_reduce and refine: `done` model calls of the `total` known so far finished."""

    done: int
    total: int


@dataclass(frozen=True)
class Finish:
    """The last item of one model call: why it stopped ("stop", "length") and its tokens."""

    finish_reason: str
    usage: Usage


@dataclass(frozen=True)
class Facts:
    """What the request's log line (`log`: keys) and metrics (`metrics`: name -> count, see
    llm_app.runtime.metrics) say about an answer."""

    log: Mapping[str, Any] = _EMPTY
    metrics: Mapping[str, float] = _EMPTY

    def __add__(self, other: Facts) -> Facts:
        return Facts({**self.log, **other.log}, {**self.metrics, **other.metrics})


@dataclass(frozen=True)
class Done:
    """The last item of an answer."""

    finish_reason: str
    usage: Usage
    # The JSON answer's fields besides `answer`, finish_reason and usage, in contract order.
    fields: Mapping[str, Any] = _EMPTY
    facts: Facts = Facts()


Item = Text | Progress | Done
ModelItem = Text | Finish


@dataclass(frozen=True)
class Answer:
    """A route's answer: its items as they come, and what is known before the first one."""

    items: Iterator[Item]
    # The caller asked for a stream (SSE or text); otherwise the answer is one JSON object.
    streamed: bool = False
    # Response headers (chat's x-session-id).
    headers: Mapping[str, str] = _EMPTY
    facts: Facts = Facts()
    # The question, for the `exchange` log line written only with LOG_PROMPTS.
    question: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Reply:
    """A route's answer that is one JSON object whatever the caller accepts (chat's DELETE)."""

    body: Mapping[str, Any]
    facts: Facts = Facts()


class Prefetched(Iterator[ModelItem]):
    """A model call read up to its first piece of text now, so that its early errors (the
    engine's refusals, in-stream ones included) raise before anything is sent; `close()`
    abandons the call."""

    def __init__(self, call: Iterator[ModelItem]) -> None:
        self._call = call
        self._head: deque[ModelItem] = deque()
        for item in call:
            self._head.append(item)
            if isinstance(item, Text):
                break

    def __next__(self) -> ModelItem:
        if self._head:
            return self._head.popleft()
        return next(self._call)

    def close(self) -> None:
        close_iterator(self._call)


def relay(call: Iterator[ModelItem]) -> Generator[Text, None, tuple[str, Finish]]:
    """Yield a model call's text; return its whole text (stripped) and its Finish once the
    call completed. Closing this generator (a reader gone) abandons the call."""
    pieces: list[str] = []
    finish: Finish | None = None
    try:
        for item in call:
            if isinstance(item, Text):
                pieces.append(item.text)
                yield item
            else:
                finish = item
    finally:
        close_iterator(call)  # a `for` does not close what it reads
    if finish is None:
        raise RuntimeError("a model call ended without its Finish item")
    return "".join(pieces).strip(), finish


def read_whole(call: Iterator[ModelItem]) -> tuple[str, Finish]:
    """A model call consumed: its text (stripped) and its `Finish`."""
    relaying = relay(call)
    while True:
        try:
            next(relaying)
        except StopIteration as finished:
            return cast(tuple[str, Finish], finished.value)


def close_iterator(iterator: object) -> None:
    """Close a generator (its `finally` blocks run); other iterators have nothing to close."""
    close = getattr(iterator, "close", None)
    if callable(close):
        close()
