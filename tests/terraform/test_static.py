"""Static checks of the Terraform code: format, validate everywhere, checkov, generated docs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.commands import run_tool
from tests.support.terraform import REPO_ROOT, TERRAFORM_DIRS, init
from tests.support.tools import missing_tool
from tools.devstack import Terraform, TerraformError
from tools.tf_docs.render import read_module, render

pytestmark = pytest.mark.stack


def test_terraform_fmt(terraform_bin: str, tf_env: dict[str, str], staged) -> None:
    tree = staged("fmt")
    proc = subprocess.run(
        [terraform_bin, "fmt", "-check", "-recursive", "-diff", "-no-color", str(tree)],
        env=tf_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, f"run `terraform fmt -recursive`:\n{proc.stdout}{proc.stderr}"


@pytest.fixture(scope="module")
def validations(tf_env: dict[str, str], staged) -> dict[str, str | None]:
    """init + validate of every Terraform folder, two at a time; folder -> error or None."""
    tree = staged("validate")

    def check(folder: str) -> str | None:
        tf = Terraform(tree / folder, tf_env)
        init(tf)
        try:
            tf.validate()
        except TerraformError as exc:
            return str(exc)
        return None

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(TERRAFORM_DIRS, pool.map(check, TERRAFORM_DIRS), strict=True))


@pytest.mark.parametrize("folder", TERRAFORM_DIRS)
def test_terraform_validate(validations: dict[str, str | None], folder: str) -> None:
    assert validations[folder] is None, validations[folder]


def test_every_module_and_example_is_validated() -> None:
    # Guards the glob above: a renamed folder must not silently drop out of the suite.
    assert {".", "modules/sagemaker-tgi", "modules/lambda-url", "examples/minimal"} <= set(
        TERRAFORM_DIRS
    )
    assert len([d for d in TERRAFORM_DIRS if d.startswith("examples/")]) >= 3


# -----------------------------------------------------------------------------
# checkov
# -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkov_report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    checkov = os.environ.get("CHECKOV")
    if not checkov:
        missing_tool("CHECKOV is not set (make test sets it to .venv-checkov/bin/checkov)")
    if not Path(checkov).exists() and shutil.which(checkov) is None:
        missing_tool(f"CHECKOV={checkov} does not exist; run `make .venv-checkov/.installed`")
    proc = subprocess.run(
        # --skip-download: no call to Prisma Cloud for guidelines (offline, and not needed).
        [
            checkov,
            "-d",
            str(REPO_ROOT),
            "--framework",
            "terraform",
            "--skip-download",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path_factory.mktemp("checkov"),
    )
    assert proc.stdout.strip(), f"checkov printed no report:\n{proc.stderr[-3000:]}"
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    terraform = [r for r in reports if r.get("check_type") == "terraform"]
    assert terraform, f"checkov found no Terraform to scan: {proc.stdout[:500]}"
    return terraform[0]


def test_checkov_finds_no_failed_check(checkov_report: dict) -> None:
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range'][0]}): "
        f"{c['check_name']}"
        for c in checkov_report["results"]["failed_checks"]
    ]
    assert checkov_report["summary"]["passed"] > 50, "checkov scanned suspiciously little"
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)


def test_every_checkov_skip_is_inline_with_a_reason(checkov_report: dict) -> None:
    skip = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?")
    inline: set[str] = set()
    for tf_file in REPO_ROOT.glob("**/*.tf"):
        if ".terraform" in tf_file.parts:
            continue
        for line_no, line in enumerate(tf_file.read_text().splitlines(), 1):
            if match := skip.search(line):
                reason = (match.group(2) or "").strip()
                where = f"{tf_file.relative_to(REPO_ROOT)}:{line_no}"
                assert len(reason) >= 20, f"{where}: skip of {match.group(1)} needs a reason"
                inline.add(match.group(1))
    skipped = {c["check_id"] for c in checkov_report["results"]["skipped_checks"]}
    assert skipped <= inline, f"checks skipped other than inline: {skipped - inline}"


# -----------------------------------------------------------------------------
# Generated documentation
# -----------------------------------------------------------------------------


def run_tf_docs(*args: str) -> subprocess.CompletedProcess[str]:
    return run_tool("tools.tf_docs", *args)


def test_readme_tables_match_the_tf_files() -> None:
    proc = run_tf_docs("--check")
    assert proc.returncode == 0, f"run `make docs`:\n{proc.stdout}{proc.stderr}"


def test_tf_docs_check_catches_a_stale_table(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(
        REPO_ROOT,
        copy,
        ignore=shutil.ignore_patterns(
            ".git", ".venv*", "build", ".terraform", "node_modules", "*cache*"
        ),
    )
    assert run_tf_docs("--check", "--root", str(copy)).returncode == 0
    variables = copy / "modules" / "lambda-url" / "variables.tf"
    variables.write_text(
        variables.read_text().replace(
            'description = "Memory of the function in MB; CPU share grows with it."',
            'description = "Memory of the function, in megabytes."',
        )
    )
    stale = run_tf_docs("--check", "--root", str(copy))
    assert stale.returncode == 1
    assert "Memory of the function, in megabytes." in stale.stdout
    assert run_tf_docs("--write", "--root", str(copy)).returncode == 0
    assert run_tf_docs("--check", "--root", str(copy)).returncode == 0
    module_readme = copy / "modules" / "lambda-url" / "README.md"
    assert "Memory of the function, in megabytes." in module_readme.read_text()


def test_tf_docs_renders_like_terraform_docs(tmp_path: Path) -> None:
    # The rules of terraform-docs' markdown table (v0.24 defaults) that our .tf files exercise.
    module = tmp_path / "module"
    module.mkdir()
    (module / "main.tf").write_text(
        "/**\n * Logs bucket | notes_here\n */\n\n"
        'resource "aws_s3_bucket" "logs" {}\n'
        'data "aws_region" "current" {}\n'
        "# terraform-docs-ignore\n"
        'resource "aws_s3_bucket" "scratch" {}\n'
        'module "child" {\n  source = "./child"\n}\n'
    )
    (module / "variables.tf").write_text(
        'variable "b_tags" {\n'
        '  description = "Tags (see TAG_POLICY) | merged."\n'
        "  type        = map(string)\n"
        '  default     = { "z" = "1", a = 2.0 }\n'
        "}\n"
        'variable "a_name" {\n'
        '  description = "Name of `my_thing`."\n'
        "  type = object({\n"
        "    id = string\n"
        "  })\n"
        "}\n"
    )
    (module / "versions.tf").write_text(
        'terraform {\n  required_version = ">= 1.5"\n'
        '  required_providers {\n    aws = {\n      source  = "hashicorp/aws"\n'
        '      version = ">= 5.100"\n    }\n  }\n}\n'
    )
    text = render(read_module(module, tmp_path))
    assert text == "\n".join(
        [
            "Logs bucket | notes\\_here",
            "",
            "## Requirements",
            "",
            "| Name | Version |",
            "| ---- | ------- |",
            '| <a name="requirement_terraform"></a> [terraform](#requirement\\_terraform) '
            "| >= 1.5 |",
            '| <a name="requirement_aws"></a> [aws](#requirement\\_aws) | >= 5.100 |',
            "",
            "## Providers",
            "",
            "| Name | Version |",
            "| ---- | ------- |",
            '| <a name="provider_aws"></a> [aws](#provider\\_aws) | >= 5.100 |',
            "",
            "## Modules",
            "",
            "| Name | Source | Version |",
            "| ---- | ------ | ------- |",
            '| <a name="module_child"></a> [child](#module\\_child) | ./child | n/a |',
            "",
            "## Resources",
            "",
            "| Name | Type |",
            "| ---- | ---- |",
            "| [aws_s3_bucket.logs](https://registry.terraform.io/providers/hashicorp/aws/latest/"
            "docs/resources/s3_bucket) | resource |",
            "| [aws_region.current](https://registry.terraform.io/providers/hashicorp/aws/latest/"
            "docs/data-sources/region) | data source |",
            "",
            "## Inputs",
            "",
            "| Name | Description | Type | Default | Required |",
            "| ---- | ----------- | ---- | ------- | :------: |",
            '| <a name="input_a_name"></a> [a\\_name](#input\\_a\\_name) | Name of `my_thing`. | '
            "<pre>object({<br/>    id = string<br/>  })</pre> | n/a | yes |",
            '| <a name="input_b_tags"></a> [b\\_tags](#input\\_b\\_tags) | Tags (see TAG\\_POLICY) '
            '\\| merged. | `map(string)` | <pre>{<br/>  "a": 2,<br/>  "z": "1"<br/>}</pre> | no |',
            "",
            "## Outputs",
            "",
            "No outputs.",
        ]
    )
