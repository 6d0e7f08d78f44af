"""Fixtures of the stack tests: the terraform CLI, staged copies of the .tf tree, moto.

Terraform never runs in the working tree: each fixture stages a copy of the .tf files in a
temporary folder, so no .terraform/, lock file or state lands in the repository. Providers come
from TF_PROVIDER_MIRROR when it is set (offline machines, CI here), else from the registry;
either way through one plugin cache, so each init after the first takes about half a second.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.tools import missing_tool
from tools.devstack import MotoServer, aws_env, stage_tree, terraform_env


@pytest.fixture(scope="session")
def terraform_bin() -> str:
    path = shutil.which("terraform")
    if path is None:
        missing_tool(
            "the terraform CLI is not on PATH (https://developer.hashicorp.com/terraform/install)"
        )
    return path


@pytest.fixture(scope="session")
def tf_env(terraform_bin: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for terraform: CLI config (mirror + plugin cache), non-interactive."""
    env = terraform_env(tmp_path_factory.mktemp("terraform-cli"))
    # Credentials or endpoints of the developer's shell must never reach a test run.
    for name in list(env):
        if name.startswith("AWS_"):
            del env[name]
    return env


@pytest.fixture(scope="session")
def staged(tmp_path_factory: pytest.TempPathFactory):
    """Factory: a fresh staged copy of the .tf tree per call (own .terraform, own state)."""

    def stage(label: str) -> Path:
        return stage_tree(tmp_path_factory.mktemp(label))

    return stage


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with MotoServer(log_path=log) as server:
        yield server


@pytest.fixture(scope="session")
def moto_env(tf_env: dict[str, str], moto: MotoServer):
    """Factory: the terraform environment pointed at moto in a given region."""

    def env(region: str) -> dict[str, str]:
        return {**tf_env, **aws_env(moto.url, region=region)}

    return env
