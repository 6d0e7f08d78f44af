"""The README's commands and names must exist: a doc that drifts from the code misleads users."""

from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path

import pytest

from llm_app.config import Settings
from tools.paths import REPO_ROOT as ROOT

README = (ROOT / "README.md").read_text()
CODE_BLOCKS = "\n".join(re.findall(r"```(?:bash|sh)\n(.*?)```", README, flags=re.S))


def declared(kind: str, path: Path) -> set[str]:
    return set(re.findall(rf'^{kind} "([^"]+)"', path.read_text(), flags=re.M))


def make_targets() -> set[str]:
    listing = subprocess.run(
        ["make", "--no-print-directory", "help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(re.findall(r"^\s+(?:\x1b\[\d+m)?([\w-]+)", listing, flags=re.M))


def test_every_make_command_in_the_readme_is_a_listed_target():
    mentioned = set(re.findall(r"\bmake ([a-z][\w-]*)", CODE_BLOCKS + README))
    assert mentioned, "the README shows no make command"
    missing = mentioned - make_targets()
    assert not missing, f"README mentions make targets that `make help` does not list: {missing}"


def test_every_terraform_variable_in_the_readme_is_declared():
    mentioned = set(re.findall(r"-var[ =]([a-z_]+)=", README))
    missing = mentioned - declared("variable", ROOT / "variables.tf")
    assert not missing, f"README passes undeclared variables: {missing}"


def test_every_terraform_output_in_the_readme_is_declared():
    mentioned = set(re.findall(r"terraform output (?:-raw |-json )?([a-z_]+)", README))
    assert {"chat_url", "qa_url"} <= mentioned
    missing = mentioned - declared("output", ROOT / "outputs.tf")
    assert not missing, f"README reads undeclared outputs: {missing}"


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(Settings)])
def test_every_function_setting_is_documented(field):
    assert f"`{field.upper()}`" in README
