"""``make local``'s first step: what can fail cheaply fails before the environments are built.

Building the model server's venv and the packages takes minutes on a fresh clone; a missing
Terraform CLI, an unreachable provider registry or a stack already running would otherwise
surface only after them. This runs ``terraform init`` of the root module in the folder
``local.up`` applies it from, so the providers it installs are the ones the apply uses (the
work is not repeated), and it needs no venv: the standard library only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from tools.devstack.terraform import MIRROR_ENV, Terraform, TerraformError, terraform_env
from tools.local import state

REPO_ROOT = state.REPO_ROOT
ALREADY_RUNNING = (
    "a local stack is already running (pid {pid}); stop it with `make local-down` first"
)


def link_root_module(folder: Path) -> Path:
    """A folder of symlinks to the repository's root module, to run Terraform in.

    The configuration is the repository's own files, not a copy; what ``terraform init`` and
    ``apply`` write (``.terraform/``, the lock file, the state) lands in this folder instead of
    the working tree, where it could clash with a real deployment's. Any state left by an
    earlier run is dropped: moto starts empty, so it would describe nothing.
    """
    if folder.exists():
        for entry in folder.iterdir():
            if entry.is_symlink() or entry.name.startswith("terraform.tfstate"):
                entry.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    for entry in REPO_ROOT.iterdir():
        if entry.name.startswith(".") or entry.name.startswith("terraform.tfstate"):
            continue  # .git, .local, .terraform, venvs, a real deployment's state
        (folder / entry.name).symlink_to(entry)
    committed_lock = REPO_ROOT / ".terraform.lock.hcl"
    if committed_lock.is_file():  # the providers the repository pins; init may add hashes
        shutil.copyfile(committed_lock, folder / committed_lock.name)
    return folder


def running_stack(state_dir: Path) -> int | None:
    """The pid of a ``local.up`` that still runs from ``state_dir``, if any."""
    recorded = state.read_state(state_dir)
    pid = recorded.get("pid") if recorded else None
    return pid if isinstance(pid, int) and state.is_running(pid, "local.up") else None


def check(state_dir: Path) -> str | None:
    """What stops ``make local`` from starting, or None."""
    pid = running_stack(state_dir)
    if pid is not None:
        return ALREADY_RUNNING.format(pid=pid)
    if shutil.which("terraform") is None:
        return (
            "the terraform CLI is not on PATH (https://developer.hashicorp.com/terraform/install)"
        )
    try:
        env = terraform_env(state_dir / "terraform")
        Terraform(link_root_module(state_dir / "root"), env).init()
    except FileNotFoundError as error:  # TF_PROVIDER_MIRROR names no folder
        return str(error)
    except TerraformError as error:
        return f"Terraform cannot install the root module's providers: {error}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.local.preflight", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--state-dir", type=Path, default=state.DEFAULT_STATE_DIR)
    # The Makefile passes LOCAL_ARGS, meant for local.up: only its --state-dir matters here.
    args, _ = parser.parse_known_args(argv)
    mirror = os.environ.get(MIRROR_ENV)
    source = f"the mirror {MIRROR_ENV}={mirror}" if mirror else "the Terraform registry"
    print(f"==> checking that Terraform can install the providers (from {source})", flush=True)
    started = time.monotonic()
    problem = check(args.state_dir.resolve())
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    print(f"    done in {time.monotonic() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
