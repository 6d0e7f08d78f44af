"""Reads an issuer's discovery document and JWKS: small JSON, over https (loopback http)."""

from __future__ import annotations

import functools
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, Final

from llm_app.config import is_fetchable

from .errors import AuthError, AuthFailure

FetchJson = Callable[[str], Any]

ISSUER_UNAVAILABLE_MESSAGE: Final = "The token issuer's signing keys are unavailable; try again."

FETCH_TIMEOUT_SECONDS: Final = 5.0
# A JWKS holds a handful of keys; anything far larger is not one.
MAX_DOCUMENT_BYTES: Final = 1 << 20


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect could lead off https; an issuer serves its keys where it says it does."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@functools.cache
def _opener() -> urllib.request.OpenerDirector:
    # Built on the first fetch: its https handler loads the CA bundle, which no cold start of
    # an API-key-only deployment should pay for.
    return urllib.request.build_opener(_NoRedirects)


def fetch_json(url: str) -> Any:
    if not is_fetchable(url):
        raise AuthError(AuthFailure.ISSUER_UNAVAILABLE, ISSUER_UNAVAILABLE_MESSAGE)
    request = urllib.request.Request(url, headers={"accept": "application/json"})  # noqa: S310
    try:
        with _opener().open(request, timeout=FETCH_TIMEOUT_SECONDS) as response:
            body = response.read(MAX_DOCUMENT_BYTES + 1)
        if len(body) > MAX_DOCUMENT_BYTES:
            raise ValueError("document too large")
        return json.loads(body)
    except (OSError, ValueError) as error:  # URLError and HTTPError are OSErrors
        raise AuthError(AuthFailure.ISSUER_UNAVAILABLE, ISSUER_UNAVAILABLE_MESSAGE) from error
