"""API keys: their format, their hash, and the DynamoDB items the keys table holds.

Standard library only: `python -m tools.api_keys` imports this module to create and revoke
keys, so the functions and the command agree on one format and one table layout.

A key is KEY_PREFIX and 256 random bits (secrets.token_urlsafe). The prefix lets secret
scanners and people recognise a leaked key. The table keeps only the key's SHA-256: a fast,
unsalted hash is safe here because the key itself is random, so there is nothing to guess
from a dictionary and no brute force over its bits; the slow, salted hashes that passwords
need would cost every request CPU and leave nothing to look an item up by.

One table, one string partition key `pk`, three kinds of item:
- `key#<sha256 hex>`: key_id (not secret; conversations and usage are keyed by it), name,
  created_at, and optionally expires_at, revoked_at (epoch seconds) and daily_tokens;
- `name#<name>`: the live key of that name (key_hash), so the command revokes by name with
  reads, never a scan; revoking deletes it, so the name may be given to a new key;
- `usage#<key_id>#<YYYY-MM-DD>`: a UTC day's requests, input_tokens, output_tokens and
  tokens, added atomically; purge_at lets DynamoDB's TTL delete old days.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

KEY_PREFIX: Final = "llmk_"
KEY_RANDOM_BYTES: Final = 32
# token_urlsafe's base64url alphabet, unpadded: 43 characters for 32 bytes.
_KEY_SHAPE: Final = re.compile(rf"{KEY_PREFIX}[A-Za-z0-9_-]{{43}}")
PARTITION_KEY: Final = "pk"
# The table's TTL attribute: set on usage items only, so keys stay listed after they expire.
TTL_ATTRIBUTE: Final = "purge_at"
USAGE_RETENTION: Final = timedelta(days=90)


@dataclass(frozen=True)
class NewKey:
    key: str  # shown once, to the person who created it; stored nowhere
    key_hash: str
    key_id: str


def new_key() -> NewKey:
    key = KEY_PREFIX + secrets.token_urlsafe(KEY_RANDOM_BYTES)
    return NewKey(key=key, key_hash=key_hash(key), key_id=secrets.token_hex(8))


def is_well_formed(candidate: str) -> bool:
    return _KEY_SHAPE.fullmatch(candidate) is not None


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def key_item_key(digest: str) -> dict[str, Any]:
    return {PARTITION_KEY: {"S": f"key#{digest}"}}


def name_item_key(name: str) -> dict[str, Any]:
    return {PARTITION_KEY: {"S": f"name#{name}"}}


def usage_item_key(key_id: str, day: str) -> dict[str, Any]:
    return {PARTITION_KEY: {"S": f"usage#{key_id}#{day}"}}


def utc_day(now: datetime) -> str:
    return now.astimezone(UTC).date().isoformat()


def next_midnight(now: datetime) -> datetime:
    day = now.astimezone(UTC).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def seconds_until_midnight(now: datetime) -> int:
    """Whole seconds to the next UTC midnight, rounded up so a retry never comes early."""
    return max(1, math.ceil((next_midnight(now) - now).total_seconds()))


def purge_at(day_now: datetime) -> int:
    return int((next_midnight(day_now) + USAGE_RETENTION).timestamp())
