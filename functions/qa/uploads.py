"""Files for QA: a `multipart/form-data` body (`curl -F`) read into the JSON form's `QaRequest`.

    curl -F question='...' -F document=@notes.txt [-F document=@report.pdf] \
         [-F chain_type=map_reduce] "$QA_URL"

Fields: `question` (once), `document` (once per document) and `chain_type` (at most once).
A `document` sent as a file (`@notes.md`) is its content: UTF-8 text (txt, md, csv, json,
html...) or a PDF, told apart by its bytes as for an S3 object (curl labels a `.md` file
`application/octet-stream`); a `document` sent as a value (`-F document='...'`) is what a JSON
`documents` entry is: text, or an `s3://bucket/key` URI. The documents' text then goes through
`parse_qa_request`, so limits and errors are the JSON form's; the body itself was held to
MAX_BODY_BYTES by the front door that read it.

The stdlib's `email` parser reads the body (RFC 7578 is MIME); it is imported on the first
upload, so requests without one pay nothing for it. Errors name a file to the caller, never
to the log (a file name may say what the document is about).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llm_app.config import Settings
from llm_app.errors import AppError, ErrorCode
from qa.document_qa import MAX_DOCUMENTS, QaRequest, parse_qa_request
from qa.documents import pdf_text

if TYPE_CHECKING:
    from email.message import EmailMessage

MULTIPART_FORM_DATA = "multipart/form-data"
UPLOAD_FIELDS = ("question", "document", "chain_type")
_PDF_MAGIC = b"%PDF-"
_PDF_TYPES = frozenset({"application/pdf", "application/x-pdf"})
_SEND_TEXT_OR_PDF = "send text (txt, md, csv, json, html) or a PDF"


def is_form_upload(content_type: str) -> bool:
    """Whether a request's `content-type` header announces a form upload (`curl -F`)."""
    return content_type.split(";", 1)[0].strip().lower() == MULTIPART_FORM_DATA


def parse_upload(body: bytes, content_type: str, settings: Settings) -> QaRequest:
    """The `QaRequest` a multipart/form-data body asks for (see the module docstring)."""
    parts = list(_form_parts(body, content_type))
    # The cheap refusals first: no document is decoded or PDF read before the form's shape holds.
    by_name = {name: [part for part in parts if part.name == name] for name in UPLOAD_FIELDS}
    unknown = sorted({part.name for part in parts if part.name not in UPLOAD_FIELDS})
    if unknown:
        raise AppError(
            ErrorCode.INVALID_REQUEST,
            f"Unknown field(s) {', '.join(map(repr, unknown))}; expected: "
            f"{', '.join(UPLOAD_FIELDS)}.",
        )
    payload: dict[str, Any] = {}
    for name in ("question", "chain_type"):
        if len(by_name[name]) > 1:
            raise AppError(
                ErrorCode.INVALID_REQUEST,
                f"'{name}' was sent {len(by_name[name])} times; send it once.",
            )
        if by_name[name]:
            payload[name] = by_name[name][0].text()
    documents = by_name["document"]
    if len(documents) > MAX_DOCUMENTS:
        raise AppError(
            ErrorCode.REQUEST_TOO_LARGE,
            f"{len(documents)} documents sent; the limit is {MAX_DOCUMENTS}.",
        )
    if documents:  # none: the example document, as a JSON request without `documents`
        payload["documents"] = [part.document_text() for part in documents]
    return parse_qa_request(payload, settings)


@dataclass(frozen=True)
class _Part:
    name: str
    data: bytes
    # Set for a file (`-F document=@notes.txt`); None for a value (`-F document='...'`).
    filename: str | None
    declared_type: str
    # Which part this is, for the log: the caller's file name stays out of it.
    position: int

    @property
    def shown(self) -> str:
        kind = "document" if self.name == "document" else f"'{self.name}'"
        return f"{kind} {self.filename[:200]!r}" if self.filename else f"the {kind} field"

    def refuse(self, code: ErrorCode, message: str) -> AppError:
        logged = f"{self.name} part {self.position}"
        return AppError(code, message, log_message=message.replace(self.shown, logged))

    def text(self) -> str:
        try:
            return self.data.decode("utf-8-sig")
        except UnicodeDecodeError:
            if self.name != "document":
                message = f"{self.shown} is not UTF-8 text."
                raise self.refuse(ErrorCode.INVALID_REQUEST, message) from None
            declared = f" ({self.declared_type})" if self.filename else ""
            message = (
                f"{self.shown}{declared} is neither UTF-8 text nor a PDF; {_SEND_TEXT_OR_PDF}."
            )
            raise self.refuse(ErrorCode.DOCUMENT_UNREADABLE, message) from None

    def document_text(self) -> str:
        """A file's text (a PDF's extracted); a value as sent. Empty ones are refused."""
        if self.data.startswith(_PDF_MAGIC) or self.declared_type in _PDF_TYPES:
            try:
                return pdf_text(self.data, self.shown)
            except AppError as error:
                raise self.refuse(error.code, error.message) from None
        text = self.text()
        if not text.strip():
            message = f"{self.shown} is empty; leave it out to ask about the example document."
            raise self.refuse(ErrorCode.INVALID_REQUEST, message)
        return text


def _form_parts(body: bytes, content_type: str) -> Iterator[_Part]:
    form = _parse_form(body, content_type)
    for position, part in enumerate(form.iter_parts(), start=1):
        disposition = part.get_content_disposition()
        name = part.get_param("name", header="content-disposition")
        if disposition != "form-data" or not isinstance(name, str) or not name:
            raise AppError(
                ErrorCode.INVALID_REQUEST,
                f"Part {position} of the form has no field name (Content-Disposition: "
                "form-data; name=...); send fields as curl -F name=value does.",
            )
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):  # a multipart/mixed group (RFC 2388's several files)
            raise AppError(
                ErrorCode.INVALID_REQUEST,
                f"Part {position} of the form is itself multipart; send each file as a part "
                "of its own (-F document=@a.txt -F document=@b.pdf).",
            )
        filename = part.get_filename()
        yield _Part(
            name=_header_text(name),
            data=data,
            filename=_header_text(filename) if filename is not None else None,
            declared_type=part.get_content_type(),
            position=position,
        )


def _parse_form(body: bytes, content_type: str) -> EmailMessage:
    # Imported here: only uploads parse MIME headers (http.client already loaded the rest).
    from email.errors import CloseBoundaryNotFoundDefect  # noqa: PLC0415
    from email.parser import BytesParser  # noqa: PLC0415
    from email.policy import HTTP  # noqa: PLC0415

    if not is_form_upload(content_type) or "\r" in content_type or "\n" in content_type:
        raise AppError(
            ErrorCode.INVALID_REQUEST,
            f"Expected a {MULTIPART_FORM_DATA} body; the content type is {content_type[:100]!r}.",
        )
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", errors="replace")
    form = BytesParser(policy=HTTP).parsebytes(head + body)
    if not form.get_boundary():
        raise AppError(
            ErrorCode.INVALID_REQUEST,
            "The content type multipart/form-data names no boundary; let curl -F set the "
            "header (do not add -H 'content-type: multipart/form-data').",
        )
    if not form.is_multipart():
        raise AppError(
            ErrorCode.INVALID_REQUEST,
            "The form holds no part that starts with the boundary its content type names.",
        )
    if any(isinstance(defect, CloseBoundaryNotFoundDefect) for defect in form.defects):
        raise AppError(
            ErrorCode.INVALID_REQUEST,
            "The form ends before its closing boundary: was the body cut short?",
        )
    return form


def _header_text(value: str) -> str:
    """A header parameter as sent: curl writes file names as raw UTF-8, which the parser
    keeps as escaped bytes."""
    return value.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")
