"""A backend whose generations a caller scripts, for the real SageMaker/TGI protocol server.

The HTTP layer, validation and SageMaker error shapes stay the real ones; only text generation
is replaced. The tests script replies and errors, so the functions' tests exercise boto3's real
serialisation and error parsing against TGI's real semantics; ``make bench`` scripts nothing,
so every request gets ``DEFAULT_REPLY`` at once and the timings are the functions' own.

Streams: a reply is streamed word by word (each word with the spaces before it); a
``ScriptedStream`` names the tokens, the finish reason, a failure after some tokens, and a
``Gate`` that lets each piece out only when the test says so (incremental delivery proven
without timing). Standard library only.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from tools.model_server.backend import (
    GenerateParams,
    Generation,
    GenerationFailure,
    ModelStreamFailure,
)

DEFAULT_REPLY = "Paris."
DEFAULT_GATE_TIMEOUT_SECONDS = 10.0
_WORDS = re.compile(r"\s*\S+|\s+$")


class Gate:
    """Lets a scripted stream out one piece at a time, as the test reads it.

    A piece is a token, the end of the stream (the chunk with the finish reason, then
    ``[DONE]``) or a scripted failure. The first piece goes out at once; each later one waits
    for one ``release()``. So a test that reads token 1, then releases, then reads token 2
    proves that token 1 left the server before token 2 existed. ``sent`` counts the pieces
    let out, ``sent_at`` says when (``time.monotonic()``: the endpoint's first token, for a
    latency figure). A piece not released within ``timeout`` seconds ends the stream with
    SageMaker's ``ModelInvocationTimeExceeded``, so a test that forgets to release fails
    instead of hanging.
    """

    def __init__(self, timeout: float = DEFAULT_GATE_TIMEOUT_SECONDS) -> None:
        self.timeout = timeout
        self.sent = 0
        self.sent_at: list[float] = []
        self._permits = threading.Semaphore(1)
        self._open = False

    def release(self, count: int = 1) -> None:
        """Let ``count`` more pieces out."""
        self._permits.release(count)

    def open(self) -> None:
        """Let everything out from now on."""
        self._open = True
        self._permits.release()

    def wait(self) -> None:
        """Called by the stream before each piece."""
        if not self._open and not self._permits.acquire(timeout=self.timeout):
            raise ModelStreamFailure(
                f"the scripted stream's piece {self.sent + 1} was not released within "
                f"{self.timeout} s (call gate.release() after reading the previous one)",
                "ModelInvocationTimeExceeded",
            )
        self.sent += 1
        self.sent_at.append(time.monotonic())


@dataclass(frozen=True)
class ScriptedStream:
    """One scripted generation, streamed piece by piece.

    ``tokens`` are the pieces of text in order; ``finish_reason`` (``"eos_token"``,
    ``"length"`` or ``"stop_sequence"``) and ``generated_tokens`` (default: the number of
    tokens) describe how it ended, unless the request's ``max_new_tokens`` or a stop sequence
    ends it first. ``fail_after=N`` breaks the stream after N tokens: SageMaker's
    ``ModelStreamError`` with ``error_code``, or, with ``engine_error``, the engine's own error
    event followed by ``data: [DONE]`` (a buffered call gets the container's 424 either way).
    """

    tokens: tuple[str, ...]
    finish_reason: str = "eos_token"
    generated_tokens: int | None = None
    fail_after: int | None = None
    error_code: str = "StreamBroken"
    message: str = "The model's response stream broke (scripted failure)."
    engine_error: bool = False
    gate: Gate | None = None

    def failure(self) -> Exception:
        if self.engine_error:
            return GenerationFailure(self.message)
        return ModelStreamFailure(self.message, self.error_code)

    def __post_init__(self) -> None:
        if self.fail_after is not None and not 0 <= self.fail_after <= len(self.tokens):
            raise ValueError(f"fail_after must be between 0 and {len(self.tokens)}")
        Generation("", 0, self.finish_reason)  # checks the finish reason now


# What a scripted step may be: a reply, a stream, an exception to raise, or a callable
# producing a reply (called when the request arrives; it may raise too).
Step = str | ScriptedStream | BaseException | Callable[[], str]


@dataclass(frozen=True)
class Call:
    prompt: str
    params: GenerateParams


class ScriptedBackend:
    model_id = "test/scripted-zephyr"

    def __init__(self, *, record_calls: bool = True) -> None:
        self._steps: deque[Step] = deque()
        self._lock = threading.Lock()
        self._record_calls = record_calls  # off for long benchmark runs
        self.calls: list[Call] = []
        # Answers by prompt once the script is exhausted (concurrent callers arrive in any order).
        self._responder: Callable[[str], str] | None = None

    def script(self, *steps: Step) -> None:
        with self._lock:
            self._steps.extend(steps)

    def respond_with(self, responder: Callable[[str], str]) -> None:
        """Answer each prompt (the templated text the model would see) with ``responder``."""
        with self._lock:
            self._responder = responder

    def reset(self) -> None:
        with self._lock:
            self._steps.clear()
            self.calls.clear()
            self._responder = None

    # -- Backend protocol -------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        # Whitespace words: fewer than a real tokenizer's count, so the functions' own
        # (over-counting) budget is always the stricter of the two in tests.
        return len(text.split())

    def apply_chat_template(self, messages: list[dict[str, str]]) -> str:
        """TinyLlama's Zephyr template."""
        turns = "".join(f"<|{m['role']}|>\n{m['content']}</s>\n" for m in messages)
        return turns + "<|assistant|>\n"

    def generate(self, prompt: str, params: GenerateParams) -> Generation:
        for item in self.generate_stream(prompt, params):
            if isinstance(item, Generation):
                return item
        raise AssertionError("a scripted stream always ends with its Generation")

    def generate_stream(self, prompt: str, params: GenerateParams) -> Iterator[str | Generation]:
        step = self._next_step(prompt, params)
        if isinstance(step, BaseException):
            raise step
        if not isinstance(step, ScriptedStream):
            text = step() if callable(step) else step
            step = ScriptedStream(tuple(_WORDS.findall(text)))
        return _play(step, params)

    def _next_step(self, prompt: str, params: GenerateParams) -> Step:
        with self._lock:
            if self._record_calls:
                self.calls.append(Call(prompt, params))
            if self._steps:
                return self._steps.popleft()
            if self._responder is not None:
                responder = self._responder
                return lambda: responder(prompt)  # called outside the lock
            return DEFAULT_REPLY


def _play(script: ScriptedStream, params: GenerateParams) -> Iterator[str | Generation]:
    """The scripted pieces under the request's limits: max_new_tokens, then stop sequences
    (the text ends right after the first one, which it includes, as in TGI)."""
    wait = script.gate.wait if script.gate is not None else lambda: None
    text, count = "", 0
    finish_reason = script.finish_reason
    for index, token in enumerate(script.tokens):
        if index == script.fail_after:
            wait()
            raise script.failure()
        if count == params.max_new_tokens:
            finish_reason = "length"
            break
        wait()
        candidate = text + token
        stop_end = _first_stop_end(candidate, params.stop)
        count += 1
        if stop_end is not None:
            yield candidate[len(text) : stop_end]
            text, finish_reason = candidate[:stop_end], "stop_sequence"
            break
        yield token
        text = candidate
    else:
        if script.fail_after == len(script.tokens):
            wait()
            raise script.failure()
    wait()
    natural = finish_reason == script.finish_reason and count == len(script.tokens)
    generated = script.generated_tokens if natural and script.generated_tokens else count
    yield Generation(text, generated, finish_reason)


def _first_stop_end(text: str, stops: tuple[str, ...]) -> int | None:
    ends = [text.index(stop) + len(stop) for stop in stops if stop and stop in text]
    return min(ends) if ends else None
