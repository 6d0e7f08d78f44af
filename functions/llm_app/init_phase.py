"""The init phase's garbage collection: paused while a handler module imports, frozen after.

Importing LangChain, pydantic and botocore allocates hundreds of thousands of long-lived objects
and little garbage, yet the cyclic collector runs about 250 times on the way, rescanning them:
about 60 ms of chat's 0.55 s init on 2 cores (`make bench`, docs/performance.md). Importing
this module pauses the collector; the handler module's last line calls `finish()`, which moves
everything the init built to the permanent generation (`gc.freeze()`: later collections never
scan it again, and a SnapStart snapshot keeps it as it is) and resumes collecting. An init that
fails never reaches `finish()`, and Lambda then discards the process.
"""

from __future__ import annotations

import gc

gc.disable()


def finish() -> None:
    """End of the init: freeze what it built, then collect as usual."""
    gc.freeze()
    gc.enable()
