"""The init phase, made cheaper: begun explicitly before a function's imports, ended after them.

    from llm_app.runtime import init_phase
    init_phase.begin()       # first thing of a handler module (and of llm_app.http.server)
    ...                      # the imports and the clients, models and settings built once
    init_phase.end()         # last line of the handler module

- **Garbage collection, paused, then frozen.** Importing LangChain, pydantic and botocore
  allocates many long-lived objects and little garbage, yet the cyclic collector runs again
  and again on the way, rescanning them. `begin()` pauses it; `end()` moves everything the
  init built to the permanent generation (`gc.freeze()`: later collections never scan it
  again, and a SnapStart snapshot keeps it as it is) and resumes collecting. An init that
  fails never reaches `end()`, and Lambda then discards the process.
- **Package inits nothing reads, deferred** (llm_app.runtime.deferred_packages): LangSmith's
  generated API types, langchain-aws's Bedrock models and uvicorn's command line.

What each step saves is measured in docs/performance.md; both are kept because they still do.
"""

from __future__ import annotations

import gc

from llm_app.runtime import deferred_packages


def begin() -> None:
    """Start of the init (idempotent: the streaming door begins it before the handler does)."""
    gc.disable()
    deferred_packages.install()


def end() -> None:
    """End of the init: freeze what it built, then collect as usual."""
    gc.freeze()
    gc.enable()
