"""The init phase, made cheaper: imported first by each front door, before anything else.

- **Garbage collection, paused, then frozen.** Importing LangChain, pydantic and botocore
  allocates hundreds of thousands of long-lived objects and little garbage, yet the cyclic
  collector runs about 250 times on the way, rescanning them: about 60 ms of chat's 0.55 s init
  on 2 cores (`make bench`, docs/performance.md). Importing this module pauses the collector;
  the handler module's last line calls `finish()`, which moves everything the init built to the
  permanent generation (`gc.freeze()`: later collections never scan it again, and a SnapStart
  snapshot keeps it as it is) and resumes collecting. An init that fails never reaches
  `finish()`, and Lambda then discards the process.
- **Package inits nothing reads, deferred** (llm_app.runtime.deferred_packages): LangSmith's
  generated API types and langchain-aws's Bedrock models, about a third of every init, and
  uvicorn's command line.
"""

from __future__ import annotations

import gc

from llm_app.runtime import deferred_packages

gc.disable()
deferred_packages.install()


def finish() -> None:
    """End of the init: freeze what it built, then collect as usual."""
    gc.freeze()
    gc.enable()
