"""The bootstrap of a local Lambda execution environment for ``make bench``: AWS's own runtime
interface client (awslambdaric) runs the handler against a local Runtime API
(``tools.lambda_sandbox.runtime_api``).

Started as a file, never imported from ``tools``, by ``python3.12 -I -S -B bootstrap.py TASK
RUNTIME HANDLER [LAYER ...]``: standard library only until it hands over to awslambdaric. It
lays out ``sys.path`` as Lambda's Python runtime does (the function's code, the layers'
``python/`` folders, then the runtime's own folder, /var/runtime on Lambda, which holds
awslambdaric and the runtime's precompiled boto3) and starts awslambdaric's main loop, which
imports the handler (the init phase) and polls ``AWS_LAMBDA_RUNTIME_API`` for invocations.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> None:
    task, runtime, handler, *layers = argv
    sys.path[:0] = [task, *layers, runtime]
    os.chdir(task)
    from awslambdaric.__main__ import main as run_runtime

    run_runtime([sys.argv[0], handler])


if __name__ == "__main__":
    main(sys.argv[1:])
