"""Documents named by `s3://bucket/key`: read from the allowed buckets only, turned into text.

Text objects (txt, md, csv, json, html...) are read as UTF-8; PDFs go through pypdf's text
extraction, imported on the first PDF so that requests without one pay nothing for it.
Errors name the document (its URI), never its content.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from llm_app.config import Settings
from llm_app.errors import AppError, ErrorCode
from llm_app.runtime.aws import aws_client

S3_SCHEME = "s3://"
# S3's bucket naming rules (3-63 characters of lower-case letters, digits, dots and hyphens).
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PDF_MAGIC = b"%PDF-"
_MISSING_OBJECT_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
# An object within the document limit arrives in seconds; botocore's default 60 s read timeout
# would let one stalled read eat most of the function's time.
S3_READ_TIMEOUT_SECONDS = 20.0


def build_s3_client(settings: Settings) -> Any:
    return aws_client(
        "s3", settings, read_timeout=S3_READ_TIMEOUT_SECONDS, max_attempts=settings.max_attempts
    )


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"{S3_SCHEME}{self.bucket}/{self.key}"

    def unavailable(self, message: str, *, retry_after: int | None = None) -> AppError:
        """A 502 naming the object to the caller, and only its bucket to the log (a key may
        say what the document is about)."""
        return AppError(
            ErrorCode.DOCUMENT_UNAVAILABLE,
            message,
            retry_after=retry_after,
            log_message=message.replace(self.uri, f"{S3_SCHEME}{self.bucket}/<key>"),
        )


def is_s3_uri(entry: str) -> bool:
    return entry.startswith(S3_SCHEME)


def parse_s3_uri(entry: str) -> S3Location:
    """`s3://bucket/key` -> its parts; anything else naming S3 is the caller's mistake (400)."""
    bucket, _, key = entry.removeprefix(S3_SCHEME).partition("/")
    if not _BUCKET_NAME.fullmatch(bucket) or not key:
        raise AppError(
            ErrorCode.INVALID_REQUEST,
            f"{entry[:300]!r} is not an S3 object URI: write s3://bucket/key.",
        )
    return S3Location(bucket, key)


class DocumentStore:
    """Reads documents from the allowed buckets with one S3 client, built on first use.

    The client is built lazily: most requests carry their documents inline, and S3's service
    model is large enough to show in a cold start.
    """

    def __init__(self, allowed_buckets: Collection[str], client_factory: Callable[[], Any]):
        self.allowed_buckets = frozenset(allowed_buckets)
        self._client_factory = client_factory
        self._client: Any = None

    def check_allowed(self, location: S3Location) -> None:
        """Refuse a bucket outside QA_DOCUMENT_BUCKETS before any call to AWS."""
        if location.bucket not in self.allowed_buckets:
            allowed = ", ".join(sorted(self.allowed_buckets)) or "none: S3 documents are off"
            raise AppError(
                ErrorCode.DOCUMENT_NOT_ALLOWED,
                f"{location.uri}: the function may not read bucket '{location.bucket}' "
                f"(allowed: {allowed}; set by qa_document_buckets).",
            )

    def read_text(self, location: S3Location, *, max_bytes: int) -> str:
        """The object's text; `max_bytes` is what is left of the request's document budget."""
        self.check_allowed(location)
        data = self._read_object(location, max_bytes)
        if data.startswith(_PDF_MAGIC):
            return pdf_text(data, location.uri)
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise AppError(
                ErrorCode.DOCUMENT_UNREADABLE,
                f"{location.uri} is neither UTF-8 text nor a PDF; send text (txt, md, csv, "
                "json, html) or a PDF.",
            ) from None

    def _read_object(self, location: S3Location, max_bytes: int) -> bytes:
        if self._client is None:
            self._client = self._client_factory()
        try:
            response = self._client.get_object(Bucket=location.bucket, Key=location.key)
            body = response["Body"]
            try:
                size = int(response.get("ContentLength", 0))
                if size > max_bytes:
                    raise _too_large(location, size, max_bytes)
                data: bytes = body.read(max_bytes + 1)
            finally:
                body.close()
        except ClientError as error:
            raise _translate_s3_error(error, location) from error
        except BotoCoreError as error:
            raise location.unavailable(
                f"Could not read {location.uri} from S3 ({type(error).__name__}); retry.",
                retry_after=5,
            ) from error
        if len(data) > max_bytes:  # the object grew between the response headers and the read
            raise _too_large(location, len(data), max_bytes)
        return data


def pdf_text(data: bytes, name: str) -> str:
    """The text of a PDF's pages, in order; a PDF without extractable text is refused."""
    from pypdf import PdfReader  # noqa: PLC0415 - imported on the first PDF: no cold-start cost

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            reader.decrypt("")  # PDFs "encrypted" with an empty user password open as is
        text = "\n\n".join(page.extract_text() or "" for page in reader.pages)
    # pypdf parses untrusted bytes and raises many types on malformed files; any of them
    # means the same to the caller: this document cannot be read.
    except Exception as error:
        raise AppError(
            ErrorCode.DOCUMENT_UNREADABLE,
            f"{name} is a PDF that could not be read ({type(error).__name__}): is it complete "
            "and unencrypted?",
        ) from None
    if not text.strip():
        raise AppError(
            ErrorCode.DOCUMENT_UNREADABLE,
            f"{name} is a PDF without extractable text (scanned pages need OCR first).",
        )
    return text


def _too_large(location: S3Location, size: int, max_bytes: int) -> AppError:
    return AppError(
        ErrorCode.REQUEST_TOO_LARGE,
        f"{location.uri} is {size} bytes; {max_bytes} bytes are left of the request's "
        "document limit (QA_MAX_DOCUMENT_BYTES).",
    )


def _translate_s3_error(error: ClientError, location: S3Location) -> AppError:
    code = str(error.response.get("Error", {}).get("Code", ""))
    if code in _MISSING_OBJECT_CODES or code == "NoSuchBucket":
        return AppError(ErrorCode.DOCUMENT_NOT_FOUND, f"{location.uri} does not exist.")
    if code in {"AccessDenied", "403", "AllAccessDisabled", "KMS.DisabledException"}:
        # The role may read objects but not list the bucket, so S3 reports a missing key
        # as AccessDenied too.
        return location.unavailable(
            f"S3 denied reading {location.uri}: the object may not exist, or a bucket policy "
            "or KMS key refuses the function's role."
        )
    return location.unavailable(
        f"S3 failed reading {location.uri} ({code or 'unknown error'}); retry.", retry_after=5
    )
