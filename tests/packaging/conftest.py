"""Fixtures of the packaging tests: the built artifacts unzipped as Lambda lays them out."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.lambda_sandbox import artifacts as sandbox


@pytest.fixture(scope="session")
def unpacked(built_artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> sandbox.Unpacked:
    """chat.zip and qa.zip in task/<name>/, layer.zip in opt/: the zips and nothing else."""
    return sandbox.unpack(built_artifacts, tmp_path_factory.mktemp("lambda"))
