"""The artifacts' bytecode: unchecked hash-based .pyc (PEP 552) compiled by the runtime's CPython.

Lambda's /var/task and /opt are read-only, so without shipped bytecode every cold start
compiles every module it imports. The bytecode must come from the runtime's minor release (its
magic number), names the files where Lambda puts them (tracebacks then name the deployed file,
never the build folder), and is compiled so that the same sources give the same bytes.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

from tools.packaging import PackagingError

# The Lambda runtime's Python: python3.12.
PYTHON_VERSION = "3.12"
# Where Lambda puts a function's package, and a layer's python/ folder.
LAMBDA_TASK_ROOT = "/var/task"
LAMBDA_LAYER_PYTHON = "/opt/python"


def compiler_version() -> str:
    """The interpreter that compiles the bytecode, e.g. "CPython 3.12.1": recorded with the
    artifacts and part of their inputs, so another patch release rebuilds them."""
    return f"{platform.python_implementation()} {platform.python_version()}"


def check_compiler() -> None:
    """The bytecode must be the runtime's: CPython 3.12 (its magic number is per minor release;
    another would be ignored by Lambda's Python and every import compiled again)."""
    runtime = tuple(int(part) for part in PYTHON_VERSION.split("."))
    if platform.python_implementation() != "CPython" or sys.version_info[:2] != runtime:
        raise PackagingError(
            f"the packager runs on {compiler_version()}, but the bytecode must be compiled by "
            f"CPython {PYTHON_VERSION}, the Lambda runtime's: run it with the .venv's Python "
            "(`make package`), or name a 3.12 with PYTHON=/path/to/python3.12 when creating it."
        )


def compile_tree(root: Path, lambda_dir: str) -> None:
    """Compile every .py under `root` to unchecked hash-based .pyc files in __pycache__/.

    Unchecked: Lambda's files carry zip timestamps, and the runtime should trust the shipped
    bytecode without reading and hashing each source. A fresh interpreter with a fixed hash seed
    compiles the sorted files one by one, so the same sources give the same bytes (set and
    frozenset constants are ordered by string hashes). `lambda_dir` is where `root` lands on
    Lambda; the code objects name files there.
    """
    check_compiler()
    script = (
        "import compileall, py_compile, sys\n"
        "ok = compileall.compile_dir(sys.argv[1], ddir=sys.argv[2], quiet=1, workers=1,\n"
        "    invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)\n"
        "sys.exit(0 if ok else 1)\n"
    )
    # Not -I: it would ignore PYTHONHASHSEED; the environment is only that, and -S -s keep
    # site-packages out.
    env = {"PYTHONHASHSEED": "0"}
    result = subprocess.run(
        [sys.executable, "-S", "-s", "-c", script, str(root), lambda_dir],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if result.returncode != 0:
        raise PackagingError(f"compiling {root.name} failed:\n{result.stdout}{result.stderr}")
