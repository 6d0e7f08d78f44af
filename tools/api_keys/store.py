"""The keys table, as the command changes it: create, list, revoke.

Writes go in transactions with conditions, so two people creating or revoking the same name at
once cannot leave two live keys of one name, or a name pointing at a revoked key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from botocore.exceptions import ClientError

from llm_app.auth import keys

NAME_SHAPE: Final = re.compile(r"[A-Za-z0-9._@+-]{1,64}")


class KeyStoreError(RuntimeError):
    """A request the table refused for a reason the user can fix (the message says how)."""


@dataclass(frozen=True)
class KeyListing:
    name: str
    key_id: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    daily_tokens: int | None
    tokens_today: int
    requests_today: int

    def status(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"


def create_key(
    dynamodb: Any,
    table: str,
    name: str,
    now: datetime,
    *,
    daily_tokens: int | None = None,
    expires_days: int | None = None,
) -> keys.NewKey:
    if not NAME_SHAPE.fullmatch(name):
        raise KeyStoreError("a key's name is 1-64 letters, digits or . _ @ + -")
    new = keys.new_key()
    item: dict[str, Any] = {
        **keys.key_item_key(new.key_hash),
        "key_id": {"S": new.key_id},
        "name": {"S": name},
        "created_at": {"N": str(int(now.timestamp()))},
    }
    if daily_tokens is not None:
        item["daily_tokens"] = {"N": str(daily_tokens)}
    if expires_days is not None:
        item["expires_at"] = {"N": str(int((now + timedelta(days=expires_days)).timestamp()))}
    absent = f"attribute_not_exists({keys.PARTITION_KEY})"
    try:
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": item, "ConditionExpression": absent}},
                {
                    "Put": {
                        "TableName": table,
                        "Item": {**keys.name_item_key(name), "key_hash": {"S": new.key_hash}},
                        "ConditionExpression": absent,
                    }
                },
            ]
        )
    except ClientError as error:
        if error.response["Error"]["Code"] == "TransactionCanceledException":
            raise KeyStoreError(f"a live key named {name!r} exists; revoke it first") from None
        raise
    return new


def revoke_key(dynamodb: Any, table: str, name: str, now: datetime) -> None:
    """Marks the key revoked and frees its name; the functions refuse it within a minute."""
    link = dynamodb.get_item(
        TableName=table, Key=keys.name_item_key(name), ConsistentRead=True
    ).get("Item")
    if link is None:
        raise KeyStoreError(f"no live key is named {name!r}")
    digest = link["key_hash"]["S"]
    try:
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": table,
                        "Key": keys.key_item_key(digest),
                        "UpdateExpression": "SET revoked_at = :now",
                        "ConditionExpression": f"attribute_exists({keys.PARTITION_KEY})",
                        "ExpressionAttributeValues": {":now": {"N": str(int(now.timestamp()))}},
                    }
                },
                {
                    "Delete": {
                        "TableName": table,
                        "Key": keys.name_item_key(name),
                        "ConditionExpression": "key_hash = :digest",
                        "ExpressionAttributeValues": {":digest": {"S": digest}},
                    }
                },
            ]
        )
    except ClientError as error:
        if error.response["Error"]["Code"] == "TransactionCanceledException":
            raise KeyStoreError(f"the key named {name!r} changed meanwhile; retry") from None
        raise


def list_keys(dynamodb: Any, table: str, now: datetime) -> list[KeyListing]:
    """Every key ever created (revoked and expired too), with today's usage, by name."""
    items: list[dict[str, Any]] = []
    for page in dynamodb.get_paginator("scan").paginate(
        TableName=table,
        FilterExpression=f"begins_with({keys.PARTITION_KEY}, :kind)",
        ExpressionAttributeValues={":kind": {"S": "key#"}},
        ConsistentRead=True,
    ):
        items.extend(page["Items"])
    day = keys.utc_day(now)
    listings = []
    for item in items:
        usage = dynamodb.get_item(
            TableName=table, Key=keys.usage_item_key(item["key_id"]["S"], day)
        ).get("Item", {})
        listings.append(
            KeyListing(
                name=item["name"]["S"],
                key_id=item["key_id"]["S"],
                created_at=_time(item["created_at"]),
                expires_at=_time(item.get("expires_at")),
                revoked_at=_time(item.get("revoked_at")),
                daily_tokens=int(item["daily_tokens"]["N"]) if "daily_tokens" in item else None,
                tokens_today=int(usage.get("tokens", {}).get("N", "0")),
                requests_today=int(usage.get("requests", {}).get("N", "0")),
            )
        )
    return sorted(listings, key=lambda listing: (listing.name, listing.created_at))


def _time(value: dict[str, str] | None) -> Any:
    return None if value is None else datetime.fromtimestamp(int(value["N"]), tz=UTC)
