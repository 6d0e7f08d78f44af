"""The running `make local` stack the local tests share: started once for the folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.local_stack import RunningStack, local_stack


@pytest.fixture(scope="package")
def stack(
    model_server_python: Path, built_artifacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningStack]:
    tmp_path = tmp_path_factory.mktemp("make-local")
    with local_stack(model_server_python, built_artifacts, tmp_path, own_moto=True) as running:
        yield running
