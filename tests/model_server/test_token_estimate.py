"""The functions' token estimate never counts fewer tokens than a real tokenizer.

Runs what `make bench` prints (tools/bench/tokens.py) in the model server's venv: the embedded
model's own tokenizer (SmolLM2, digits one token each, like Llama's) on English, Markdown, code,
a numeric CSV, JSON, Japanese and Chinese.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tools.paths import REPO_ROOT


def test_the_estimate_holds_on_every_kind_of_text(model_server_python: Path) -> None:
    result = subprocess.run(
        [str(model_server_python), "-m", "tools.bench.tokens"],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "functions")},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    measured = json.loads(result.stdout)
    rows = {row[0]: (int(row[1]), int(row[2]), int(row[3])) for row in measured["rows"]}
    assert "CSV, numeric" in rows
    assert "Japanese" in rows
    for sample, (_size, real, estimate) in rows.items():
        assert estimate >= real, f"{sample}: estimate {estimate} < {real} real tokens"
    # About a token a byte on numbers: the bytes/3 guess it replaces counted a third of them.
    size, real, _estimate = rows["CSV, numeric"]
    assert real > 0.9 * size
