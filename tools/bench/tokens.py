"""How the functions' token estimate compares with real tokenizers (a `make bench` section).

The functions budget prompts with llm_app.model.tokens' estimate, which must never count fewer
tokens than the model's tokenizer. This measures it, offline, against the real tokenizer at hand:
the embedded model's (SmolLM2, a byte-level BPE that, like Llama's, gives each digit a token), on
English, Markdown, code, CSV, JSON and CJK text. The counting runs in the model server's venv
(transformers, tokenizers) with `functions` on its path, as Lambda's /var/task is:

    .venv-model-server/bin/python -m tools.bench.tokens   # prints the rows as JSON
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

from tools.paths import REPO_ROOT

MODEL_SERVER_PYTHON = REPO_ROOT / ".venv-model-server" / "bin" / "python"
HEADER = (
    "sample",
    "bytes",
    "real tokens",
    "estimate",
    "estimate / real",
    "bytes/3 / real (before)",
)
_PROSE = (
    "Peter and Elizabeth took a taxi to attend the night party in the city. While in the "
    "party, Elizabeth collapsed and was rushed to the hospital. Since she was diagnosed with "
    "a brain injury, the doctor told Peter to stay besides her until she gets well. "
    "Therefore, Peter stayed with her at the hospital for 3 days without leaving. "
)
_JAPANESE = (
    "東京は日本の首都であり、世界最大の都市圏の一つです。人口は約千四百万人で、政治、経済、"
    "文化の中心地として機能しています。"
)
_CHINESE = "北京是中华人民共和国的首都，是全国的政治中心、文化中心和国际交往中心。"  # noqa: RUF001 - a Chinese comma


def numeric_csv(rows: int, seed: int = 7) -> str:
    """Dates, amounts and account numbers: the kind of document a bytes-based guess misjudges."""
    rng = random.Random(seed)  # noqa: S311 - reproducible sample data
    lines = ["date,amount,account"]
    for _ in range(rows):
        lines.append(
            f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d},"
            f"{rng.randint(0, 999_999) / 100:.2f},{rng.randint(1000, 9999)}"
        )
    return "\n".join(lines)


def samples() -> dict[str, str]:
    def excerpt(path: str, chars: int = 6000) -> str:
        return (REPO_ROOT / path).read_text(encoding="utf-8")[:chars]

    return {
        "English prose": _PROSE * 8,
        "Markdown (README)": excerpt("README.md"),
        "Python code": excerpt("functions/qa/chains.py"),
        "CSV, numeric": numeric_csv(130),
        "JSON (images.json)": excerpt("modules/sagemaker-tgi/images.json"),
        "Japanese": _JAPANESE * 10,
        "Chinese": _CHINESE * 10,
    }


def _tokenizer() -> tuple[str, object]:
    """The embedded model's tokenizer: from the converted cache when there, else the GGUF."""
    from transformers import AutoTokenizer

    from tools.model_server import embedded

    model = embedded.find_embedded_model()
    folder = embedded.default_cache_dir() / model.cache_key
    if (folder / embedded.COMPLETE_MARKER).is_file():
        return embedded.EMBEDDED_MODEL_ID, AutoTokenizer.from_pretrained(folder)
    gguf = model.gguf_path
    return embedded.EMBEDDED_MODEL_ID, AutoTokenizer.from_pretrained(
        gguf.parent, gguf_file=gguf.name
    )


def measure() -> dict[str, object]:
    """Rows of the table (run in the model server's venv, `functions` on the path)."""
    from llm_app.model.tokens import estimate_tokens

    name, tokenizer = _tokenizer()
    rows = []
    for label, text in samples().items():
        real = len(tokenizer.encode(text, add_special_tokens=False))  # type: ignore[attr-defined]
        size = len(text.encode("utf-8"))
        estimate = estimate_tokens(text)
        rows.append(
            (
                label,
                str(size),
                str(real),
                str(estimate),
                f"{estimate / real:.2f}",
                f"{size / 3 / real:.2f}",
            )
        )
    return {"tokenizer": name, "rows": rows}


def section() -> tuple[str, list[tuple[str, ...]]]:
    """The bench's table: its title and rows (one row saying why, when it cannot run)."""
    if not MODEL_SERVER_PYTHON.exists():
        return "Token estimate against a real tokenizer", [
            ("skipped: no model server venv (make model-server-venv)", "", "", "", "", "")
        ]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "functions")}
    result = subprocess.run(
        [str(MODEL_SERVER_PYTHON), "-m", "tools.bench.tokens"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return "Token estimate against a real tokenizer", [(f"failed: {last}", *[""] * 5)]
    measured = json.loads(result.stdout)
    title = (
        f"Token estimate (llm_app.model.tokens) against {measured['tokenizer']}'s tokenizer "
        "(goal: estimate / real >= 1 on every row)"
    )
    return title, [tuple(row) for row in measured["rows"]]


if __name__ == "__main__":
    json.dump(measure(), sys.stdout)
