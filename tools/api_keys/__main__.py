"""Manage the functions' API keys in the table Terraform outputs as `api_keys_table_name`.

    python -m tools.api_keys create --table TABLE --name NAME [--daily-tokens N] [--expires-days D]
    python -m tools.api_keys list --table TABLE
    python -m tools.api_keys revoke --table TABLE --name NAME

Uses your AWS credentials and region as the AWS CLI does; AWS_ENDPOINT_URL sends it to a local
stack (`make local`). `create` prints the new key alone on its last line: it is stored only as
a hash, so it cannot be shown again.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

import boto3

from tools.api_keys.store import KeyStoreError, create_key, list_keys, revoke_key


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.api_keys", description=__doc__.split("\n\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a key and print it (once)")
    create.add_argument("--daily-tokens", type=_positive, help="input + output tokens per UTC day")
    create.add_argument("--expires-days", type=_positive, help="days until the key expires")
    listing = commands.add_parser("list", help="list keys with today's usage")
    revoke = commands.add_parser("revoke", help="revoke a key; refused within a minute")
    for command in (create, listing, revoke):
        command.add_argument("--table", required=True, help="the api_keys_table_name output")
    for command in (create, revoke):
        command.add_argument("--name", required=True, help="who or what the key is for")
    return parser


def _day_time(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    dynamodb = boto3.client("dynamodb")
    now = datetime.now(UTC)
    try:
        if args.command == "create":
            new = create_key(
                dynamodb,
                args.table,
                args.name,
                now,
                daily_tokens=args.daily_tokens,
                expires_days=args.expires_days,
            )
            print(f"Created key {args.name!r} (id {new.key_id}). It is shown once, below:")
            print(new.key)
        elif args.command == "revoke":
            revoke_key(dynamodb, args.table, args.name, now)
            print(f"Revoked key {args.name!r}; the functions refuse it within a minute.")
        else:
            row = "{:<24} {:<16} {:<8} {:<16} {:<16} {:>12} {:>12} {:>9}"
            print(
                row.format(
                    "NAME", "ID", "STATUS", "CREATED", "EXPIRES", "DAILY", "TOKENS", "REQUESTS"
                )
            )
            for key in list_keys(dynamodb, args.table, now):
                print(
                    row.format(
                        key.name,
                        key.key_id,
                        key.status(now),
                        _day_time(key.created_at),
                        _day_time(key.expires_at),
                        "-" if key.daily_tokens is None else key.daily_tokens,
                        key.tokens_today,
                        key.requests_today,
                    )
                )
    except KeyStoreError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
