"""`make bench-model` runs and prints its table (figures are read by people, never asserted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.commands import run_tool

pytestmark = [pytest.mark.local, pytest.mark.model_server]


def test_the_model_benchmark_prints_a_row_per_model(model_server_python: Path) -> None:
    quick = ["--tokens", "4", "--prompt-tokens", "8", "--repeats", "1"]
    proc = run_tool(
        "tools.model_server.bench",
        *("--models", "tiny-test", "smollm2-135m", *quick),
        python=model_server_python,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    header, *rows = proc.stdout.splitlines()[-3:]
    assert header.split()[:5] == ["model", "params", "load", "prefill", "decode"]
    parsed = [row.split() for row in rows]
    assert [fields[0] for fields in parsed] == ["tiny-test", "smollm2-135m"]
    for name, _params, load, _prefill, rate, rate_unit, _answer, _rss, rss_unit in parsed:
        assert (rate_unit, rss_unit) == ("t/s", "MiB")
        assert float(rate) > 0
        # Only the embedded model loads weights (from its cache); the other is built.
        assert (load == "-") == (name == "tiny-test"), load
