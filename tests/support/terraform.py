"""Helpers of the stack tests that test modules import (conftest only holds fixtures)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tools.devstack import MIRROR_ENV, Terraform, TerraformError
from tools.paths import REPO_ROOT

# Folders that are Terraform modules in their own right: the root, each module, each example.
TERRAFORM_DIRS = [
    ".",
    *sorted(p.relative_to(REPO_ROOT).as_posix() for p in REPO_ROOT.glob("modules/*") if p.is_dir()),
    *sorted(
        p.relative_to(REPO_ROOT).as_posix() for p in REPO_ROOT.glob("examples/*") if p.is_dir()
    ),
]


def init(tf: Terraform) -> None:
    """``terraform init``, failing the test with a clear hint when providers are unreachable."""
    try:
        tf.init(backend=False)
    except TerraformError as exc:
        if not os.environ.get(MIRROR_ENV):
            pytest.fail(
                f"terraform init failed and {MIRROR_ENV} is not set. On a machine without access "
                f"to registry.terraform.io, set {MIRROR_ENV} to a filesystem mirror of the "
                f"hashicorp/aws provider (e.g. {MIRROR_ENV}=/opt/tf-plugins).\n{exc}"
            )
        raise


def name_adapter_layer_in_example(example_dir: Path, layer_arn: str) -> None:
    """Make an example (its module "langchain_tgi") run ``layer_arn`` as the adapter layer,
    through a Terraform override file in the staged copy: the example stays as users copy it."""
    (example_dir / "adapter_stand_in_override.tf").write_text(
        f'module "langchain_tgi" {{\n  adapter_layer_arn = "{layer_arn}"\n}}\n'
    )
