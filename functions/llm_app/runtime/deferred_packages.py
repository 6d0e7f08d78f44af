"""Package `__init__` files that run when their package is first used, not when imported.

Importing a submodule runs its package's `__init__` first, and these packages on the functions'
path import far more there than the functions use:

- `langsmith.types`: its `__init__` imports all of LangSmith's generated API types (about 230
  modules of pydantic models). langsmith.run_trees imports one enum from
  `langsmith.types.run_select_field`, and langchain-core's tracers import langsmith.run_trees
  on every chat model's path: a large part of each init (docs/performance.md), with tracing
  off.
- `langchain_aws` and `langchain_aws.chat_models`: their `__init__` files import the Bedrock
  chat models and LLMs (and tenacity, langchain-protocol) before the functions reach
  `langchain_aws.chat_models.sagemaker_endpoint`, the one module they use. The
  same `__init__` wraps `boto3.client` so that every client's user agent says
  `x-client-framework:langchain-aws`; deferred, the functions' clients do not carry that tag.
- `uvicorn` (the streaming door only): its `__init__` imports `uvicorn.main`, the command line,
  with click and the reloader; llm_app.http.server runs `uvicorn.config.Config` and
  `uvicorn.server.Server` from code.

For the packages in `DEFERRED`, the finder below hands the import system the package's own
spec with a loader that gives the module its `__path__` and the other import attributes, but
runs the `__init__` code on the first attribute the package lacks (PEP 562's module
`__getattr__`). Submodules still import one by one, as the package's files. `from
langsmith.types import Run`, `langsmith.types.Run` and `import *` run the `__init__` once,
with the package's own loader, then answer as before. A package that is missing, or is no
longer a package, imports as usual.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import threading
from collections.abc import Sequence
from types import ModuleType
from typing import Any

DEFERRED = frozenset({"langsmith.types", "langchain_aws", "langchain_aws.chat_models", "uvicorn"})


class _DeferredInit(importlib.abc.Loader):
    """Wraps a package's loader: `exec_module` defers the package's code to first use.

    The first reader runs it under a lock, so a second thread's read waits for the names, as
    it would wait for a module another thread is importing. Reads by the package's own code
    while it runs (`from . import x`) find what is defined so far, as in any `__init__`.
    """

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader
        self._lock = threading.RLock()
        self._started = False

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        def __getattr__(name: str) -> Any:
            with self._lock:
                if not self._started:
                    self._started = True
                    try:
                        self._loader.exec_module(module)
                    finally:
                        if module.__dict__.get("__getattr__") is __getattr__:
                            del module.__dict__["__getattr__"]
            try:
                return module.__dict__[name]
            except KeyError:
                own_hook = module.__dict__.get("__getattr__")
                if own_hook is None or own_hook is __getattr__:
                    raise AttributeError(
                        f"module {module.__name__!r} has no attribute {name!r}"
                    ) from None
                return own_hook(name)

        module.__getattr__ = __getattr__  # type: ignore[method-assign]


class DeferredInitFinder(importlib.abc.MetaPathFinder):
    """Finds the packages named in `names` as the path finder does, with deferred inits."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.names:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None or spec.submodule_search_locations is None:
            return None
        spec.loader = _DeferredInit(spec.loader)
        return spec


def install(names: frozenset[str] = DEFERRED) -> None:
    """Put the finder first on `sys.meta_path`, once per process."""
    if not any(isinstance(finder, DeferredInitFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, DeferredInitFinder(names))
