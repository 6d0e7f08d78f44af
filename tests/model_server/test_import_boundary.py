"""The model server stands for another machine: it imports no other tools component.

It runs in its own venv (Python 3.11, torch) from tools/model_server alone; what it shares
with the rest of tools/ are standard-library-only modules, which this test also holds to that.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from tools.paths import REPO_ROOT

TOOLS = REPO_ROOT / "tools"
MODEL_SERVER = TOOLS / "model_server"
# Shared modules the model server may import: each must be standard library only.
SHARED = {"tools", "tools.http_server", "tools.paths"}
# What the model server's own venv adds (requirements/model-server.in).
MODEL_SERVER_PACKAGES = {"torch", "transformers", "huggingface_hub", "tokenizers", "safetensors"}


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def module_file(name: str) -> Path:
    path = REPO_ROOT.joinpath(*name.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def test_the_model_server_imports_only_itself_shared_modules_and_its_venvs_packages() -> None:
    allowed = {*sys.stdlib_module_names, *MODEL_SERVER_PACKAGES}
    for path in sorted(MODEL_SERVER.rglob("*.py")):
        for name in imports(path):
            if name.startswith("tools"):
                assert name.startswith("tools.model_server") or name in SHARED, (
                    f"{path.relative_to(REPO_ROOT)} imports {name}: the model server may import "
                    f"only tools.model_server and {sorted(SHARED)}"
                )
            else:
                assert name.partition(".")[0] in allowed, f"{path} imports {name}"


def test_the_shared_modules_are_standard_library_only() -> None:
    for name in SHARED:
        for imported in imports(module_file(name)):
            top = imported.partition(".")[0]
            assert top in sys.stdlib_module_names or imported in SHARED, (
                f"{name} imports {imported}: the model server's venv would lack it"
            )
