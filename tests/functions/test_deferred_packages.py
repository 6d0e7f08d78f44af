"""Deferred package inits (llm_app.runtime.deferred_packages): a package's submodules
import without its `__init__`, and the first name read from the package runs it, once, with
the same result."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from llm_app.runtime.deferred_packages import DeferredInitFinder

# The package's __init__ counts its runs in a module outside it, and imports every submodule,
# as LangSmith's generated `types` package does.
INIT = """
import deferred_probe_counter
deferred_probe_counter.runs += 1
from .enum import Field as Field
from .model import Model as Model
__all__ = ["Field", "Model"]
"""
OWN_HOOK_INIT = """
def __getattr__(name):
    if name == "computed":
        return 42
    raise AttributeError(name)
"""


@pytest.fixture
def probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    package = tmp_path / "deferred_probe"
    package.mkdir()
    (package / "__init__.py").write_text(INIT)
    (package / "enum.py").write_text("Field = 'field'\n")
    (package / "model.py").write_text("class Model:\n    pass\n")
    (tmp_path / "deferred_probe_counter.py").write_text("runs = 0\n")
    hooked = tmp_path / "deferred_hooked"
    hooked.mkdir()
    (hooked / "__init__.py").write_text(OWN_HOOK_INIT)
    monkeypatch.syspath_prepend(str(tmp_path))
    finder = DeferredInitFinder(frozenset({"deferred_probe", "deferred_hooked", "not_there"}))
    monkeypatch.setattr(sys, "meta_path", [finder, *sys.meta_path])
    yield "deferred_probe"
    for name in list(sys.modules):
        if name.startswith(("deferred_probe", "deferred_hooked")):
            del sys.modules[name]


def init_runs() -> int:
    return (
        sys.modules["deferred_probe_counter"].runs if "deferred_probe_counter" in sys.modules else 0
    )


def test_a_submodule_imports_without_its_package_init(probe: str) -> None:
    from deferred_probe.enum import Field

    assert Field == "field"
    assert init_runs() == 0
    assert "deferred_probe.model" not in sys.modules
    assert sys.modules[probe].__path__  # still a package: more submodules can import


def test_the_first_name_read_runs_the_init_once(probe: str) -> None:
    import deferred_probe
    from deferred_probe import Model
    from deferred_probe.enum import Field

    assert Model.__module__ == "deferred_probe.model"
    assert deferred_probe.Field is Field
    assert deferred_probe.__all__ == ["Field", "Model"]
    assert init_runs() == 1
    with pytest.raises(AttributeError, match="has no attribute 'missing'"):
        _ = deferred_probe.missing
    assert init_runs() == 1


def test_star_import_sees_the_init_names(probe: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from {probe} import *", namespace)
    assert {"Field", "Model"} <= namespace.keys()


def test_threads_reading_at_once_run_the_init_once(probe: str) -> None:
    import deferred_probe

    start = threading.Barrier(8)
    seen: list[object] = []

    def read() -> None:
        start.wait()
        seen.append(deferred_probe.Model)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 8
    assert len(set(seen)) == 1
    assert init_runs() == 1


def test_a_package_init_with_its_own_module_hook_keeps_it(probe: str) -> None:
    import deferred_hooked

    assert deferred_hooked.computed == 42
    with pytest.raises(AttributeError):
        _ = deferred_hooked.other


def test_a_name_that_is_no_package_imports_as_usual(probe: str) -> None:
    with pytest.raises(ModuleNotFoundError):
        __import__("not_there")
