"""Where things are, and which interpreter runs the functions. Standard library only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# The one Python finder: shell, because `make` needs it before any venv exists.
FIND_PYTHON = REPO_ROOT / "scripts" / "find-python.sh"


def find_python(version: str = "3.12") -> str:
    """An interpreter of `version` ("3.12": the Lambda runtime's): this one if it matches."""
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == version:
        return sys.executable
    found = subprocess.run([str(FIND_PYTHON), version], capture_output=True, text=True, check=False)
    if found.returncode != 0:
        raise RuntimeError(found.stderr.strip() or f"Python {version} not found")
    return found.stdout.strip()
