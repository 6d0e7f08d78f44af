"""A backend whose generations a caller scripts, for the real SageMaker/TGI protocol server.

The HTTP layer, validation and SageMaker error shapes stay the real ones; only text generation
is replaced. The tests script replies and errors, so the functions' tests exercise boto3's real
serialisation and error parsing against TGI's real semantics; ``make bench`` scripts nothing,
so every request gets ``DEFAULT_REPLY`` at once and the timings are the functions' own.
Standard library only.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from tools.model_server.backend import ChatTemplateError, GenerateParams, Generation

# What a scripted step may be: a reply, an exception to raise, or a callable producing either.
Step = str | BaseException | Callable[[], str]

DEFAULT_REPLY = "Paris."
# Llama 2's tokenizer on the classes that matter for budgets: a whole common word (with its
# leading space) is one token; every digit, punctuation mark, symbol, newline and non-ASCII
# character is at least one.
_LLAMA_PIECES = re.compile(r" ?[A-Za-z]+|\S|\n| +")


def llama_like_token_count(text: str) -> int:
    return len(_LLAMA_PIECES.findall(text))


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
        self._count_tokens: Callable[[str], int] = llama_like_token_count
        # Gemma's and Mistral-Instruct v0.1/v0.2's templates raise on a system message.
        self.system_role = True

    def script(self, *steps: Step) -> None:
        with self._lock:
            self._steps.extend(steps)

    def respond_with(self, responder: Callable[[str], str]) -> None:
        """Answer each prompt (the templated text the model would see) with ``responder``."""
        with self._lock:
            self._responder = responder

    def count_tokens_with(self, counter: Callable[[str], int]) -> None:
        """Count prompt tokens with ``counter``: a tokenizer denser than the functions expect."""
        with self._lock:
            self._count_tokens = counter

    def reset(self) -> None:
        with self._lock:
            self._steps.clear()
            self.calls.clear()
            self._responder = None
            self._count_tokens = llama_like_token_count
            self.system_role = True

    # -- Backend protocol -------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        return self._count_tokens(text)

    def apply_chat_template(self, messages: list[dict[str, str]]) -> str:
        """TinyLlama's Zephyr template; with ``system_role`` off, Gemma's refusal."""
        if not self.system_role and any(m["role"] == "system" for m in messages):
            raise ChatTemplateError("System role not supported")
        turns = "".join(f"<|{m['role']}|>\n{m['content']}</s>\n" for m in messages)
        return turns + "<|assistant|>\n"

    def generate(self, prompt: str, params: GenerateParams) -> Generation:
        with self._lock:
            if self._record_calls:
                self.calls.append(Call(prompt, params))
            step: Step
            if self._steps:
                step = self._steps.popleft()
            elif self._responder is not None:
                responder = self._responder
                step = lambda: responder(prompt)  # noqa: E731 - called outside the lock
            else:
                step = DEFAULT_REPLY
        if isinstance(step, BaseException):
            raise step
        text = step() if callable(step) else step
        for stop in params.stop:
            if stop in text:
                return Generation(
                    text[: text.index(stop) + len(stop)], len(text.split()), "stop_sequence"
                )
        words = text.split(" ")
        if len(words) > params.max_new_tokens:
            return Generation(
                " ".join(words[: params.max_new_tokens]), params.max_new_tokens, "length"
            )
        return Generation(text, len(words), "eos_token")
