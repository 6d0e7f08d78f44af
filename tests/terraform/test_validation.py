"""Root variables forwarded to a module validate exactly what the module validates, and more.

The root module passes many of its variables straight to a module
(``timeout = var.function_timeout``). The module validates its own inputs, and the root repeats
those checks so that an error names the variable the user set. Terraform cannot share a
validation between two modules, so this test keeps the copies equal: every ``validation``
condition of the module variable must stand, word for word once the variable is renamed, among
the root variable's own; and the two must agree on type, nullable and sensitive. The root may
add rules of its own. Where a root rule is stricter and implies the module's, repeating the
module's would only report one mistake twice; such a pair is listed in IMPLIED below with both
conditions as written, so a change to either side fails here until someone checks the
implication again.

Pure text checks of the .tf files, read with the scanner of tools/tf_docs/hcl.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.terraform import REPO_ROOT
from tools.tf_docs.hcl import attributes, blocks, string_literal

# (root variable, module condition with the root's name) -> the root rule that implies it.
IMPLIED: dict[tuple[str, str], str] = {
    (
        "name",
        'length(var.name) <= 54 && can(regex("^[a-zA-Z0-9](-*[a-zA-Z0-9])*$", var.name))',
    ): 'can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name)) && !strcontains(var.name, "--")',
    (
        "function_timeout",
        "var.function_timeout >= 1 && var.function_timeout <= 900"
        " && floor(var.function_timeout) == var.function_timeout",
    ): "var.function_timeout >= 30 && var.function_timeout <= 900"
    " && floor(var.function_timeout) == var.function_timeout",
}


@dataclass(frozen=True)
class Forward:
    """``module.<call>`` receives ``var.<root_var>`` as its variable ``<module_var>``."""

    call: str
    module_dir: str
    module_var: str
    root_var: str


@dataclass(frozen=True)
class VariableRules:
    # Type, nullable and sensitive as written (Terraform's defaults where absent): what the
    # root accepts and hides must be what the module accepts and hides.
    contract: tuple[str, str, str]
    conditions: tuple[str, ...]


def _normalise(expression: str) -> str:
    return re.sub(r"\s+", " ", expression).strip()


def variables(folder: Path) -> dict[str, VariableRules]:
    """Every variable of a module folder: its type and its validation conditions."""
    found: dict[str, VariableRules] = {}
    for tf_file in sorted(folder.glob("*.tf")):
        for block in blocks(tf_file.read_text(encoding="utf-8")):
            if block.type != "variable":
                continue
            conditions = tuple(
                _normalise(attributes(inner.body)["condition"])
                for inner in blocks(block.body)
                if inner.type == "validation"
            )
            attrs = attributes(block.body)
            contract = (
                _normalise(attrs.get("type", "any")),
                attrs.get("nullable", "true"),
                attrs.get("sensitive", "false"),
            )
            found[block.labels[0]] = VariableRules(contract, conditions)
    return found


def forwards(root: Path) -> list[Forward]:
    """Module arguments of the root module that are a root variable, unchanged."""
    found: list[Forward] = []
    for tf_file in sorted(root.glob("*.tf")):
        for block in blocks(tf_file.read_text(encoding="utf-8")):
            if block.type != "module":
                continue
            args = attributes(block.body)
            source = string_literal(args["source"])
            if not source.startswith("./"):
                continue
            module_dir = source.removeprefix("./")
            for module_var, value in args.items():
                if match := re.fullmatch(r"var\.([a-z0-9_]+)", value):
                    found.append(Forward(block.labels[0], module_dir, module_var, match.group(1)))
    return found


def drift(root: Path) -> list[str]:
    """What each forwarded root variable misses of its module variable's type and rules."""
    root_vars = variables(root)
    module_vars: dict[str, dict[str, VariableRules]] = {}
    problems: list[str] = []
    for fwd in forwards(root):
        if fwd.module_dir not in module_vars:
            module_vars[fwd.module_dir] = variables(root / fwd.module_dir)
        module_rules = module_vars[fwd.module_dir][fwd.module_var]
        root_rules = root_vars[fwd.root_var]
        where = f"var.{fwd.root_var} -> module.{fwd.call}.{fwd.module_var}"
        if root_rules.contract != module_rules.contract:
            problems.append(
                f"{where}: (type, nullable, sensitive) {root_rules.contract} != "
                f"{module_rules.contract}"
            )
        renamed = re.compile(rf"\bvar\.{fwd.module_var}\b")
        for condition in module_rules.conditions:
            expected = renamed.sub(f"var.{fwd.root_var}", condition)
            if expected in root_rules.conditions:
                continue
            if IMPLIED.get((fwd.root_var, expected)) in root_rules.conditions:
                continue
            problems.append(f"{where}: the root lacks the module's validation `{expected}`")
    return problems


def test_forwarded_variables_are_found() -> None:
    found = {(f.call, f.module_var, f.root_var) for f in forwards(REPO_ROOT)}
    # The one that drifted before this test existed, and one per module call.
    assert ("functions", "tracing_mode", "tracing_mode") in found
    assert ("functions", "timeout", "function_timeout") in found
    assert ("llm", "kms_key_arn", "endpoint_kms_key_arn") in found
    assert len(found) >= 25


def test_root_variables_validate_what_their_modules_validate() -> None:
    problems = drift(REPO_ROOT)
    assert not problems, "copy the module's validation to the root variable:\n" + "\n".join(
        problems
    )


@pytest.mark.parametrize(
    ("root_var", "old", "new"),
    [
        # The drift this test was written for: a validation the root does not repeat.
        ("tracing_mode", '["PassThrough", "Active"]', '["PassThrough", "Active", "Off"]'),
        # A type that differs: the module would refuse what the root accepted.
        ("url_cors", "max_age           = optional(number, 0)", "max_age = optional(string)"),
        # A secret the root would print in plans while the module hides it.
        ("hf_token", "sensitive   = true", "sensitive   = false"),
    ],
)
def test_drift_is_reported(tmp_path: Path, root_var: str, old: str, new: str) -> None:
    for source in [*REPO_ROOT.glob("*.tf"), *REPO_ROOT.glob("modules/*/*.tf")]:
        target = tmp_path / source.relative_to(REPO_ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    root_variables = tmp_path / "variables.tf"
    text = root_variables.read_text(encoding="utf-8")
    start = text.index(f'variable "{root_var}" {{')
    assert old in text[start:], f"{old!r} not found in variable {root_var}"
    root_variables.write_text(text[:start] + text[start:].replace(old, new, 1), encoding="utf-8")
    assert any(f"var.{root_var} ->" in problem for problem in drift(tmp_path))


def test_every_implied_rule_still_pairs_a_module_rule_with_a_root_rule() -> None:
    root_vars = variables(REPO_ROOT)
    for (root_var, module_condition), root_condition in IMPLIED.items():
        module_conditions = {
            re.sub(rf"\bvar\.{fwd.module_var}\b", f"var.{root_var}", condition)
            for fwd in forwards(REPO_ROOT)
            if fwd.root_var == root_var
            for condition in variables(REPO_ROOT / fwd.module_dir)[fwd.module_var].conditions
        }
        assert module_condition in module_conditions, f"{root_var}: stale IMPLIED entry"
        assert root_condition in root_vars[root_var].conditions, f"{root_var}: stale IMPLIED entry"
