"""Who a verified bearer is, and whose conversations it owns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Caller:
    # Conversations and usage belong to this: "key:<key_id>" or "jwt:<issuer>#<sub>". Neither
    # can equal a signed IAM caller's "<12-digit account>:<userId>".
    owner: str
    method: Literal["api_key", "jwt"]
    # For the log line: a key's name, or a token's `sub`. Never the key or the token.
    label: str
    # API keys: the key whose usage record_usage adds to, and the UTC day it was checked on,
    # so an answer that ends after midnight counts against the day it was allowed on.
    key_id: str | None = None
    usage_day: str | None = None
