"""Running one of the repository's tools as a test's subprocess, the way `make` runs it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from tools.paths import REPO_ROOT


def run_tool(
    module: str,
    *args: str,
    python: Path | str = sys.executable,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """``python -m MODULE ARGS`` from the repository root, its output captured as text.

    The exit status is not checked: the test asserts it, with the output in its message.
    """
    return subprocess.run(
        [str(python), "-m", module, *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
