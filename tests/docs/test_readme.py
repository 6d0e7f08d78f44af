"""The commands and names the README and docs/ mention must exist: drifting docs mislead.

The README is the user's page and stays short; the contract (requests, errors, settings) is
docs/api.md, whose settings tables are checked against the code and main.tf here."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import shlex
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from llm_app.config import Settings
from llm_app.errors import AppError
from qa.document_qa import MAX_DOCUMENTS
from qa.uploads import MULTIPART_FORM_DATA, UPLOAD_FIELDS, parse_upload
from tests.support.canned_http import Received, curl_forms
from tests.support.documents import minimal_pdf
from tools.paths import REPO_ROOT as ROOT

README = (ROOT / "README.md").read_text()
API = (ROOT / "docs" / "api.md").read_text()
# The README is the user's page: the reference lives in docs/ (issue 20 moved it there).
README_MAX_LINES = 600
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


def doc_table(text: str, header_end: str) -> dict[str, list[str]]:
    """The table whose header row ends with ``header_end``: {`NAME`: other cells}."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.rstrip().endswith(f"| {header_end} |"))
    rows: dict[str, list[str]] = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        name, *cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        rows[name.strip("`")] = cells
    return rows


SET_BY_TERRAFORM = doc_table(API, "Set by Terraform from")
FIXED = doc_table(API, "Why fixed")
# Set by modules/lambda-url with response_streaming = true (the adapter's own settings).
ADAPTER = doc_table(API, "What for")
MAIN_TF = (ROOT / "main.tf").read_text()
# Environment variables the root module gives the functions: `NAME = expression` lines.
TF_ENVIRONMENT = dict(re.findall(r"^\s*([A-Z][A-Z0-9_]*)\s*=\s*(.+)$", MAIN_TF, flags=re.M))
FIELDS = {f.name.upper(): f for f in dataclasses.fields(Settings)}


def test_every_function_setting_is_in_one_settings_table():
    for name in FIELDS:
        tables = [name in table for table in (SET_BY_TERRAFORM, FIXED, ADAPTER)]
        assert tables.count(True) == 1, f"docs/api.md: where is {name}?"
    named = SET_BY_TERRAFORM.keys() | FIXED.keys()
    assert named - FIELDS.keys() <= {
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_LOG_LEVEL",
        "POWERTOOLS_METRICS_NAMESPACE",
    }


@pytest.mark.parametrize("setting", sorted(SET_BY_TERRAFORM))
def test_a_setting_said_to_be_set_by_terraform_is_set_from_its_variables(setting):
    assert setting in TF_ENVIRONMENT, f"docs/api.md says Terraform sets {setting}; main.tf does not"
    expression = TF_ENVIRONMENT[setting]
    for local in re.findall(r"local\.(\w+)", expression):  # one level of locals
        expression += " " + " ".join(re.findall(rf"^\s*{local}\s*=\s*(.+)$", MAIN_TF, re.M))
    variables = declared("variable", ROOT / "variables.tf")
    named = set(re.findall(r"`([a-z_]+)`", SET_BY_TERRAFORM[setting][1])) & variables
    for variable in named:
        assert f"var.{variable}" in expression, f"{setting} is not set from {variable}"


@pytest.mark.parametrize("setting", sorted(FIXED))
def test_a_setting_said_to_be_fixed_is_not_set_by_terraform(setting):
    assert setting not in TF_ENVIRONMENT, f"docs/api.md says Terraform leaves {setting} alone"


@pytest.mark.parametrize("setting", sorted(set(FIELDS) & (SET_BY_TERRAFORM.keys() | FIXED.keys())))
def test_the_settings_defaults_are_the_functions(setting):
    cell = {**SET_BY_TERRAFORM, **FIXED}[setting][0]
    default = FIELDS[setting].default
    if not cell or (isinstance(default, str) and " " in cell):
        return  # no default (required, or set from the deployment), or described in words
    first = cell.split()[0]
    if isinstance(default, bool):
        assert first == str(default).lower()
    elif isinstance(default, int | float):
        assert float(first) == default
    else:
        assert first == default


ADAPTER_SETTINGS = doc_table(API, "What for")
LAMBDA_URL_TF = (ROOT / "modules" / "lambda-url" / "main.tf").read_text()


@pytest.mark.parametrize("setting", sorted(ADAPTER_SETTINGS))
def test_an_adapter_setting_is_set_as_docs_api_says(setting):
    value = ADAPTER_SETTINGS[setting][0].strip("`")
    where = MAIN_TF + LAMBDA_URL_TF
    assert re.search(rf'^\s*{setting}\s*=\s*"{re.escape(value)}"', where, re.M), (
        f"docs/api.md says {setting} is {value}; main.tf and modules/lambda-url do not set it so"
    )


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


def test_the_readme_stays_the_users_page():
    lines = len(README.splitlines())
    assert lines <= README_MAX_LINES, (
        f"README.md has {lines} lines (at most {README_MAX_LINES}): move reference to docs/"
    )
    assert "](docs/api.md)" in README


def test_the_readme_shows_the_streaming_curl():
    assert re.search(r"curl -N .*\n(?:.*\\\n)*.*-H 'accept: text/event-stream'", CODE_BLOCKS)


# docs/api.md's `curl -F` tables: the fields the QA function reads, and its refusals.
FORM_FIELDS = doc_table(API, "What it is")
FORM_REFUSALS = {row.split("`")[0]: cells for row, cells in doc_table(API, "`code`").items()}


def test_the_form_fields_are_the_ones_the_qa_function_reads():
    assert tuple(FORM_FIELDS) == UPLOAD_FIELDS
    assert f"at most {MAX_DOCUMENTS}" in FORM_FIELDS["document"][0]
    assert f"`{MULTIPART_FORM_DATA}`" in API


@pytest.fixture(scope="module")
def curl_form(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Received]]:
    """curl -F in a folder with the files the refusals table sends."""
    folder = tmp_path_factory.mktemp("form-files")
    (folder / "notes.txt").write_text("Peter stayed 3 days.\n")
    (folder / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    (folder / "scan.pdf").write_bytes(minimal_pdf())  # a page without text
    (folder / "empty.txt").write_bytes(b"")
    with curl_forms(folder) as send:
        yield send


@pytest.mark.parametrize("form", sorted(FORM_REFUSALS))
def test_each_form_refusal_is_the_qa_functions(form: str, curl_form: Callable[..., Received]):
    sent = curl_form(*shlex.split(form)[1::2])  # the values of `-F value -F value ...`
    with pytest.raises(AppError) as refused:
        parse_upload(sent.body, sent.headers["content-type"], Settings(endpoint_name="docs"))
    status, code = (cell.strip("`") for cell in FORM_REFUSALS[form])
    assert (refused.value.status, refused.value.code.value) == (int(status), code)
