"""What the domain returns: an answer's text as it comes, then the fields that close it.

Both front doors (the buffered Lambda handler and the streaming ASGI app, see `service`)
consume the same `Answer`; neither decides anything about the answer itself.

- `Generation` is one model call: an iterator of text pieces (one piece for a buffered call,
  one per token for a streamed call). Once exhausted, `finish_reason` says why the model
  stopped ("stop", or "length" when cut at max_new_tokens) and `usage` how many tokens it
  read and wrote. An iterator that ends without a finish reason raises instead: a model
  answer is either complete or an error, never silently cut.
- `Answer` is one request's result: `parts` yields text pieces (and, for QA's long chains,
  `Progress`), and `fields` holds the answer's other JSON fields in their contract order; the
  domain completes `fields` (finish_reason, usage) when `parts` is exhausted. `headers` are
  response headers the domain knows once the first part is out (chat's x-session-id).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

FINISH_STOP = "stop"
FINISH_LENGTH = "length"


@dataclass(frozen=True)
class Usage:
    """Tokens the model read (the prompt) and wrote, summed over a request's model calls."""

    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens
        )

    def as_json(self) -> dict[str, int]:
        """The JSON answer's `usage`."""
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}

    def as_openai(self) -> dict[str, int]:
        """The `usage` of an OpenAI chat.completion.chunk (the last streamed event)."""
        return {
            "prompt_tokens": self.input_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
        }


@dataclass(frozen=True)
class Progress:
    """QA's map_reduce and refine: `done` model calls of the `total` known so far finished."""

    done: int
    total: int


Part = str | Progress


class Generation(Iterator[str]):
    """One model call's text pieces; `finish_reason` and `usage` are known once exhausted.

    `pieces` yields text and calls `finish(reason, usage)` before it ends; the leading
    whitespace of the answer is dropped (the buffered answer was always stripped).
    """

    def __init__(self, pieces: Iterator[str]) -> None:
        self._source = pieces
        self._pieces = pieces
        self._started = False
        self.finish_reason: str | None = None
        self.usage = Usage()

    @classmethod
    def complete(cls, text: str, finish_reason: str | None, usage: Usage) -> Generation:
        """A buffered call's whole answer as a one-piece generation."""
        generation = cls(iter((text,)))
        generation.finish_reason = finish_reason or FINISH_STOP
        generation.usage = usage
        return generation

    def finish(self, finish_reason: str | None, usage: Usage) -> None:
        if finish_reason is not None:
            self.finish_reason = finish_reason
        self.usage = self.usage + usage

    def __iter__(self) -> Generation:
        return self

    def __next__(self) -> str:
        while True:
            piece = next(self._pieces)
            if not self._started:
                piece = piece.lstrip()
                if not piece:
                    continue
                self._started = True
            return piece

    def prefetch(self) -> Generation:
        """Read up to the first piece now (it is kept): the call's early errors raise here."""
        try:
            first = next(self)
        except StopIteration:
            return self
        self._pieces = itertools.chain((first,), self._pieces)
        return self

    def text(self) -> str:
        """Consume the rest and return it whole, stripped (a buffered caller's answer)."""
        return "".join(self).strip()

    def close(self) -> None:
        """Stop reading: the underlying call is abandoned (a client that went away)."""
        close_iterator(self._source)


@dataclass
class Answer:
    """One request's answer: parts as they come, then `fields` complete (see module doc)."""

    parts: Iterator[Part]
    fields: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    # Whether the model call streams (the caller asked for SSE or text): the doors then send
    # the parts as they come; otherwise the answer is one JSON object.
    streamed: bool = False
    # Keys for the request's log line (e.g. session_tag, history_turns, chain_type).
    log_keys: dict[str, Any] = field(default_factory=dict)


def close_fields(fields: dict[str, Any], finish_reason: str | None, usage: Usage) -> None:
    """Add the closing fields every answer carries, after its own ones (contract order)."""
    fields["finish_reason"] = finish_reason or FINISH_STOP
    fields["usage"] = usage.as_json()


def relay(generation: Generation) -> Generator[str, None, str]:
    """Yield a generation's pieces; return its whole text (stripped) once it completed."""
    pieces: list[str] = []
    try:
        for piece in generation:
            pieces.append(piece)
            yield piece
    finally:
        generation.close()  # a `for` does not close what it reads: a reader gone stops the call
    return "".join(pieces).strip()


def answer_with(
    generation: Generation,
    fields: dict[str, Any],
    *,
    streamed: bool,
    headers: dict[str, str] | None = None,
    on_complete: Callable[[str], None] | None = None,
) -> Answer:
    """The answer of a request that makes one model call.

    `on_complete(text)` runs once the model finished, before the closing fields are set:
    chat stores the turn there, so an answer cut off by an error is never remembered.
    """

    def parts() -> Iterator[Part]:
        text = yield from relay(generation)
        if on_complete is not None:
            on_complete(text)
        close_fields(fields, generation.finish_reason, generation.usage)

    return Answer(parts(), fields, headers or {}, streamed)


def tap(parts: Iterator[Part], on_complete: Callable[[str], None]) -> Iterator[Part]:
    """`parts` unchanged; `on_complete(text)` once they are all out (e.g. to log the exchange)."""
    pieces: list[str] = []
    try:
        for part in parts:
            if isinstance(part, str):
                pieces.append(part)
            yield part
    finally:
        close_iterator(parts)
    on_complete("".join(pieces).strip())


def joined_text(parts: Iterable[Part]) -> str:
    """The answer's text from its parts (progress ignored), stripped: the JSON answer."""
    return "".join(part for part in parts if isinstance(part, str)).strip()


def close_iterator(iterator: object) -> None:
    """Close a generator (its `finally` blocks run); other iterators have nothing to close."""
    close = getattr(iterator, "close", None)
    if callable(close):
        close()
