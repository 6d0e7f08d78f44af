"""The commands and names the README and docs/ mention must exist: drifting docs mislead."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import subprocess
from pathlib import Path

import pytest

from llm_app.config import Settings
from tools.paths import REPO_ROOT as ROOT

README = (ROOT / "README.md").read_text()
DOC_PAGES = {
    path.relative_to(ROOT).as_posix(): path.read_text()
    for path in [
        *sorted((ROOT / "docs").glob("*.md")),
        ROOT / "tools" / "model_server" / "README.md",
    ]
}
DOCS = "\n".join([README, *DOC_PAGES.values()])
CODE_BLOCKS = "\n".join(re.findall(r"```(?:bash|sh)\n(.*?)```", DOCS, flags=re.S))


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
    mentioned = set(re.findall(r"\bmake ([a-z][\w-]*)", CODE_BLOCKS + DOCS))
    assert mentioned, "the README shows no make command"
    missing = mentioned - make_targets()
    assert not missing, f"README mentions make targets that `make help` does not list: {missing}"


def test_every_terraform_variable_in_the_readme_is_declared():
    mentioned = set(re.findall(r"-var[ =]([a-z_]+)=", DOCS))
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


def test_every_docs_page_is_linked_from_the_readme():
    for page in DOC_PAGES:
        if page.startswith("docs/"):
            assert f"]({page})" in README, f"the README links no {page}"


def test_every_tools_module_the_docs_run_exists():
    mentioned = set(re.findall(r"python -m (tools(?:\.\w+)+)", DOCS))
    assert {"tools.model_server", "tools.function_urls", "tools.devstack"} <= mentioned
    missing = {name for name in mentioned if importlib.util.find_spec(name) is None}
    assert not missing, f"docs run modules that do not exist: {missing}"


def test_every_repository_path_the_docs_name_exists():
    top = "functions|tools|tests|modules|examples|requirements|scripts|docs"
    mentioned = set(re.findall(rf"`((?:{top})/[\w./-]*)`", DOCS))
    assert "tools/packaging/build.py" in mentioned
    missing = {path for path in mentioned if not (ROOT / path).exists()}
    assert not missing, f"docs name paths that do not exist: {missing}"
