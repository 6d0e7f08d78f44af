"""A Function URL's CORS, as Lambda applies its `cors` config (AWS::Lambda::Url's Cors).

With a config, the URL answers a browser's preflight itself (an OPTIONS request with `origin`
and `access-control-request-method`) without invoking the function, and adds the
access-control headers to the function's responses, replacing any the function set. An origin
the config does not allow gets no access-control headers, so the browser refuses the answer.
Without a config the URL adds nothing and forwards OPTIONS to the function like any method.
Source: the Lambda developer guide, "Cross-origin resource sharing (CORS)" in "Creating and
managing Lambda function URLs", and the API reference's `Cors` type.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Cors:
    allow_origins: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    allow_credentials: bool = False
    max_age: int = 0

    @classmethod
    def from_url_config(cls, url_config: Mapping[str, Any]) -> Cors | None:
        """The `Cors` of Lambda's GetFunctionUrlConfig answer; None when the URL has none."""
        config = url_config.get("Cors")
        if not config:
            return None
        return cls(
            allow_origins=tuple(config.get("AllowOrigins") or ()),
            allow_methods=tuple(config.get("AllowMethods") or ()),
            allow_headers=tuple(config.get("AllowHeaders") or ()),
            expose_headers=tuple(config.get("ExposeHeaders") or ()),
            allow_credentials=bool(config.get("AllowCredentials")),
            max_age=int(config.get("MaxAge") or 0),
        )

    def allows(self, origin: str | None) -> bool:
        return origin is not None and ("*" in self.allow_origins or origin in self.allow_origins)

    def is_preflight(self, method: str, headers: Mapping[str, str]) -> bool:
        return (
            method == "OPTIONS"
            and "origin" in headers
            and "access-control-request-method" in headers
        )

    def preflight(self, headers: Mapping[str, str]) -> list[tuple[str, str]]:
        """The preflight's answer headers (status 200, no body, the function not invoked)."""
        origin = headers.get("origin")
        if not self.allows(origin):
            return []
        return [
            *self._origin(origin),
            ("access-control-allow-methods", ",".join(self.allow_methods)),
            ("access-control-allow-headers", ",".join(self.allow_headers)),
            ("access-control-max-age", str(self.max_age)),
        ]

    def response_headers(
        self, origin: str | None, headers: Sequence[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        """The function's headers without its own access-control ones, plus the URL's."""
        kept = [(k, v) for k, v in headers if not k.lower().startswith("access-control-")]
        if not self.allows(origin):
            return kept
        exposed = [("access-control-expose-headers", ",".join(self.expose_headers))]
        return [*kept, *self._origin(origin), *(exposed if self.expose_headers else [])]

    def _origin(self, origin: str | None) -> list[tuple[str, str]]:
        allowed = "*" if "*" in self.allow_origins and not self.allow_credentials else origin
        credentials = [("access-control-allow-credentials", "true")]
        return [
            ("access-control-allow-origin", str(allowed)),
            *(credentials if self.allow_credentials else []),
            ("vary", "Origin"),
        ]
