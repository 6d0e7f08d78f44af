"""API keys looked up by hash in DynamoDB, with a short per-container cache and daily quotas."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from . import keys
from .caller import Caller
from .errors import AuthError, AuthFailure, QuotaExceeded

# How long a container trusts what it read about a key: a revoked key is refused after at most
# this, and the issue allows a minute; an expired key is refused at once (expiry is in the item).
KEY_CACHE_TTL: Final = timedelta(seconds=30)
# Bounds the cache against a flood of distinct valid keys; unknown keys are never cached.
KEY_CACHE_MAX_ENTRIES: Final = 1024


@dataclass(frozen=True)
class KeyRecord:
    key_hash: str
    key_id: str
    name: str
    expires_at: int | None
    revoked: bool
    daily_tokens: int | None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> KeyRecord:
        def number(name: str) -> int | None:
            return int(item[name]["N"]) if name in item else None

        return cls(
            key_hash=item[keys.PARTITION_KEY]["S"].removeprefix("key#"),
            key_id=item["key_id"]["S"],
            name=item["name"]["S"],
            expires_at=number("expires_at"),
            revoked="revoked_at" in item,
            daily_tokens=number("daily_tokens"),
        )


class ApiKeyVerifier:
    """Verifies keys against the table; `dynamodb` is a low-level boto3 client."""

    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self._dynamodb = dynamodb
        self._table = table_name
        self._cache: dict[str, tuple[KeyRecord, datetime]] = {}

    def verify(self, key: str, now: datetime) -> Caller:
        if not keys.is_well_formed(key):
            raise AuthError(AuthFailure.MALFORMED)
        digest = keys.key_hash(key)
        record = self._record(digest, now)
        # DynamoDB found the item by this hash; the comparison that decides is constant-time.
        if record is None or not hmac.compare_digest(record.key_hash, digest):
            raise AuthError(AuthFailure.UNKNOWN_KEY)
        if record.revoked:
            raise AuthError(AuthFailure.REVOKED)
        if record.expires_at is not None and now.timestamp() >= record.expires_at:
            raise AuthError(AuthFailure.EXPIRED)
        day = keys.utc_day(now)
        tokens_today = self._count_request(record.key_id, day, now)
        if record.daily_tokens is not None and tokens_today >= record.daily_tokens:
            raise QuotaExceeded(keys.seconds_until_midnight(now))
        return Caller(
            owner=f"key:{record.key_id}",
            method="api_key",
            label=record.name,
            key_id=record.key_id,
            usage_day=day,
        )

    def record_usage(self, caller: Caller, *, input_tokens: int, output_tokens: int) -> None:
        """Adds an answer's tokens to the day its request was allowed on."""
        if caller.key_id is None or caller.usage_day is None:
            return
        self._dynamodb.update_item(
            TableName=self._table,
            Key=keys.usage_item_key(caller.key_id, caller.usage_day),
            UpdateExpression=("ADD tokens :total, input_tokens :input, output_tokens :output"),
            ExpressionAttributeValues={
                ":total": {"N": str(input_tokens + output_tokens)},
                ":input": {"N": str(input_tokens)},
                ":output": {"N": str(output_tokens)},
            },
        )

    def _record(self, digest: str, now: datetime) -> KeyRecord | None:
        cached = self._cache.get(digest)
        if cached is not None and now - cached[1] < KEY_CACHE_TTL:
            return cached[0]
        item = self._dynamodb.get_item(
            TableName=self._table, Key=keys.key_item_key(digest), ConsistentRead=True
        ).get("Item")
        if item is None:
            self._cache.pop(digest, None)
            return None
        record = KeyRecord.from_item(item)
        if len(self._cache) >= KEY_CACHE_MAX_ENTRIES:
            self._cache = {
                cached_digest: entry
                for cached_digest, entry in self._cache.items()
                if now - entry[1] < KEY_CACHE_TTL
            }
            if len(self._cache) >= KEY_CACHE_MAX_ENTRIES:
                self._cache.clear()
        self._cache[digest] = (record, now)
        return record

    def _count_request(self, key_id: str, day: str, now: datetime) -> int:
        """Counts the request in the day's usage (atomically); returns the tokens used so far.

        Every request with a live key is counted, those refused over quota too.
        """
        attributes = self._dynamodb.update_item(
            TableName=self._table,
            Key=keys.usage_item_key(key_id, day),
            UpdateExpression=f"ADD requests :one SET {keys.TTL_ATTRIBUTE} = :purge_at",
            ExpressionAttributeValues={
                ":one": {"N": "1"},
                ":purge_at": {"N": str(keys.purge_at(now))},
            },
            ReturnValues="ALL_NEW",
        )["Attributes"]
        return int(attributes.get("tokens", {}).get("N", "0"))
