#!/usr/bin/env python3
"""How fast the local model server can generate on this CPU: ``make bench-model``.

Run with the model server's interpreter (torch + transformers)::

    .venv-model-server/bin/python -m tools.model_server.bench [--tokens 64] [--dtype float32]

No weights are downloaded: each model is built with random weights from its architecture
(TinyLlama-1.1B-Chat's published config, and the 2-layer model the tests build). Time and
memory per token depend on the shapes, not on the values of the weights, so the TinyLlama
figures estimate what ``make local`` does with the real weights. Every run generates exactly
``--tokens`` new tokens (EOS is ignored) after a prompt of ``--prompt-tokens``, greedily, as the
server does, and prints prefill time, decode speed, and the process's peak memory.
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import sys
import time
from dataclasses import dataclass

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
SHAPES = {"tinyllama-1.1b": TINYLLAMA_SHAPE, "tiny-test": TINY_TEST_SHAPE}


@dataclass(frozen=True)
class Figures:
    name: str
    parameters: int
    prefill_ms: float
    decode_tokens_per_second: float
    peak_rss_mib: float


def peak_rss_mib() -> float:
    # ru_maxrss is KiB on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def measure(name: str, shape: dict[str, int | float], args: argparse.Namespace) -> Figures:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    dtype = getattr(torch, args.dtype)
    torch.manual_seed(0)
    config = LlamaConfig(**shape, bos_token_id=1, eos_token_id=2, pad_token_id=2)
    model = LlamaForCausalLM(config).to(dtype).eval()
    parameters = sum(p.numel() for p in model.parameters())

    prompt = torch.randint(3, int(shape["vocab_size"]), (1, args.prompt_tokens))
    mask = torch.ones_like(prompt)

    def generate(new_tokens: int) -> float:
        started = time.perf_counter()
        with torch.inference_mode():
            output = model.generate(
                input_ids=prompt,
                attention_mask=mask,
                do_sample=False,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,  # random weights: never stop early on EOS
                pad_token_id=2,
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
        prefill_ms=prefill * 1000,
        decode_tokens_per_second=decode_rate,
        peak_rss_mib=peak_rss_mib(),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=sorted(SHAPES), default=list(SHAPES))
    parser.add_argument("--tokens", type=int, default=64, help="new tokens per generation")
    parser.add_argument("--prompt-tokens", type=int, default=300, help="prompt length in tokens")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: all cores)")
    args = parser.parse_args(argv)
    if args.tokens < 2 or args.prompt_tokens < 1 or args.repeats < 1:
        parser.error("--tokens must be at least 2, --prompt-tokens and --repeats at least 1")

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__} on {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, {args.dtype}; prompt {args.prompt_tokens} tokens, "
        f"{args.tokens} new tokens, median of {args.repeats}",
        flush=True,
    )
    # Smallest first, so the peak memory column grows with each model.
    rows = [measure(name, SHAPES[name], args) for name in sorted(args.models, key=_size)]
    header = (
        f"{'model':<16} {'params':>8} {'prefill':>10} {'decode':>12} "
        f"{'700 tokens':>11} {'peak RSS':>10}"
    )
    print(header)
    for row in rows:
        # What a default max_new_tokens=700 answer would take, prompt included.
        answer_seconds = row.prefill_ms / 1000 + 699 / row.decode_tokens_per_second
        print(
            f"{row.name:<16} {row.parameters / 1e6:>7.1f}M {row.prefill_ms:>8.0f}ms "
            f"{row.decode_tokens_per_second:>8.1f} t/s {answer_seconds:>10.1f}s "
            f"{row.peak_rss_mib:>7.0f} MiB"
        )
    return 0


def _size(name: str) -> int:
    shape = SHAPES[name]
    return int(shape["hidden_size"]) * int(shape["num_hidden_layers"])


if __name__ == "__main__":
    sys.exit(main())
