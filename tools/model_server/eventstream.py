"""AWS's event stream framing (``application/vnd.amazon.eventstream``), the encoding side.

``InvokeEndpointWithResponseStream`` answers with a sequence of binary messages, which
botocore decodes (``botocore.eventstream``). Each message is::

    total length (uint32) | headers length (uint32) | CRC32 of those 8 bytes
    headers: name length (uint8) | name | value type (uint8, 7 = string)
             | value length (uint16) | value (UTF-8)
    payload
    CRC32 of everything before it

all integers big-endian, CRC32 as ``zlib.crc32``. SageMaker sends ``PayloadPart`` events
(``:message-type: event``, the payload is the container's raw bytes) and, when the stream
fails, a ``ModelStreamError`` exception (``:message-type: exception``, a JSON payload with
``Message`` and ``ErrorCode``), which boto3 raises as ``botocore.exceptions.EventStreamError``.

Why our own ~40 lines instead of ``smithy-aws-event-stream`` (the PyPI package that encodes
this framing): that package requires Python >= 3.12 (pre-alpha, plus ``smithy-core``), and the
model server runs on 3.11 in its own venv; it must also stay importable from the dev venv's
tests, and ``tests/model_server/test_import_boundary.py`` keeps it standard library only. Only
string headers are needed, and the format is small and documented. The tests decode every
message this module writes with botocore's own ``EventStreamBuffer`` (CRCs checked) and
through boto3's ``invoke_endpoint_with_response_stream``.
"""

from __future__ import annotations

import json
import struct
import zlib

_PRELUDE = struct.Struct(">II")
_STRING = 7  # the header value type botocore decodes as a UTF-8 string
# The format's limits (AWS's event stream libraries): a string header value, a whole message.
MAX_HEADER_VALUE_BYTES = 2**15 - 1
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
# SageMaker's ModelStreamError codes (see the sagemaker-runtime model's documentation).
STREAM_BROKEN = "StreamBroken"
INVOCATION_TIME_EXCEEDED = "ModelInvocationTimeExceeded"


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One event stream message with string ``headers`` and ``payload``."""
    encoded_headers = b"".join(_header(name, value) for name, value in headers.items())
    total = _PRELUDE.size + 4 + len(encoded_headers) + len(payload) + 4
    if total > MAX_MESSAGE_BYTES:
        raise ValueError(f"an event stream message is limited to {MAX_MESSAGE_BYTES} bytes")
    prelude = _PRELUDE.pack(total, len(encoded_headers))
    message = prelude + _crc(prelude) + encoded_headers + payload
    return message + _crc(message)


def payload_part(data: bytes) -> bytes:
    """A ``PayloadPart`` event: ``data`` is a piece of the container's response, as is."""
    return encode_message(
        {
            ":event-type": "PayloadPart",
            ":content-type": "application/octet-stream",
            ":message-type": "event",
        },
        data,
    )


def model_stream_error(message: str, error_code: str = STREAM_BROKEN) -> bytes:
    """A ``ModelStreamError`` exception event: the stream failed after it had started."""
    body = json.dumps({"Message": message, "ErrorCode": error_code}).encode()
    return encode_message(
        {
            ":exception-type": "ModelStreamError",
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        body,
    )


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    if not 0 < len(raw_name) < 256:
        raise ValueError(f"an event stream header name is 1-255 bytes: {name!r}")
    if len(raw_value) > MAX_HEADER_VALUE_BYTES:
        raise ValueError(f"the value of header {name!r} is too long for the event stream")
    return (
        struct.pack(">B", len(raw_name))
        + raw_name
        + struct.pack(">BH", _STRING, len(raw_value))
        + raw_value
    )


def _crc(data: bytes) -> bytes:
    return struct.pack(">I", zlib.crc32(data) & 0xFFFFFFFF)
