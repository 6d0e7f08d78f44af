"""The one rule for a tool the suite needs but the machine lacks: fail in CI, skip elsewhere.

CI (`.ci/run` sets CI=true) must never pass by skipping; on a developer's machine a missing
tool skips its tests with a reason that says how to get it (`pytest -ra` lists them).
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing_tool(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run these tests)")
    pytest.skip(reason)
