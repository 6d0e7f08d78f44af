"""The layers docs/architecture.md draws, held by the tree: imports point only down, no import
circles, modules stay small, and only llm_app.config reads the environment."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.paths import REPO_ROOT

FUNCTIONS = REPO_ROOT / "functions"
# Lower layers first: a module may import its own layer and the ones before it.
LAYERS = ("base", "runtime", "model", "http", "domain")
# Packages of llm_app that belong to a layer without being named after it: sign-in is the edge's.
SUBPACKAGE_LAYERS = {"auth": "http"}
MAX_MODULE_LINES = 300


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(FUNCTIONS.rglob("*.py")):
        parts = path.relative_to(FUNCTIONS).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = modules()


def layer(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "llm_app":
        return "domain"  # chat, qa
    if len(parts) > 1 and parts[1] in SUBPACKAGE_LAYERS:
        return SUBPACKAGE_LAYERS[parts[1]]
    return parts[1] if len(parts) > 2 and parts[1] in LAYERS else "base"


def imported(path: Path) -> Iterator[str]:
    """The first-party modules a module imports (at any depth of its code)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        yield from (name for name in names if name in MODULES)


IMPORTS = {module: set(imported(path)) for module, path in MODULES.items()}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_only_down(module):
    upward = {
        other
        for other in IMPORTS[module]
        if LAYERS.index(layer(other)) > LAYERS.index(layer(module))
    }
    assert not upward, f"{module} ({layer(module)}) imports a higher layer: {sorted(upward)}"


def test_no_import_circles():
    def reachable(start: str) -> set[str]:
        seen: set[str] = set()
        todo = [start]
        while todo:
            for other in IMPORTS[todo.pop()] - seen:
                seen.add(other)
                todo.append(other)
        return seen

    circles = [module for module in MODULES if module in reachable(module)]
    assert not circles, f"modules that import themselves back: {circles}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_small(module):
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{module} has {lines} lines"


@pytest.mark.parametrize("module", sorted(set(MODULES) - {"llm_app.config"}))
def test_only_config_reads_the_environment(module):
    tree = ast.parse(MODULES[module].read_text())
    reads = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr in ("environ", "getenv")
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
        and not isinstance(getattr(node, "ctx", None), ast.Store)
    ]
    allowed = {"llm_app.runtime.tracing"}  # writes the trace header for the X-Ray SDK (door 2)
    assert module in allowed or not reads, f"{module} reads os.environ at lines {reads}"
