"""`make bench` runs end to end on the built artifacts (figures are printed, never asserted)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.commands import run_tool

pytestmark = pytest.mark.packaging


def test_the_benchmark_prints_its_tables_for_the_built_artifacts(built_artifacts: Path) -> None:
    quick = ["--cold-runs", "1", "--warm-requests", "20", "--stream-requests", "3"]
    skipped = ["--skip-variants", "--skip-build-times", "--skip-bytecode"]
    result = run_tool(
        "tools.bench", "--build-dir", str(built_artifacts), *quick, *skipped, timeout=600
    )

    assert result.returncode == 0, result.stderr
    rows = ("layer.zip", "cold: chat", "cold: qa", "cold: floor", "cold: floor, no .pyc")
    for row in (*rows, "warm: chat", "warm: qa"):
        assert row in result.stdout
    assert "through awslambdaric" in result.stdout  # AWS's own runtime client ran the cold starts
    assert "Powertools Logger, after the app's imports" in result.stdout
    assert "langchain_core" in result.stdout  # the import profile names the heavy packages
    assert "Token estimate" in result.stdout  # measured against a real tokenizer, or why not
    # The section raises if tracing-off imported the X-Ray SDK; it says so when it did not.
    assert re.search(r"tracing off: X-Ray SDK imported +never", result.stdout)
    # The streaming path through the local Lambda Web Adapter, where namespaces are allowed.
    if "Streaming path skipped" not in result.stdout:
        for row in ("first token: minimal", "cold, streaming: minimal", "in this loop"):
            assert row in result.stdout
