"""The functions' AWS clients, built one way: explicit timeouts and botocore's standard retries.

botocore's defaults (60 s reads, legacy retries) are longer than a whole answer may take; each
caller names the read timeout and attempts its service needs. One client per container.
"""

from __future__ import annotations

from typing import Any, Literal

import boto3
from botocore.config import Config

from llm_app.config import Settings

# The services the functions call (and their roles grant).
Service = Literal["sagemaker-runtime", "dynamodb", "s3"]


def aws_client(
    service: Service,
    settings: Settings,
    *,
    read_timeout: float,
    max_attempts: int,
    tcp_keepalive: bool = False,
) -> Any:
    return boto3.client(
        service,
        config=Config(
            connect_timeout=settings.connect_timeout_seconds,
            read_timeout=read_timeout,
            retries={"total_max_attempts": max_attempts, "mode": "standard"},
            tcp_keepalive=tcp_keepalive,
        ),
    )
