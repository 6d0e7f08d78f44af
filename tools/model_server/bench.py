"""How fast the local model server can generate on this CPU: ``make bench-model``.

Run with the model server's interpreter (torch + transformers)::

    .venv-model-server/bin/python -m tools.model_server.bench [--tokens 64] [--dtype float32]

No weights are downloaded. The embedded model (SmolLM2-135M-Instruct, what ``make local``
serves by default) runs with its real weights, loaded from the converted cache exactly as the
model server loads them (converted first when the cache lacks it; the load column is the load
from the cache). The others are built with random weights from their architecture
(TinyLlama-1.1B-Chat's published config, and the 2-layer model the tests build): time and
memory per token depend on the shapes, not on the values of the weights, so the TinyLlama
figures estimate ``make local MODEL=TinyLlama/TinyLlama-1.1B-Chat-v1.0``. Every run generates
exactly ``--tokens`` new tokens (EOS is ignored) after a prompt of ``--prompt-tokens``, greedily,
as the server does, and prints load time, prefill time, decode speed, and the process's peak
memory.
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# TinyLlama/TinyLlama-1.1B-Chat-v1.0's config.json (architecture fields only).
TINYLLAMA_SHAPE = {
    "vocab_size": 32000,
    "hidden_size": 2048,
    "intermediate_size": 5632,
    "num_hidden_layers": 22,
    "num_attention_heads": 32,
    "num_key_value_heads": 4,
    "max_position_embeddings": 2048,
    "rms_norm_eps": 1e-5,
}
# The shape tests/support/tiny_model.py builds (its tokenizer has 400 tokens).
TINY_TEST_SHAPE = {
    "vocab_size": 400,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 2048,
}
EMBEDDED = "smollm2-135m"
# Smallest first, so the peak memory column grows with each model.
MODELS = ("tiny-test", EMBEDDED, "tinyllama-1.1b")

# Builds a model in the given torch dtype; returns it and the seconds its weights took to load
# (None when it was built from a shape and nothing was loaded).
Loader = Callable[[Any], tuple[Any, float | None]]


@dataclass(frozen=True)
class Figures:
    name: str
    parameters: int
    load_seconds: float | None
    prefill_ms: float
    decode_tokens_per_second: float
    peak_rss_mib: float


def peak_rss_mib() -> float:
    # ru_maxrss is KiB on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def random_weights(shape: dict[str, int | float]) -> Loader:
    def load(dtype: Any) -> tuple[Any, float | None]:
        from transformers import LlamaConfig, LlamaForCausalLM

        config = LlamaConfig(**shape, bos_token_id=1, eos_token_id=2, pad_token_id=2)
        return LlamaForCausalLM(config).to(dtype), None

    return load


def embedded_weights(cache_dir: Path) -> Loader:
    def load(dtype: Any) -> tuple[Any, float | None]:
        from transformers import AutoModelForCausalLM

        from tools.model_server.embedded import converted_model_folder

        folder = converted_model_folder(cache_dir, log=lambda line: print(line, flush=True))
        started = time.perf_counter()
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, local_files_only=True)
        return model, time.perf_counter() - started

    return load


def measure(name: str, load: Loader, args: argparse.Namespace) -> Figures:
    import torch

    torch.manual_seed(0)
    model, load_seconds = load(getattr(torch, args.dtype))
    model.eval()
    parameters = sum(p.numel() for p in model.parameters())

    prompt = torch.randint(3, int(model.config.vocab_size), (1, args.prompt_tokens))
    mask = torch.ones_like(prompt)

    def generate(new_tokens: int) -> float:
        started = time.perf_counter()
        with torch.inference_mode():
            output = model.generate(
                input_ids=prompt,
                attention_mask=mask,
                do_sample=False,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,  # never stop early on EOS
                pad_token_id=model.config.eos_token_id,
            )
        assert output.shape[1] == args.prompt_tokens + new_tokens
        return time.perf_counter() - started

    generate(2)  # warm-up: first-call allocations and kernel selection
    # Prefill cost = a one-token generation; decode speed from the difference to a long one.
    prefill = statistics.median(generate(1) for _ in range(args.repeats))
    full = statistics.median(generate(args.tokens) for _ in range(args.repeats))
    decode_rate = (args.tokens - 1) / max(full - prefill, 1e-9)
    # The model is freed with this frame, before the next one is built.
    return Figures(
        name=name,
        parameters=parameters,
        load_seconds=load_seconds,
        prefill_ms=prefill * 1000,
        decode_tokens_per_second=decode_rate,
        peak_rss_mib=peak_rss_mib(),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--tokens", type=int, default=64, help="new tokens per generation")
    parser.add_argument("--prompt-tokens", type=int, default=300, help="prompt length in tokens")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: all cores)")
    parser.add_argument(
        "--cache-dir", type=Path, help="the embedded model's cache (default: the model server's)"
    )
    args = parser.parse_args(argv)
    if args.tokens < 2 or args.prompt_tokens < 1 or args.repeats < 1:
        parser.error("--tokens must be at least 2, --prompt-tokens and --repeats at least 1")

    import torch

    from tools.model_server.embedded import default_cache_dir

    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__} on {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, {args.dtype}; prompt {args.prompt_tokens} tokens, "
        f"{args.tokens} new tokens, median of {args.repeats}",
        flush=True,
    )
    loaders = {
        "tiny-test": random_weights(TINY_TEST_SHAPE),
        EMBEDDED: embedded_weights(args.cache_dir or default_cache_dir()),
        "tinyllama-1.1b": random_weights(TINYLLAMA_SHAPE),
    }
    rows = [measure(name, loaders[name], args) for name in MODELS if name in args.models]
    print(
        f"{'model':<16} {'params':>8} {'load':>7} {'prefill':>10} {'decode':>12} "
        f"{'700 tokens':>11} {'peak RSS':>10}"
    )
    for row in rows:
        # What a default max_new_tokens=700 answer would take, prompt included.
        answer_seconds = row.prefill_ms / 1000 + 699 / row.decode_tokens_per_second
        load = "-" if row.load_seconds is None else f"{row.load_seconds:.1f}s"
        print(
            f"{row.name:<16} {row.parameters / 1e6:>7.1f}M {load:>7} {row.prefill_ms:>8.0f}ms "
            f"{row.decode_tokens_per_second:>8.1f} t/s {answer_seconds:>10.1f}s "
            f"{row.peak_rss_mib:>7.0f} MiB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
