"""What a SnapStart restore must redo in an environment initialised before the snapshot.

With SnapStart, the init phase (imports, `Settings`, the boto3 clients, the prompts) runs once
per published version and every new execution environment resumes from its memory snapshot.
What init captured must still be right in each copy:

- boto3 clients and their credentials: AWS refreshes the credentials of a restored
  environment, and botocore opens its connections at the first request, after the restore;
- the configuration (`Settings`): read from the version's environment, the same everywhere;
- `random`'s generator state: every copy would draw the same sequence, so botocore's retry
  jitter would send restored environments back to a throttled endpoint in lockstep. It is
  reseeded from the operating system after each restore;
- ids (`uuid.uuid4()`, session and turn ids) come from `os.urandom` per request, which the
  restored kernel keeps unique; nothing random or time-based is computed at import.

The buffered handlers register the reseed with `snapshot_restore_py`, which AWS's Python
runtime ships; elsewhere (tests, the local stack: no snapshot is ever restored there) there is
nothing to register. Behind the Lambda Web Adapter (response_streaming = true) that runtime
never runs: the adapter calls the HTTP path named by AWS_LWA_SNAPSTART_AFTER_RESTORE_PATH
instead, and llm_app.http.web answers it with the same `reseed_random`.
"""

from __future__ import annotations

import importlib
import random


def reseed_random() -> None:
    """Give this environment its own `random` sequence (seeded from os.urandom)."""
    random.seed()


def register_restore_hooks() -> bool:
    """Register the after-restore hooks with the runtime; False where there is no runtime."""
    try:
        hooks = importlib.import_module("snapshot_restore_py")
    except ModuleNotFoundError:
        return False
    hooks.register_after_restore(reseed_random)
    return True
