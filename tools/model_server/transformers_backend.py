"""Real text generation on CPU with Hugging Face transformers: the backend of ``make local``.

The model is the one Terraform put on the SageMaker model (``HF_MODEL_ID``), loaded offline
first: from a folder the user names, else from the local Hugging Face cache. Only when neither
has it and the Hub answers is it downloaded (into that cache); when the Hub cannot be reached,
loading fails at once with ``ModelNotAvailableError``, whose message says how to provide the
weights. There is no fallback text of any kind.

Generation follows TGI's semantics (see ``tools.model_server.protocol``): greedy unless sampling is
on, TGI's meaning of temperature/top-p/top-k/repetition penalty, seeded sampling, stop
sequences included in the returned text, finish reasons ``length``/``eos_token``/
``stop_sequence``. Chat prompts are tokenised without special tokens, as TGI does, because
the chat template already wrote them.

Generation always streams: ``model.generate`` runs on a thread and hands each new token to a
queue (a transformers ``BaseStreamer``); the request's thread decodes the tokens
incrementally, as TGI's router does (a piece leaves once it is whole text, never half a
UTF-8 character), and yields each piece at once. ``generate`` is the same stream, collected.
Closing the stream early (the client went away) stops the generation at the next token.
"""

from __future__ import annotations

import contextlib
import queue
import secrets
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    StoppingCriteria,
    StoppingCriteriaList,
)
from transformers.generation.streamers import BaseStreamer
from transformers.utils import logging as transformers_logging

from tools.model_server.backend import (
    ChatTemplateError,
    GenerateParams,
    Generation,
    GenerationFailure,
)

_HUB_PROBE_TIMEOUT_SECONDS = 5.0
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ModelNotAvailableError(RuntimeError):
    """The weights are neither in the named folder nor in the cache, and cannot be downloaded."""


class TemplatedPrompt(str):
    """A prompt rendered by the chat template; it already carries its special tokens."""

    __slots__ = ()


class TransformersBackend:
    """A causal language model and its tokenizer, generating one request at a time."""

    def __init__(
        self,
        model_id: str,
        *,
        model_dir: Path | None = None,
        offline: bool = False,
        dtype: str = "float32",
        log: Callable[[str], None] = lambda line: None,
    ) -> None:
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, not {dtype!r}")
        self.model_id = model_id
        self._log = log
        transformers_logging.disable_progress_bar()  # weight-loading bars; downloads keep theirs
        source = resolve_model_source(model_id, model_dir=model_dir, offline=offline, log=log)
        self.source = source
        self.tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=source != model_id)
        self.model = AutoModelForCausalLM.from_pretrained(
            source, dtype=_DTYPES[dtype], local_files_only=source != model_id
        )
        self.model.eval()
        self._eos_token_ids = _eos_token_ids(self.model.generation_config, self.tokenizer)
        if not self._eos_token_ids:
            raise ModelNotAvailableError(
                f"{model_id}: neither the model nor its tokenizer names an EOS token"
            )
        self._pad_token_id = (
            self.tokenizer.pad_token_id
            if self.tokenizer.pad_token_id is not None
            else self._eos_token_ids[0]
        )

    @property
    def max_position_embeddings(self) -> int | None:
        value = getattr(self.model.config, "max_position_embeddings", None)
        return value if isinstance(value, int) else None

    # -- Backend ------------------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        return len(self._encode(text))

    def apply_chat_template(self, messages: list[dict[str, str]]) -> str:
        if not self.tokenizer.chat_template:
            raise ChatTemplateError(f"{self.model_id} has no chat template")
        try:
            rendered = self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
        except Exception as error:  # jinja2's TemplateError and the template's own raise_exception
            raise ChatTemplateError(str(error)) from error
        return TemplatedPrompt(rendered)

    def generate(self, prompt: str, params: GenerateParams) -> Generation:
        with contextlib.closing(self.generate_stream(prompt, params)) as stream:
            for item in stream:
                if isinstance(item, Generation):
                    return item
        raise AssertionError("a stream always ends with its Generation")

    def generate_stream(self, prompt: str, params: GenerateParams) -> Iterator[str | Generation]:
        """Starts generating at the first ``next``, so a stream never read never runs."""
        input_ids = torch.tensor([self._encode(prompt)], dtype=torch.long)
        cancel = threading.Event()
        stopping = StoppingCriteriaList([_Cancelled(cancel)])
        if params.stop:
            stopping.append(_StopSequences(self.tokenizer, input_ids.shape[1], params.stop))
        tokens = _TokenQueue()

        def run() -> None:
            try:
                with torch.inference_mode():
                    self.model.generate(
                        input_ids=input_ids,
                        attention_mask=torch.ones_like(input_ids),
                        generation_config=self._generation_config(params),
                        stopping_criteria=stopping,
                        streamer=tokens,
                    )
            except BaseException as error:  # handed to the request's thread, raised there
                tokens.fail(error)
            finally:
                tokens.end()

        def start() -> threading.Thread:
            if params.do_sample:
                # Seeded sampling is reproducible because requests run one at a time.
                seed = params.seed if params.seed is not None else secrets.randbits(64)
                torch.manual_seed(seed)
            thread = threading.Thread(target=run, name="generate", daemon=True)
            thread.start()
            return thread

        return self._pieces(start, tokens, cancel, params.stop)

    def _pieces(
        self,
        start: Callable[[], threading.Thread],
        tokens: _TokenQueue,
        cancel: threading.Event,
        stops: tuple[str, ...],
    ) -> Iterator[str | Generation]:
        """Decode as TGI's router does: the text of the tokens since ``prefix`` minus that of
        the tokens before ``read``, so a token's leading space and multi-byte characters come
        out right; text ending in U+FFFD (half a character) waits for the next token."""
        ids: list[int] = []
        prefix = read = 0
        text = ""
        finish_reason = "length"

        def new_text(final: bool) -> str:
            nonlocal prefix, read
            before = self.tokenizer.decode(ids[prefix:read], skip_special_tokens=True)
            after = self.tokenizer.decode(ids[prefix:], skip_special_tokens=True)
            if len(after) <= len(before) or (after.endswith("\ufffd") and not final):
                return ""
            prefix, read = read, len(ids)
            return str(after[len(before) :])

        thread = start()
        try:
            ended = False
            for token_id in _reported(tokens):
                ids.append(token_id)
                if token_id in self._eos_token_ids:
                    finish_reason, ended = "eos_token", True
                    break
                piece = new_text(final=False)
                stop_end = _first_stop_end(text + piece, stops)
                if stop_end is not None:
                    piece, finish_reason = (text + piece)[len(text) : stop_end], "stop_sequence"
                if piece:
                    yield piece
                    text += piece
                if stop_end is not None:
                    ended = True
                    break
            if not ended and (rest := new_text(final=True)):  # generation stopped: the rest
                stop_end = _first_stop_end(text + rest, stops)
                if stop_end is not None:
                    rest, finish_reason = (text + rest)[len(text) : stop_end], "stop_sequence"
                yield rest
                text += rest
            yield Generation(text, len(ids), finish_reason)
        finally:
            cancel.set()  # a no-op once generation has ended; else it stops at the next token
            thread.join()

    # -- internals ----------------------------------------------------------------------------
    def _encode(self, text: str) -> list[int]:
        # TGI adds special tokens to raw inputs but not to templated chat prompts.
        add_special_tokens = not isinstance(text, TemplatedPrompt)
        return self.tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"]

    def _generation_config(self, params: GenerateParams) -> GenerationConfig:
        common: dict[str, Any] = {
            "max_new_tokens": params.max_new_tokens,
            "eos_token_id": self._eos_token_ids,
            "pad_token_id": self._pad_token_id,
            "repetition_penalty": params.repetition_penalty or 1.0,
        }
        if not params.do_sample:
            return GenerationConfig(do_sample=False, **common)
        # Unset means "no warper", as in TGI: temperature 1, no top-p, and top-k 0 (off).
        return GenerationConfig(
            do_sample=True,
            temperature=params.temperature or 1.0,
            top_p=params.top_p or 1.0,
            top_k=params.top_k or 0,
            **common,
        )


def _reported(tokens: Iterator[int]) -> Iterator[int]:
    """A failure of ``model.generate`` is TGI's GenerationError, which it reports in-stream."""
    try:
        yield from tokens
    except Exception as error:
        raise GenerationFailure(f"Request failed during generation: {error}") from error


class _TokenQueue(BaseStreamer):
    """What ``model.generate`` streams (after the prompt), as an iterator of token ids."""

    _END = object()

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:  # generate's first call hands over the prompt
            self._prompt_seen = True
            return
        for token_id in value.reshape(-1).tolist():
            self._queue.put(token_id)

    def end(self) -> None:
        self._queue.put(self._END)

    def fail(self, error: BaseException) -> None:
        self._queue.put(error)

    def __iter__(self) -> Iterator[int]:
        while (item := self._queue.get()) is not self._END:
            if isinstance(item, BaseException):
                raise item
            yield item


class _Cancelled(StoppingCriteria):
    """Ends generation once the consumer has gone (``event`` set)."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        done = self.event.is_set()
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool)  # type: ignore[return-value]


class _StopSequences(StoppingCriteria):
    """Stops once any stop sequence appears in the text generated so far.

    The check decodes the generated tokens, so a stop sequence split across tokens, or ending
    inside a token, is found; ``generate`` then cuts the text right after it.
    """

    def __init__(self, tokenizer: Any, prompt_length: int, stops: tuple[str, ...]) -> None:
        self.tokenizer = tokenizer
        self.prompt_length = prompt_length
        self.stops = stops

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        text = self.tokenizer.decode(input_ids[0, self.prompt_length :], skip_special_tokens=True)
        done = any(stop in text for stop in self.stops)
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool)  # type: ignore[return-value]


def _first_stop_end(text: str, stops: tuple[str, ...]) -> int | None:
    """End offset of the earliest stop sequence in ``text`` (the text is cut there)."""
    ends = [text.index(stop) + len(stop) for stop in stops if stop and stop in text]
    return min(ends) if ends else None


def _eos_token_ids(generation_config: Any, tokenizer: Any) -> list[int]:
    configured = generation_config.eos_token_id
    if configured is None:
        configured = tokenizer.eos_token_id
    if configured is None:
        return []
    return list(configured) if isinstance(configured, list | tuple) else [int(configured)]


# ---------------------------------------------------------------------------
# Finding the weights
# ---------------------------------------------------------------------------
def resolve_model_source(
    model_id: str,
    *,
    model_dir: Path | None = None,
    offline: bool = False,
    log: Callable[[str], None] = lambda line: None,
) -> str:
    """Where to load ``model_id`` from: a folder, the cache (offline), or the Hub.

    Returns a folder path, or ``model_id`` itself when the Hub answered and the model is to
    be downloaded into the cache. Raises ``ModelNotAvailableError`` otherwise.
    """
    from huggingface_hub import constants

    if model_dir is not None:
        return _checked_folder(model_dir, f"--model-dir {model_dir}")
    if Path(model_id).is_dir():
        return _checked_folder(Path(model_id), model_id)
    cached = _cached_snapshot(model_id)
    if cached is not None:
        log(f"loading {model_id} from the Hugging Face cache: {cached}")
        return cached
    if offline or constants.HF_HUB_OFFLINE:
        raise ModelNotAvailableError(_how_to_provide(model_id, "offline mode is on"))
    reason = _hub_unreachable_reason(model_id, constants.ENDPOINT)
    if reason is not None:
        raise ModelNotAvailableError(_how_to_provide(model_id, reason))
    log(
        f"{model_id} is not in the Hugging Face cache ({constants.HF_HUB_CACHE}); "
        "downloading it from the Hub (TinyLlama-1.1B-Chat is about 2.2 GB)"
    )
    return model_id


def _checked_folder(folder: Path, named_as: str) -> str:
    if not (folder / "config.json").is_file():
        raise ModelNotAvailableError(
            f"{named_as} has no config.json: it must hold a Hugging Face model repository "
            "(config.json, tokenizer files and *.safetensors weights), e.g. one made with "
            "`hf download MODEL_ID --local-dir FOLDER`."
        )
    return str(folder.resolve())


def _cached_snapshot(model_id: str) -> str | None:
    """The cached snapshot folder of ``model_id`` if it holds weights, without network."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        folder = Path(snapshot_download(model_id, local_files_only=True))
    except (LocalEntryNotFoundError, HFValidationError, OSError):
        return None
    has_weights = any(folder.glob("*.safetensors")) or any(folder.glob("*.bin"))
    return str(folder) if has_weights and (folder / "config.json").is_file() else None


def _hub_unreachable_reason(model_id: str, endpoint: str) -> str | None:
    """One quick request to the Hub; None when it answers, else why it could not be reached.

    huggingface_hub retries refused connections for ~25 s; this probe fails in seconds.
    """
    url = f"{endpoint.rstrip('/')}/api/models/{model_id}"
    try:
        with urllib.request.urlopen(url, timeout=_HUB_PROBE_TIMEOUT_SECONDS):  # noqa: S310 - Hub URL
            return None
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return f"the Hub at {endpoint} has no model named {model_id!r} (HTTP 404)"
        return None  # 401/403 (gated or private): reachable; the download reports the rest
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        reason = getattr(error, "reason", error)
        return f"the Hugging Face Hub at {endpoint} is unreachable ({reason})"


def _how_to_provide(model_id: str, reason: str) -> str:
    from huggingface_hub import constants

    cache_folder = f"models--{model_id.replace('/', '--')}"
    return (
        f"The weights of {model_id} are not in the local Hugging Face cache "
        f"({constants.HF_HUB_CACHE}) and cannot be downloaded: {reason}.\n"
        "Provide them in one of these ways, then run again:\n"
        f"  1. On a machine with internet access run `hf download {model_id}` (pip package "
        "huggingface_hub; older versions: `huggingface-cli download`), then copy its\n"
        f"     ~/.cache/huggingface/hub/{cache_folder} folder into {constants.HF_HUB_CACHE}/ "
        "here (or point HF_HOME at a copied cache).\n"
        f"  2. Or download the repository into a folder (`hf download {model_id} --local-dir "
        "FOLDER`) and name it: `make local MODEL_DIR=FOLDER`, or\n"
        "     `python -m tools.model_server --model-dir FOLDER ...`."
    )
