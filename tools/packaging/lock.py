#!/usr/bin/env python3
"""Regenerate the pinned, hash-checked requirements (`make lock`; `make lock UPGRADE=1`).

- functions/requirements.txt, from functions/requirements.in: resolved for the Lambda runtime
  (CPython 3.12, manylinux x86_64), so it has no environment markers left for pip to evaluate
  against the build machine. Each pin lists the hashes of all its files, not only the Lambda
  wheel, so the same file installs on developers' macOS and Linux machines too.
- requirements/dev.txt, from requirements/dev.in: the development tools, resolved together with
  functions/requirements.in for every platform, the runtime pins as constraints; it `-r`-includes
  the runtime file instead of repeating its pins. pip checks hashes for all requirements or for
  none, so the dev file carries hashes too.

Existing pins are kept unless a requirement changed or UPGRADE=1 (uv's --upgrade) is given.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tools.packaging.build import PYTHON_VERSION, canonical_name, pinned_requirements
from tools.paths import REPO_ROOT

RUNTIME_IN = REPO_ROOT / "functions" / "requirements.in"
RUNTIME_TXT = REPO_ROOT / "functions" / "requirements.txt"
DEV_IN = REPO_ROOT / "requirements" / "dev.in"
DEV_TXT = REPO_ROOT / "requirements" / "dev.txt"
# The runtime's glibc (Amazon Linux 2023); the resolver only considers wheels that load there.
LAMBDA_PLATFORM = "x86_64-manylinux_2_34"
HEADER = "# Pinned with hashes by `make lock` from {source}; edit that file, not this one.\n"


def _uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if not found:
        sys.exit("error: uv is not installed; run `make venv` (requirements/dev.in lists it).")
    return found


def _compile(cwd: Path, sources: list[str], output: Path, *extra: str, upgrade: bool) -> str:
    """Run `uv pip compile`, keeping the pins already in `output` unless upgrading.

    Paths are relative to `cwd`, as uv quotes them in the `# via` comments it writes.
    """
    command = [
        _uv(), "pip", "compile", *sources, "--output-file", str(output),
        "--python-version", PYTHON_VERSION, "--generate-hashes",
        "--no-header", "--quiet", *extra,
        *(["--upgrade"] if upgrade else []),
    ]  # fmt: skip
    subprocess.run(command, check=True, cwd=cwd)
    return output.read_text(encoding="utf-8")


def lock(*, upgrade: bool) -> None:
    runtime = _compile(
        RUNTIME_IN.parent,
        [RUNTIME_IN.name],
        RUNTIME_TXT,
        "--python-platform", LAMBDA_PLATFORM,
        upgrade=upgrade,
    )  # fmt: skip
    RUNTIME_TXT.write_text(HEADER.format(source="requirements.in") + runtime, encoding="utf-8")
    runtime_names = sorted({name for name, _ in pinned_requirements(runtime)})

    with tempfile.TemporaryDirectory() as scratch:
        draft = Path(scratch) / "dev.txt"
        if DEV_TXT.exists():  # uv keeps the pins of the file it writes to; -r is ours to add.
            pins = [line for line in DEV_TXT.read_text().splitlines() if not line.startswith("-r")]
            draft.write_text("\n".join(pins) + "\n", encoding="utf-8")
        dev = _compile(
            DEV_IN.parent,
            # With the runtime's direct requirements, so their platform-specific dependencies
            # (none today) get pinned for developers' machines too.
            [DEV_IN.name, "../functions/requirements.in"],
            draft,
            "--universal",
            "--constraint", "../functions/requirements.txt",
            *(arg for name in runtime_names for arg in ("--no-emit-package", name)),
            upgrade=upgrade,
        )  # fmt: skip
    DEV_TXT.write_text(
        HEADER.format(source="dev.in") + "-r ../functions/requirements.txt\n" + dev,
        encoding="utf-8",
    )
    dev_names = {canonical_name(line.split("==")[0]) for line in dev.splitlines() if "==" in line}
    print(
        f"locked {len(runtime_names)} runtime pins in {RUNTIME_TXT.relative_to(REPO_ROOT)} and "
        f"{len(dev_names)} development pins in {DEV_TXT.relative_to(REPO_ROOT)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upgrade", action="store_true", help="move every pin to its newest")
    lock(upgrade=parser.parse_args().upgrade)


if __name__ == "__main__":
    main()
