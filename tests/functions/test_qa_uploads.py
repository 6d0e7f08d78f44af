"""Files for QA: `curl -F` bodies, as curl itself writes them, read into the JSON form's request."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from llm_app.config import Settings
from llm_app.errors import AppError, ErrorCode
from llm_app.http.web import FunctionApp
from qa.document_qa import MAX_DOCUMENTS, QaRequest, parse_qa_request
from qa.documents import pdf_text
from qa.uploads import is_form_upload, parse_upload
from tests.support.canned_http import Received, curl_forms
from tests.support.documents import FACT, minimal_pdf
from tests.support.events import function_url_event, lambda_context, response_json
from tests.support.web import adapter_headers, send, serving

SETTINGS = Settings(endpoint_name="qa-test")
QUESTION = "Which code opens the vault?"
NOTES = "Peter stayed at the hospital for 3 days.\n"
MARKDOWN = "# Minutes\n\nThe *committee* met in Zürich.\n"
BOUNDARY = "qa-upload-test"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("uploads")
    (folder / "notes.txt").write_text(NOTES, encoding="utf-8")
    (folder / "minutes.md").write_text(MARKDOWN, encoding="utf-8")
    (folder / "report.pdf").write_bytes(minimal_pdf(FACT))
    (folder / "scan.pdf").write_bytes(minimal_pdf())  # a page without text
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\nthe rest is missing")
    (folder / "empty.txt").write_bytes(b"")
    (folder / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    return folder


@pytest.fixture(scope="module")
def curl_form(files: Path) -> Iterator[Callable[..., Received]]:
    """`curl -F ...` run in the files' folder: the request it sends (headers and body)."""
    with curl_forms(files) as send:
        yield send


@pytest.fixture(scope="module")
def upload(curl_form: Callable[..., Received]) -> Callable[..., QaRequest]:
    def parse(*form: str) -> QaRequest:
        request = curl_form(*form)
        return parse_upload(request.body, request.headers["content-type"], SETTINGS)

    return parse


def refusal(upload: Callable[..., QaRequest], *form: str) -> AppError:
    with pytest.raises(AppError) as raised:
        upload(*form)
    return raised.value


def form_body(*parts: str, closed: bool = True) -> bytes:
    """A multipart/form-data body by hand, for shapes curl never sends."""
    body = "".join(f"--{BOUNDARY}\r\n{part}\r\n" for part in parts)
    return (body + (f"--{BOUNDARY}--\r\n" if closed else "")).encode()


QUESTION_PART = f'Content-Disposition: form-data; name="question"\r\n\r\n{QUESTION}'


def test_text_markdown_and_pdf_files_are_read_into_the_json_forms_request(
    files: Path, upload: Callable[..., QaRequest]
) -> None:
    request = upload(
        f"question={QUESTION}",
        "document=@notes.txt",
        "document=@minutes.md",  # curl labels it application/octet-stream
        "document=@report.pdf",
        "chain_type=map_reduce",
    )
    pdf = (files / "report.pdf").read_bytes()
    expected = parse_qa_request(
        {
            "question": QUESTION,
            "documents": [NOTES, MARKDOWN, pdf_text(pdf, "report.pdf")],
            "chain_type": "map_reduce",
        },
        SETTINGS,
    )
    assert request == expected
    assert FACT in expected.documents[2]


@pytest.mark.parametrize("door", ["door1", "door2"])
def test_the_qa_url_answers_a_curl_form_from_its_files(
    curl_form: Callable[..., Received], load_handler: Any, fake_endpoint: Any, door: str
) -> None:
    # As curl sends it; a Function URL hands a multipart body over base64-encoded (door 1),
    # the Lambda Web Adapter decoded (door 2).
    sent = curl_form(
        f"question={QUESTION}",
        "document=@notes.txt",
        "document=@minutes.md",
        "document=@report.pdf",
    )
    content_type = sent.headers["content-type"]
    event = function_url_event(sent.body, base64_body=True, content_type=content_type)
    assert event["isBase64Encoded"] is True
    fake_endpoint.reply("The code is 4172.")
    qa = load_handler("qa.handler")
    if door == "door1":
        body = response_json(qa.handler(event, lambda_context()))
    else:
        headers = {"content-type": content_type, **adapter_headers(event)}
        with serving(FunctionApp(qa.ROUTES, qa.SETTINGS, qa.logger)) as address:
            body = send(address, sent.body, headers).json()

    assert body["answer"] == "The code is 4172."
    (prompt,) = [message["content"] for message in fake_endpoint.last_request["messages"]]
    for text in (NOTES.strip(), MARKDOWN.strip(), FACT, QUESTION):
        assert text in prompt


def test_without_a_document_the_example_document_is_asked_about_as_in_json(
    upload: Callable[..., QaRequest],
) -> None:
    assert upload(f"question={QUESTION}") == parse_qa_request([QUESTION], SETTINGS)


def test_a_document_value_is_a_json_documents_entry_text_or_s3_uri(
    upload: Callable[..., QaRequest],
) -> None:
    request = upload(
        f"question={QUESTION}", "document=s3://my-bucket/notes.txt", "document=Inline."
    )
    assert request.documents == ("s3://my-bucket/notes.txt", "Inline.")


@pytest.mark.parametrize(
    ("form", "status", "code", "message"),
    [
        (
            ("document=@notes.txt",),
            400,
            ErrorCode.INVALID_REQUEST,
            "Missing field(s): question.",
        ),
        (
            (f"question={QUESTION}", "documents=@notes.txt"),
            400,
            ErrorCode.INVALID_REQUEST,
            "Unknown field(s) 'documents'; expected: question, document, chain_type.",
        ),
        (
            (f"question={QUESTION}", "document=@empty.txt"),
            400,
            ErrorCode.INVALID_REQUEST,
            "document 'empty.txt' is empty; leave it out to ask about the example document.",
        ),
        (
            (f"question={QUESTION}", "document="),
            400,
            ErrorCode.INVALID_REQUEST,
            "the document field is empty",
        ),
        (
            (f"question={QUESTION}", "document=@photo.png"),
            422,
            ErrorCode.DOCUMENT_UNREADABLE,
            "document 'photo.png' (image/png) is neither UTF-8 text nor a PDF; send text "
            "(txt, md, csv, json, html) or a PDF.",
        ),
        (
            (f"question={QUESTION}", "document=@broken.pdf"),
            422,
            ErrorCode.DOCUMENT_UNREADABLE,
            "document 'broken.pdf' is a PDF that could not be read",
        ),
        (
            (f"question={QUESTION}", "document=@scan.pdf"),
            422,
            ErrorCode.DOCUMENT_UNREADABLE,
            "document 'scan.pdf' is a PDF without extractable text",
        ),
        (
            (f"question={QUESTION}", "document=@notes.txt;type=application/pdf"),
            422,
            ErrorCode.DOCUMENT_UNREADABLE,
            "document 'notes.txt' is a PDF that could not be read",
        ),
        (  # the form's shape is refused before any document is read
            (f"question={QUESTION}", "document=@broken.pdf", "question=Again?"),
            400,
            ErrorCode.INVALID_REQUEST,
            "'question' was sent 2 times; send it once.",
        ),
        (
            (f"question={QUESTION}", "chain_type=summarize"),
            400,
            ErrorCode.INVALID_REQUEST,
            "'chain_type' must be one of 'stuff', 'map_reduce', 'refine'; got 'summarize'.",
        ),
        (
            ("question=" + "x" * 4001,),
            413,
            ErrorCode.REQUEST_TOO_LARGE,
            "'question' is 4001 characters; the limit is 4000 (MAX_QUESTION_CHARS).",
        ),
        (
            (f"question={QUESTION}", *["document=x"] * (MAX_DOCUMENTS + 1)),
            413,
            ErrorCode.REQUEST_TOO_LARGE,
            f"{MAX_DOCUMENTS + 1} documents sent; the limit is {MAX_DOCUMENTS}.",
        ),
    ],
)
def test_bad_uploads_get_the_json_forms_errors(
    upload: Callable[..., QaRequest],
    form: tuple[str, ...],
    status: int,
    code: ErrorCode,
    message: str,
) -> None:
    error = refusal(upload, *form)
    assert (error.status, error.code) == (status, code)
    assert message in error.message


def test_the_log_never_names_the_callers_file(upload: Callable[..., QaRequest]) -> None:
    for form in ("document=@photo.png", "document=@broken.pdf", "document=@empty.txt"):
        error = refusal(upload, f"question={QUESTION}", form)
        name = form.removeprefix("document=@")
        assert name in error.message
        assert name not in error.log_message
        assert "document part 2" in error.log_message


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (form_body(QUESTION_PART), "multipart/form-data", "names no boundary"),
        (form_body(QUESTION_PART), "application/json", "Expected a multipart/form-data body"),
        (b"just text", f"multipart/form-data; boundary={BOUNDARY}", "no part that starts"),
        (
            form_body(QUESTION_PART, closed=False),
            f"multipart/form-data; boundary={BOUNDARY}",
            "ends before its closing boundary",
        ),
        (
            form_body(f"Content-Disposition: form-data\r\n\r\n{QUESTION}"),
            f"multipart/form-data; boundary={BOUNDARY}",
            "Part 1 of the form has no field name",
        ),
        (
            form_body('Content-Disposition: form-data; name="question"\r\n\r\n').replace(
                b"\r\n\r\n\r\n", b"\r\n\r\n\xff\xfe\r\n"
            ),
            f"multipart/form-data; boundary={BOUNDARY}",
            "'question' field is not UTF-8 text",
        ),
    ],
)
def test_malformed_forms_are_refused_with_a_400(
    body: bytes, content_type: str, message: str
) -> None:
    with pytest.raises(AppError) as raised:
        parse_upload(body, content_type, SETTINGS)
    assert (raised.value.status, raised.value.code) == (400, ErrorCode.INVALID_REQUEST)
    assert message in raised.value.message


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("multipart/form-data; boundary=abc", True),
        ("Multipart/Form-Data;boundary=abc", True),
        ("application/json", False),
        ("application/x-www-form-urlencoded", False),
        ("", False),
    ],
)
def test_is_form_upload_reads_the_media_type(content_type: str, expected: bool) -> None:
    assert is_form_upload(content_type) is expected
