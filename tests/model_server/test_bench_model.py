"""`make bench-model` runs and prints its table (figures are read by people, never asserted)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tools.paths import REPO_ROOT

pytestmark = [pytest.mark.local, pytest.mark.model_server]


def test_the_model_benchmark_prints_a_row_per_model(model_server_python: Path) -> None:
    quick = ["--models", "tiny-test", "--tokens", "4", "--prompt-tokens", "8", "--repeats", "1"]
    proc = subprocess.run(
        [str(model_server_python), "-m", "tools.model_server.bench", *quick],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    header, row = proc.stdout.splitlines()[-2:]
    assert header.split()[:4] == ["model", "params", "prefill", "decode"]
    name, _params, _prefill, rate, rate_unit, _answer, _rss, rss_unit = row.split()
    assert (name, rate_unit, rss_unit) == ("tiny-test", "t/s", "MiB")
    assert float(rate) > 0
